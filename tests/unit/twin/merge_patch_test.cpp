#include "twin/merge_patch.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace twinhub::twin;
namespace json = boost::json;

namespace {

json::object obj(std::string_view s) { return json::parse(s).as_object(); }

json::object merged(std::string_view target, std::string_view patch) {
    auto t = obj(target);
    merge_patch(t, nullptr, obj(patch), {"T", std::nullopt});
    return t;
}

}  // namespace

TEST(twin_merge, null_deletes_nested_key) {
    EXPECT_EQ(merged(R"({"a":{"b":1,"c":2}})", R"({"a":{"b":null}})"), obj(R"({"a":{"c":2}})"));
}

TEST(twin_merge, null_deletes_top_level_key_and_missing_key_is_harmless) {
    EXPECT_EQ(merged(R"({"a":1,"b":2})", R"({"a":null,"zz":null})"), obj(R"({"b":2})"));
}

TEST(twin_merge, objects_merge_recursively) {
    EXPECT_EQ(merged(R"({"a":{"b":{"c":1,"d":2}},"e":3})", R"({"a":{"b":{"c":10,"x":true}}})"),
              obj(R"({"a":{"b":{"c":10,"d":2,"x":true}},"e":3})"));
}

TEST(twin_merge, scalars_and_arrays_replace) {
    EXPECT_EQ(merged(R"({"a":[1,2,3],"b":"x"})", R"({"a":[4],"b":5})"), obj(R"({"a":[4],"b":5})"));
}

TEST(twin_merge, scalar_replaces_object_and_object_replaces_scalar) {
    EXPECT_EQ(merged(R"({"a":{"b":1},"c":1})", R"({"a":2,"c":{"d":{"e":null,"f":1}}})"),
              obj(R"({"a":2,"c":{"d":{"f":1}}})"));
}

TEST(twin_merge, deleting_last_member_keeps_empty_object) {
    EXPECT_EQ(merged(R"({"a":{"b":1}})", R"({"a":{"b":null}})"), obj(R"({"a":{}})"));
}

TEST(twin_metadata, every_level_and_leaf_is_stamped_with_version) {
    json::object data, meta;
    merge_patch(data, &meta, obj(R"({"a":{"b":1},"c":[1,2]})"), {"T1", 2});
    EXPECT_EQ(meta, obj(R"({"$lastUpdated":"T1","$lastUpdatedVersion":2,
        "a":{"$lastUpdated":"T1","$lastUpdatedVersion":2,"b":{"$lastUpdated":"T1","$lastUpdatedVersion":2}},
        "c":{"$lastUpdated":"T1","$lastUpdatedVersion":2}})"));
}

TEST(twin_metadata, successive_patches_update_only_touched_paths) {
    json::object data, meta;
    merge_patch(data, &meta, obj(R"({"a":{"b":1,"c":2},"d":3})"), {"T1", 2});
    merge_patch(data, &meta, obj(R"({"a":{"b":5}})"), {"T2", 3});
    EXPECT_EQ(meta.at("$lastUpdated"), "T2");
    EXPECT_EQ(meta.at("$lastUpdatedVersion"), 3);
    EXPECT_EQ(meta.at("a").at("$lastUpdated"), "T2");
    EXPECT_EQ(meta.at("a").at("$lastUpdatedVersion"), 3);
    EXPECT_EQ(meta.at("a").at("b"), obj(R"({"$lastUpdated":"T2","$lastUpdatedVersion":3})"));
    EXPECT_EQ(meta.at("a").at("c"), obj(R"({"$lastUpdated":"T1","$lastUpdatedVersion":2})"));
    EXPECT_EQ(meta.at("d"), obj(R"({"$lastUpdated":"T1","$lastUpdatedVersion":2})"));
}

TEST(twin_metadata, removed_key_loses_metadata_and_parent_keeps_its_node) {
    json::object data, meta;
    merge_patch(data, &meta, obj(R"({"a":{"b":1,"c":{"x":1}}})"), {"T1", 2});
    merge_patch(data, &meta, obj(R"({"a":{"c":null}})"), {"T2", 3});
    EXPECT_EQ(data, obj(R"({"a":{"b":1}})"));
    EXPECT_FALSE(meta.at("a").as_object().contains("c"));
    EXPECT_EQ(meta.at("a").at("$lastUpdated"), "T2");
    EXPECT_EQ(meta.at("a").at("b").at("$lastUpdated"), "T1");
    merge_patch(data, &meta, obj(R"({"a":null})"), {"T3", 4});
    EXPECT_EQ(meta, obj(R"({"$lastUpdated":"T3","$lastUpdatedVersion":4})"));
}

