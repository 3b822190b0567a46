#include "twin/twin_document.hpp"

#include "twin/twin_limits.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::twin;
namespace json = boost::json;

namespace {

json::value val(std::string_view s) { return json::parse(s); }
json::object obj(std::string_view s) { return json::parse(s).as_object(); }

const time_point t0 = *parse_time("2023-01-02T21:40:00.0000000Z");
const time_point t1 = *parse_time("2023-01-02T21:42:14.7050295Z");
const time_point t2 = *parse_time("2023-01-02T21:43:31.7177262Z");
const time_point t3 = *parse_time("2023-01-02T21:44:00.1000000Z");

json::value jt(time_point t) { return json::value(format_time(t)); }

service_write_result patch_ok(twin_document& d, std::string_view body, time_point t) {
    auto r = apply_service_patch(d, val(body), t);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : service_write_result{};
}

std::string patch_error(twin_document& d, const json::value& body) {
    auto before = to_storage_json(d);
    auto r = apply_service_patch(d, body, t1);
    EXPECT_FALSE(r);
    EXPECT_EQ(to_storage_json(d), before) << "document changed by a failed patch";
    if (r) return {};
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    return r.error().message;
}

}  // namespace

TEST(twin_etag, is_base64_of_8_byte_big_endian_counter) {
    EXPECT_EQ(etag_to_string(1), "AAAAAAAAAAE=");
    EXPECT_EQ(etag_to_string(4), "AAAAAAAAAAQ=");
    EXPECT_EQ(etag_to_string(256), "AAAAAAAAAQA=");
    EXPECT_EQ(etag_to_string(0), "AAAAAAAAAAA=");
    EXPECT_EQ(etag_to_string(0x0102030405060708ULL), "AQIDBAUGBwg=");
}

TEST(twin_new, has_versions_one_etag_one_version_two_and_root_metadata) {
    auto d = new_twin(t0);
    EXPECT_EQ(d.desired_version, 1);
    EXPECT_EQ(d.reported_version, 1);
    EXPECT_EQ(d.etag, 1u);
    EXPECT_EQ(d.version, 2);
    EXPECT_EQ(json::serialize(properties_json(d)),
              R"({"desired":{"$metadata":{"$lastUpdated":"2023-01-02T21:40:00.0000000Z"},"$version":1},)"
              R"("reported":{"$metadata":{"$lastUpdated":"2023-01-02T21:40:00.0000000Z"},"$version":1}})");
    EXPECT_EQ(json::serialize(device_view(d)), R"({"desired":{"$version":1},"reported":{"$version":1}})");
}

TEST(twin_service_patch, desired_write_bumps_desired_version_etag_and_version) {
    auto d = new_twin(t0);
    auto r = patch_ok(d, R"({"properties":{"desired":{"ProductionRate":17}}})", t1);
    EXPECT_EQ(d.desired, obj(R"({"ProductionRate":17})"));
    EXPECT_EQ(d.desired_version, 2);
    EXPECT_EQ(d.reported_version, 1);
    EXPECT_EQ(d.etag, 2u);
    EXPECT_EQ(d.version, 3);
    ASSERT_TRUE(r.desired);
    EXPECT_EQ(r.desired->version, 2);
    EXPECT_EQ(r.desired->patch, obj(R"({"ProductionRate":17,"$version":2})"));
    EXPECT_EQ(properties_json(d).at("desired"),
              val(R"({"ProductionRate":17,"$metadata":{"$lastUpdated":"2023-01-02T21:42:14.7050295Z",
                  "$lastUpdatedVersion":2,"ProductionRate":{"$lastUpdated":"2023-01-02T21:42:14.7050295Z",
                  "$lastUpdatedVersion":2}},"$version":2})"));
}

TEST(twin_service_patch, successive_desired_patches_increment_by_one_and_track_metadata_versions) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"properties":{"desired":{"a":{"x":1,"y":2},"b":1}}})", t1);
    patch_ok(d, R"({"properties":{"desired":{"a":{"x":5}}}})", t2);
    EXPECT_EQ(d.desired_version, 3);
    const auto& m = d.desired_metadata;
    EXPECT_EQ(m.at("$lastUpdatedVersion"), 3);
    EXPECT_EQ(m.at("$lastUpdated"), jt(t2));
    EXPECT_EQ(m.at("a").at("$lastUpdatedVersion"), 3);
    EXPECT_EQ(m.at("a").at("x").at("$lastUpdatedVersion"), 3);
    EXPECT_EQ(m.at("a").at("x").at("$lastUpdated"), jt(t2));
    EXPECT_EQ(m.at("a").at("y").at("$lastUpdatedVersion"), 2);
    EXPECT_EQ(m.at("a").at("y").at("$lastUpdated"), jt(t1));
    EXPECT_EQ(m.at("b").at("$lastUpdatedVersion"), 2);
}

