#include "client/json_patch.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

using namespace twinhub::client;
namespace json = boost::json;

static json::object obj(const char* s) { return json::parse(s).as_object(); }

TEST(merge_patch_diff, changed_added_and_removed_keys) {
    auto d = merge_patch_diff(obj(R"({"a":1,"b":2,"c":{"x":1,"y":2}})"), obj(R"({"a":1,"b":3,"c":{"x":1},"d":"new"})"));
    EXPECT_EQ(d, obj(R"({"b":3,"c":{"y":null},"d":"new"})"));
}

TEST(merge_patch_diff, ignores_dollar_keys_and_is_empty_when_equal) {
    auto d = merge_patch_diff(obj(R"({"a":1,"$version":3})"), obj(R"({"a":1,"$version":4,"$metadata":{}})"));
    EXPECT_TRUE(d.empty());
}

TEST(merge_patch_diff, everything_removed_lists_each_top_level_key_as_null) {
    auto d = merge_patch_diff(obj(R"({"a":1,"b":{"c":2}})"), obj("{}"));
    EXPECT_EQ(d, obj(R"({"a":null,"b":null})"));
}

TEST(apply_merge_patch, null_deletes_nested_key_and_objects_merge) {
    auto t = obj(R"({"a":{"x":1,"y":2},"b":1})");
    apply_merge_patch(t, obj(R"({"a":{"y":null,"z":3},"b":[1,2],"$version":5})"));
    EXPECT_EQ(t, obj(R"({"a":{"x":1,"z":3},"b":[1,2]})"));
}

TEST(apply_merge_patch, diff_then_apply_round_trips) {
    auto from = obj(R"({"telemetryInterval":5,"mode":{"fast":true,"level":2},"gone":1})");
    auto to = obj(R"({"telemetryInterval":10,"mode":{"fast":true},"new":"x"})");
    auto t = from;
    apply_merge_patch(t, merge_patch_diff(from, to));
    EXPECT_EQ(t, to);
}