TEST(twin_metadata, object_replaced_by_leaf_gets_leaf_metadata) {
    json::object data, meta;
    merge_patch(data, &meta, obj(R"({"a":{"b":1}})"), {"T1", std::nullopt});
    merge_patch(data, &meta, obj(R"({"a":[1]})"), {"T2", std::nullopt});
    EXPECT_EQ(meta, obj(R"({"$lastUpdated":"T2","a":{"$lastUpdated":"T2"}})"));
    merge_patch(data, &meta, obj(R"({"a":{"z":1}})"), {"T3", std::nullopt});
    EXPECT_EQ(meta, obj(R"({"$lastUpdated":"T3","a":{"$lastUpdated":"T3","z":{"$lastUpdated":"T3"}}})"));
}

TEST(twin_metadata, reported_stamps_have_no_version) {
    json::object data, meta;
    merge_patch(data, &meta, obj(R"({"fw":"1.0"})"), {"T1", std::nullopt});
    EXPECT_EQ(meta, obj(R"({"$lastUpdated":"T1","fw":{"$lastUpdated":"T1"}})"));
}

TEST(twin_diff, lists_removed_keys_as_null) {
    EXPECT_EQ(diff(obj(R"({"a":1,"b":2})"), obj(R"({})")), obj(R"({"a":null,"b":null})"));
}

TEST(twin_diff, nested_changes_only) {
    auto from = obj(R"({"a":{"x":1,"y":2,"z":{"q":1}},"b":[1],"c":"same"})");
    auto to = obj(R"({"a":{"x":1,"y":3,"z":{"q":1}},"b":[1,2],"c":"same","d":{"n":1}})");
    EXPECT_EQ(diff(from, to), obj(R"({"a":{"y":3},"b":[1,2],"d":{"n":1}})"));
}

TEST(twin_diff, type_changes_replace_whole_value) {
    EXPECT_EQ(diff(obj(R"({"a":{"x":1},"b":1})"), obj(R"({"a":5,"b":{"y":1}})")), obj(R"({"a":5,"b":{"y":1}})"));
}

TEST(twin_diff, identical_is_empty) { EXPECT_TRUE(diff(obj(R"({"a":{"b":[1]}})"), obj(R"({"a":{"b":[1]}})")).empty()); }

TEST(twin_diff, applying_diff_yields_target) {
    auto from = obj(R"({"a":{"x":1,"y":{"k":2}},"b":3,"c":{"d":4}})");
    auto to = obj(R"({"a":{"y":{"k":2,"m":[1]}},"c":7,"e":{"f":{}}})");
    auto d = diff(from, to);
    merge_patch(from, nullptr, d, {"T", std::nullopt});
    EXPECT_EQ(from, to);
}

TEST(twin_read_only_keys, root_version_and_metadata_are_dropped) {
    EXPECT_EQ(without_read_only_keys(obj(R"({"$version":3,"$metadata":{},"a":{"$version":1}})")),
              obj(R"({"a":{"$version":1}})"));
}

namespace {

// Random small JSON trees for the invariant tests below (fixed seed: failures reproduce).
struct generator {
    std::uint32_t state = 12345;
    std::uint32_t next(std::uint32_t n) {
        state = state * 1664525u + 1013904223u;
        return (state >> 8) % n;
    }
    json::value value(int depth, bool allow_null) {
        switch (next(depth > 0 ? 6 : 4)) {
        case 0: return allow_null ? json::value(nullptr) : json::value(true);
        case 1: return static_cast<std::int64_t>(next(5));
        case 2: return json::string(std::string(1, static_cast<char>('a' + next(3))));
        case 3: return json::array{static_cast<std::int64_t>(next(3))};
        default: return object(depth - 1, allow_null);
        }
    }
    json::object object(int depth, bool allow_null) {
        json::object o;
        auto n = next(4);
        for (std::uint32_t i = 0; i < n; ++i) o[std::string(1, static_cast<char>('k' + next(4)))] = value(depth, allow_null);
        return o;
    }
};

// Every data key has a metadata node and vice versa; objects' nodes mirror their members.
void expect_mirrors(const json::object& data, const json::object& meta, const std::string& path) {
    EXPECT_TRUE(meta.contains("$lastUpdated")) << path;
    for (const auto& kv : data) {
        const auto* m = meta.if_contains(kv.key());
        ASSERT_TRUE(m && m->is_object()) << path << "." << kv.key();
        if (kv.value().is_object()) {
            expect_mirrors(kv.value().get_object(), m->get_object(), path + "." + std::string(kv.key()));
        } else {
            for (const auto& mk : m->get_object()) EXPECT_EQ(mk.key()[0], '$') << path << "." << kv.key();
        }
    }
    for (const auto& mk : meta) {
        if (mk.key()[0] != '$') {
            EXPECT_TRUE(data.contains(mk.key())) << "stale metadata " << path << "." << mk.key();
        }
    }
}

}  // namespace