TEST(twin_service_patch, tags_write_bumps_etag_but_not_desired_version) {
    auto d = new_twin(t0);
    auto r = patch_ok(d, R"({"tags":{"location":{"region":"US"}}})", t1);
    EXPECT_FALSE(r.desired);
    EXPECT_EQ(d.tags, obj(R"({"location":{"region":"US"}})"));
    EXPECT_EQ(d.desired_version, 1);
    EXPECT_EQ(d.etag, 2u);
    EXPECT_EQ(d.version, 3);
    patch_ok(d, R"({"tags":{"location":{"city":"X"}}})", t2);
    EXPECT_EQ(d.tags, obj(R"({"location":{"region":"US","city":"X"}})"));
    EXPECT_EQ(d.etag, 3u);
}

TEST(twin_service_patch, tags_and_desired_together_bump_counters_once) {
    auto d = new_twin(t0);
    auto r = patch_ok(d, R"({"tags":{"t":1},"properties":{"desired":{"p":1}}})", t1);
    EXPECT_TRUE(r.desired);
    EXPECT_EQ(d.desired_version, 2);
    EXPECT_EQ(d.etag, 2u);
    EXPECT_EQ(d.version, 3);
}

TEST(twin_service_patch, null_desired_deletes_all_and_notification_lists_every_key) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"properties":{"desired":{"a":1,"b":{"c":2}}}})", t1);
    auto r = patch_ok(d, R"({"properties":{"desired":null}})", t2);
    EXPECT_TRUE(d.desired.empty());
    EXPECT_EQ(d.desired_version, 3);
    EXPECT_EQ(d.desired_metadata, obj(R"({"$lastUpdated":")" + format_time(t2) + R"(","$lastUpdatedVersion":3})"));
    ASSERT_TRUE(r.desired);
    EXPECT_EQ(r.desired->patch, obj(R"({"a":null,"b":null,"$version":3})"));
}

TEST(twin_service_patch, desired_write_with_only_nulls_still_counts) {
    auto d = new_twin(t0);
    auto r = patch_ok(d, R"({"properties":{"desired":{"missing":null}}})", t1);
    EXPECT_EQ(d.desired_version, 2);
    ASSERT_TRUE(r.desired);
    EXPECT_EQ(r.desired->patch, obj(R"({"$version":2})"));
}

TEST(twin_service_patch, null_tags_deletes_all_tags) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"tags":{"a":1,"b":2}})", t1);
    patch_ok(d, R"({"tags":null})", t2);
    EXPECT_TRUE(d.tags.empty());
    EXPECT_EQ(d.desired_version, 1);
    EXPECT_EQ(d.etag, 3u);
}

TEST(twin_service_patch, desired_change_is_diff_with_nested_nulls) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"properties":{"desired":{"temp":{"max":20,"min":5},"route":"a"}}})", t1);
    auto r = patch_ok(d, R"({"properties":{"desired":{"temp":{"max":30,"min":null},"route":null,"f":"5m"}}})", t2);
    ASSERT_TRUE(r.desired);
    EXPECT_EQ(r.desired->patch, obj(R"({"route":null,"temp":{"min":null,"max":30},"f":"5m","$version":3})"));
}

TEST(twin_service_patch, read_only_root_keys_and_unknown_top_level_keys_are_ignored) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"deviceId":"x","etag":"AAAAAAAAAAE=","version":9,"properties":{"desired":
        {"$version":44,"$metadata":{"$lastUpdated":"x"},"a":1}},"tags":{"$version":1}})", t1);
    EXPECT_EQ(d.desired, obj(R"({"a":1})"));
    EXPECT_EQ(d.desired_version, 2);
    EXPECT_TRUE(d.tags.empty());
}

TEST(twin_service_patch, empty_body_changes_nothing) {
    auto d = new_twin(t0);
    auto r = patch_ok(d, R"({"properties":{}})", t1);
    EXPECT_FALSE(r.desired);
    EXPECT_EQ(d.etag, 1u);
    EXPECT_EQ(d.version, 2);
}

TEST(twin_service_patch, rejects_reported_properties) {
    auto d = new_twin(t0);
    auto m = patch_error(d, val(R"({"properties":{"reported":{"a":1}}})"));
    EXPECT_NE(m.find("properties.reported"), std::string::npos) << m;
}

TEST(twin_service_patch, rejects_non_object_sections) {
    auto d = new_twin(t0);
    EXPECT_EQ(patch_error(d, val(R"({"tags":[1]})")), "Invalid value for 'tags': expected a JSON object or null.");
    EXPECT_EQ(patch_error(d, val(R"({"properties":{"desired":5}})")),
              "Invalid value for 'properties.desired': expected a JSON object or null.");
    EXPECT_EQ(patch_error(d, val(R"({"properties":"x"})")), "Invalid value for 'properties': expected a JSON object.");
    EXPECT_EQ(patch_error(d, val(R"([])")), "The twin body must be a JSON object.");
}

TEST(twin_service_patch, rejects_nested_dollar_keys_and_null_in_arrays) {
    auto d = new_twin(t0);
    auto m = patch_error(d, val(R"({"properties":{"desired":{"a":{"$version":1}}}})"));
    EXPECT_NE(m.find("'$version' in 'properties.desired.a'"), std::string::npos) << m;
    m = patch_error(d, val(R"({"tags":{"a":[null]}})"));
    EXPECT_EQ(m, "Value of Property or Tag cannot be null. Error in Property/Tag 'tags.a[0]'.");
}

TEST(twin_service_patch, desired_section_size_limit_rejects_whole_operation) {
    auto d = new_twin(t0);
    json::object desired;
    for (char c = 'a'; c < 'a' + 8; ++c) desired[std::string(1, c)] = std::string(4095, 'x');  // 8 * 4096 = 32768
    json::object body{{"properties", json::object{{"desired", desired}}}};
    ASSERT_TRUE(apply_service_patch(d, body, t1));
    EXPECT_EQ(d.desired_version, 2);
    // One more byte pushes desired to 32769; tags in the same body must not be applied either.
    auto m = patch_error(d, val(R"({"tags":{"t":1},"properties":{"desired":{"z":""}}})"));
    EXPECT_EQ(m, "Twin section 'properties.desired' would be 32769 bytes; the maximum is 32768.");
    EXPECT_TRUE(d.tags.empty());
    // Replacing a value with a shorter one is fine again.
    EXPECT_TRUE(apply_service_patch(d, val(R"({"properties":{"desired":{"a":"short","z":""}}})"), t2));
}

TEST(twin_service_patch, tags_section_size_limit) {
    auto d = new_twin(t0);
    json::object tags{{"a", json::string(std::string(4095, 'x'))}, {"b", json::string(std::string(4095, 'x'))}};
    EXPECT_TRUE(apply_service_patch(d, json::object{{"tags", tags}}, t1));
    auto m = patch_error(d, json::object{{"tags", json::object{{"c", true}}}});
    EXPECT_EQ(m, "Twin section 'tags' would be 8197 bytes; the maximum is 8192.");
}

TEST(twin_service_replace, replaces_sections_wholesale_and_leaves_omitted_ones) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"tags":{"keep":1},"properties":{"desired":{"a":1,"b":{"c":1}}}})", t1);
    auto r = apply_service_replace(d, val(R"({"properties":{"desired":{"b":{"d":2},"$version":2,
        "$metadata":{}},"reported":{"ignored":1}}})"), t2);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(d.tags, obj(R"({"keep":1})"));
    EXPECT_EQ(d.desired, obj(R"({"b":{"d":2}})"));
    EXPECT_TRUE(d.reported.empty());
    EXPECT_EQ(d.desired_version, 3);
    EXPECT_EQ(d.etag, 3u);
    EXPECT_EQ(d.version, 4);
    EXPECT_EQ(d.desired_metadata, obj(R"({"$lastUpdated":")" + format_time(t2) +
                                      R"(","$lastUpdatedVersion":3,"b":{"$lastUpdated":")" + format_time(t2) +
                                      R"(","$lastUpdatedVersion":3,"d":{"$lastUpdated":")" + format_time(t2) +
                                      R"(","$lastUpdatedVersion":3}}})"));
    ASSERT_TRUE(r->desired);
    EXPECT_EQ(r->desired->patch, obj(R"({"a":null,"b":{"c":null,"d":2},"$version":3})"));

    r = apply_service_replace(d, val(R"({"tags":{"new":true}})"), t3);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->desired);
    EXPECT_EQ(d.tags, obj(R"({"new":true})"));
    EXPECT_EQ(d.desired_version, 3);
}