TEST(twin_merge, random_patches_keep_metadata_in_step_and_diff_reproduces_result) {
    generator g;
    json::object data, meta;
    stamp_node(meta, {"T0", 1});
    for (int i = 0; i < 2000; ++i) {
        auto before = data;
        auto patch = g.object(3, true);
        merge_patch(data, &meta, patch, {"T" + std::to_string(i + 1), i + 2});
        expect_mirrors(data, meta, "root");
        auto replay = before;
        merge_patch(replay, nullptr, diff(before, data), {"X", std::nullopt});
        ASSERT_EQ(replay, data) << "patch " << json::serialize(patch);
        // A merge result never holds nulls.
        ASSERT_EQ(json::serialize(data).find("null"), std::string::npos);
    }
}

// The C++ SDK's desired-properties cache (src/client/hub_client.cpp) uses the same merge patch: it
// keeps the desired section without $metadata/$version, diffs two versions on resync and applies the
// patches it receives (moved from tests/unit/client/json_patch_test.cpp).
TEST(sdk_desired_cache, diff_lists_changed_added_and_removed_keys) {
    auto d = diff(obj(R"({"a":1,"b":2,"c":{"x":1,"y":2}})"), obj(R"({"a":1,"b":3,"c":{"x":1},"d":"new"})"));
    EXPECT_EQ(d, obj(R"({"b":3,"c":{"y":null},"d":"new"})"));
}

TEST(sdk_desired_cache, read_only_keys_are_ignored_and_diff_is_empty_when_equal) {
    auto d = diff(without_read_only_keys(obj(R"({"a":1,"$version":3})")),
                  without_read_only_keys(obj(R"({"a":1,"$version":4,"$metadata":{}})")));
    EXPECT_TRUE(d.empty());
}

TEST(sdk_desired_cache, everything_removed_lists_each_top_level_key_as_null) {
    auto d = diff(obj(R"({"a":1,"b":{"c":2}})"), obj("{}"));
    EXPECT_EQ(d, obj(R"({"a":null,"b":null})"));
}

TEST(sdk_desired_cache, received_patch_deletes_nested_key_and_merges_objects) {
    auto t = obj(R"({"a":{"x":1,"y":2},"b":1})");
    merge_patch(t, without_read_only_keys(obj(R"({"a":{"y":null,"z":3},"b":[1,2],"$version":5})")));
    EXPECT_EQ(t, obj(R"({"a":{"x":1,"z":3},"b":[1,2]})"));
}

TEST(sdk_desired_cache, diff_then_apply_round_trips) {
    auto from = obj(R"({"telemetryInterval":5,"mode":{"fast":true,"level":2},"gone":1})");
    auto to = obj(R"({"telemetryInterval":10,"mode":{"fast":true},"new":"x"})");
    auto t = from;
    merge_patch(t, diff(from, to));
    EXPECT_EQ(t, to);
}

// Both users' merges agree: the metadata-keeping merge of the hub changes the data exactly as the
// plain merge of the SDK does.
TEST(sdk_desired_cache, plain_merge_equals_the_hubs_metadata_merge_on_data) {
    const char* patches[] = {R"({"a":{"b":1},"c":[1]})", R"({"a":{"b":null,"d":{"e":2}}})", R"({"a":3,"c":null})",
                             R"({"a":{"x":{"y":{"z":1}}}})"};
    auto plain = obj("{}");
    auto hub = obj("{}");
    auto meta = obj("{}");
    for (const char* p : patches) {
        merge_patch(plain, obj(p));
        merge_patch(hub, &meta, obj(p), {"T", 1});
        EXPECT_EQ(plain, hub) << p;
    }
}