TEST(twin_service_replace, validates_like_patch) {
    auto d = new_twin(t0);
    auto r = apply_service_replace(d, val(R"({"properties":{"desired":{"a.b":1}}})"), t1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(d.desired_version, 1);
}

TEST(twin_reported_patch, merges_and_bumps_reported_version_only) {
    auto d = new_twin(t0);
    ASSERT_TRUE(apply_reported_patch(d, val(R"({"fw":"1.0","nested":{"a":1,"b":2}})"), t1));
    ASSERT_TRUE(apply_reported_patch(d, val(R"({"fw":"2.0","nested":{"a":null}})"), t2));
    EXPECT_EQ(d.reported, obj(R"({"fw":"2.0","nested":{"b":2}})"));
    EXPECT_EQ(d.reported_version, 3);
    EXPECT_EQ(d.desired_version, 1);
    EXPECT_EQ(d.etag, 1u);
    EXPECT_EQ(d.version, 4);
    EXPECT_EQ(d.reported_metadata,
              obj(R"({"$lastUpdated":")" + format_time(t2) + R"(","fw":{"$lastUpdated":")" + format_time(t2) +
                  R"("},"nested":{"$lastUpdated":")" + format_time(t2) + R"(","b":{"$lastUpdated":")" +
                  format_time(t1) + R"("}}})"));
}

TEST(twin_reported_patch, rejects_invalid_patches_without_change) {
    auto d = new_twin(t0);
    auto before = to_storage_json(d);
    for (auto body : {R"([1])", R"("x")", R"({"a":[null]})", R"({"a b":1})", R"({"n":4503599627370496})"}) {
        auto r = apply_reported_patch(d, val(body), t1);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().code, errc::invalid_argument) << body;
    }
    EXPECT_EQ(to_storage_json(d), before);
    auto r = apply_reported_patch(d, val(R"({"x":{"y.z":1}})"), t1);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("'properties.reported.x'"), std::string::npos) << r.error().message;
}

TEST(twin_reported_patch, section_size_limit) {
    auto d = new_twin(t0);
    json::object p;
    for (char c = 'a'; c < 'a' + 8; ++c) p[std::string(1, c)] = std::string(4095, 'x');
    ASSERT_TRUE(apply_reported_patch(d, p, t1));
    auto r = apply_reported_patch(d, val(R"({"i":1})"), t2);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "Twin section 'properties.reported' would be 32777 bytes; the maximum is 32768.");
    EXPECT_EQ(d.reported_version, 2);
}

TEST(twin_reported_patch, in_place_gives_the_same_document_and_errors_as_the_copying_write) {
    auto a = new_twin(t0);
    auto b = new_twin(t0);
    const time_point ts[] = {t1, t2, t3};
    int k = 0;
    for (auto body : {R"({"fw":"1.0","nested":{"a":1,"b":[1,2]}})", R"({"fw":"2.0","nested":{"a":null},"$version":7})",
                      R"({"$metadata":{"x":1},"z":{"deep":{"er":true}}})", R"({})", R"({"z":null,"q":-1.5})"}) {
        const auto t = ts[k++ % 3];
        ASSERT_TRUE(apply_reported_patch(a, val(body), t)) << body;
        ASSERT_TRUE(apply_reported_patch_in_place(b, val(body), t)) << body;
        EXPECT_EQ(to_storage_text(b), to_storage_text(a)) << body;
    }
    for (auto body : {R"([1])", R"("x")", R"({"a":[null]})", R"({"a b":1})", R"({"n":4503599627370496})",
                      R"({"x":{"y.z":1}})"}) {
        auto ra = apply_reported_patch(a, val(body), t1);
        auto scratch = b;
        auto rb = apply_reported_patch_in_place(scratch, val(body), t1);
        ASSERT_FALSE(ra) << body;
        ASSERT_FALSE(rb) << body;
        EXPECT_EQ(rb.error().code, ra.error().code) << body;
        EXPECT_EQ(rb.error().message, ra.error().message) << body;
    }
    // Size limit: same message; the copying write leaves its document unchanged.
    json::object p;
    for (char c = 'a'; c < 'a' + 7; ++c) p[std::string(1, c)] = std::string(4095, 'x');
    ASSERT_TRUE(apply_reported_patch(a, p, t1));
    ASSERT_TRUE(apply_reported_patch_in_place(b, p, t1));
    EXPECT_EQ(to_storage_text(b), to_storage_text(a));
    json::object big;
    big["i"] = std::string(4095, 'y');
    auto ra = apply_reported_patch(a, big, t2);
    auto rb = apply_reported_patch_in_place(b, big, t2);
    ASSERT_FALSE(ra);
    ASSERT_FALSE(rb);
    EXPECT_EQ(rb.error().message, ra.error().message);
}

TEST(twin_views, properties_and_device_view) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"tags":{"t":1},"properties":{"desired":{"temp":{"max":20}}}})", t1);
    ASSERT_TRUE(apply_reported_patch(d, val(R"({"fw":"1.0"})"), t2));
    EXPECT_EQ(json::serialize(device_view(d)),
              R"({"desired":{"temp":{"max":20},"$version":2},"reported":{"fw":"1.0","$version":2}})");
    auto p = properties_json(d);
    EXPECT_EQ(p.at("desired").at("$version"), 2);
    EXPECT_EQ(p.at("desired").at("$metadata").at("temp").at("max").at("$lastUpdatedVersion"), 2);
    EXPECT_EQ(p.at("reported").at("$metadata").at("fw").at("$lastUpdated"), "2023-01-02T21:43:31.7177262Z");
    EXPECT_FALSE(p.contains("tags"));
}

TEST(twin_storage, round_trips_every_field) {
    auto d = new_twin(t0);
    patch_ok(d, R"({"tags":{"t":[1,2]},"properties":{"desired":{"a":{"b":1.5}}}})", t1);
    ASSERT_TRUE(apply_reported_patch(d, val(R"({"r":true})"), t2));
    d.model_id = "dtmi:com:example:Thermostat;1";
    d.etag = 0xFFFFFFFFFFFFFFF0ULL;
    auto back = from_storage_json(json::parse(json::serialize(to_storage_json(d))));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->tags, d.tags);
    EXPECT_EQ(back->desired, d.desired);
    EXPECT_EQ(back->reported, d.reported);
    EXPECT_EQ(back->desired_metadata, d.desired_metadata);
    EXPECT_EQ(back->reported_metadata, d.reported_metadata);
    EXPECT_EQ(back->desired_version, d.desired_version);
    EXPECT_EQ(back->reported_version, d.reported_version);
    EXPECT_EQ(back->etag, d.etag);
    EXPECT_EQ(back->version, d.version);
    EXPECT_EQ(back->model_id, d.model_id);
}

TEST(twin_storage, storage_text_is_byte_for_byte_the_serialized_storage_json) {
    auto same = [](const twin_document& d) {
        EXPECT_EQ(to_storage_text(d), json::serialize(to_storage_json(d)));
    };
    same(twin_document{});
    auto d = new_twin(t0);
    same(d);
    patch_ok(d, R"({"tags":{"t":[1,2],"s":"a\"b\\c\n\u0001é"},"properties":{"desired":{"a":{"b":1.5,"c":-7}}}})", t1);
    ASSERT_TRUE(apply_reported_patch(d, val(R"({"r":true,"n":{"deep":{"er":[1,2.25]}}})"), t2));
    same(d);
    // Values the writers would reject still serialize the same way.
    d.tags["odd"] = val(R"({"x":null,"a":[1e300,-0.0,18446744073709551615,-9223372036854775808,{}],"e":""})");
    same(d);
    d.model_id = "dtmi:com:example:Thermostat;1 \"quoted\" \\ \t";
    d.etag = 0xFFFFFFFFFFFFFFF0ULL;
    d.version = INT64_MAX;
    d.desired_version = -3;
    same(d);
    // Large sections (more than the serializer's buffer).
    for (int i = 0; i < 300; ++i) d.reported["key" + std::to_string(i)] = std::string(50, static_cast<char>('a' + i % 26));
    same(d);
    auto back = from_storage_json(json::parse(to_storage_text(d)));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->reported, d.reported);
}

TEST(twin_storage, corrupt_records_fail_with_corrupt_data) {
    auto good = to_storage_json(new_twin(t0));
    for (auto key : {"tags", "desired", "desired_metadata", "desired_version", "etag", "version", "model_id", "v"}) {
        auto o = good;
        o.erase(key);
        auto r = from_storage_json(o);
        ASSERT_FALSE(r) << key;
        EXPECT_EQ(r.error().code, errc::corrupt_data);
        EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
    }
    auto o = good;
    o["desired"] = json::array{};
    EXPECT_FALSE(from_storage_json(o));
    EXPECT_FALSE(from_storage_json(val("null")));
}
