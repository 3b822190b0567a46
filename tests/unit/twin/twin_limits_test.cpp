#include "twin/twin_limits.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::twin;
namespace json = boost::json;

namespace {

json::object obj(std::string_view s) { return json::parse(s).as_object(); }

json::object one(std::string key, json::value v) {
    json::object o;
    o[key] = std::move(v);
    return o;
}

std::string failure(const json::object& patch, std::string_view path = "properties.desired") {
    auto r = validate_patch(patch, path);
    EXPECT_FALSE(r) << json::serialize(patch).substr(0, 200);
    if (r) return {};
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    return r.error().message;
}

// {"l1":{"l2":{...{"l<levels>":{"leaf":1}}}}}: the deepest object sits at nesting level `levels`.
json::object nested(int levels) {
    json::value v = json::object{{"leaf", 1}};
    for (int i = levels; i >= 2; --i) v = json::object{{"l" + std::to_string(i), v}};
    return json::object{{"l1", v}};
}

}  // namespace

TEST(twin_limits, key_of_1024_bytes_is_accepted_and_1025_rejected) {
    EXPECT_TRUE(validate_patch(one(std::string(1024, 'k'), 1), "tags"));
    auto m = failure(one(std::string(1025, 'k'), 1), "tags");
    EXPECT_NE(m.find("is 1025 bytes long; the maximum is 1024"), std::string::npos) << m;
    EXPECT_NE(m.find("in 'tags'"), std::string::npos) << m;
}

TEST(twin_limits, key_length_counts_utf8_bytes) {
    std::string e_acute = "\xC3\xA9";
    std::string k512, k513;
    for (int i = 0; i < 512; ++i) k512 += e_acute;
    k513 = k512 + "x";
    EXPECT_TRUE(validate_patch(one(k512, 1), "tags"));
    failure(one(k513, 1), "tags");
}

TEST(twin_limits, key_rejects_dot_dollar_space_and_controls) {
    EXPECT_NE(failure(one("a.b", 1)).find("contains '.'"), std::string::npos);
    EXPECT_NE(failure(one("a$b", 1)).find("contains '$'"), std::string::npos);
    EXPECT_NE(failure(one("$version2", 1)).find("contains '$'"), std::string::npos);
    EXPECT_NE(failure(one("a b", 1)).find("contains a space"), std::string::npos);
    EXPECT_NE(failure(one("a\tb", 1)).find("control character"), std::string::npos);
    EXPECT_NE(failure(one(std::string("a\0b", 3), 1)).find("control character"), std::string::npos);
    EXPECT_NE(failure(one("a\xC2\x85" "b", 1)).find("control character"), std::string::npos);  // U+0085 (C1)
    EXPECT_TRUE(validate_patch(one("caf\xC3\xA9-_#:;!", 1), "tags"));
}

TEST(twin_limits, nested_key_error_names_the_path) {
    auto m = failure(obj(R"({"a":{"b":{"c.d":1}}})"));
    EXPECT_NE(m.find("'c.d' in 'properties.desired.a.b'"), std::string::npos) << m;
}

TEST(twin_limits, values_of_every_json_type_are_accepted) {
    EXPECT_TRUE(validate_patch(obj(R"({"b":true,"i":-3,"d":1.5,"s":"x","o":{"x":1},"a":[1,"x",{"y":2},[3]]})"),
                               "properties.desired"));
}

TEST(twin_limits, null_member_is_a_delete_but_null_in_array_is_rejected) {
    EXPECT_TRUE(validate_patch(obj(R"({"a":null,"b":{"c":null}})"), "tags"));
    EXPECT_EQ(failure(obj(R"({"arr":[1,null]})")),
              "Value of Property or Tag cannot be null. Error in Property/Tag 'properties.desired.arr[1]'.");
    EXPECT_EQ(failure(obj(R"({"arr":[{"x":null}]})")),
              "Value of Property or Tag cannot be null. Error in Property/Tag 'properties.desired.arr[0].x'.");
}

TEST(twin_limits, integer_bounds) {
    EXPECT_TRUE(validate_patch(obj(R"({"max":4503599627370495,"min":-4503599627370496})"), "tags"));
    auto m = failure(obj(R"({"x":{"too_big":4503599627370496}})"));
    EXPECT_EQ(m, "Value of 'properties.desired.x.too_big' is out of range; integers must lie between "
                 "-4503599627370496 and 4503599627370495.");
    failure(obj(R"({"too_small":-4503599627370497})"));
    failure(obj(R"({"huge":18446744073709551615})"));
    failure(obj(R"({"in_array":[4503599627370496]})"));
    EXPECT_TRUE(validate_patch(obj(R"({"double":1e300})"), "tags"));
}

TEST(twin_limits, string_of_4096_bytes_is_accepted_and_4097_rejected) {
    EXPECT_TRUE(validate_patch(one("s", json::string(std::string(4096, 'x'))), "tags"));
    auto m = failure(one("s", json::string(std::string(4097, 'x'))));
    EXPECT_EQ(m, "String value of 'properties.desired.s' is 4097 bytes long; the maximum is 4096.");
    failure(one("arr", json::array{json::value(std::string(4097, 'x'))}));
}

TEST(twin_limits, depth_of_10_is_accepted_and_11_rejected) {
    EXPECT_TRUE(validate_patch(nested(10), "tags"));
    auto m = failure(nested(11), "tags");
    EXPECT_NE(m.find("'tags.l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11' is nested too deeply"), std::string::npos) << m;
}

TEST(twin_limits, arrays_count_as_nesting_levels) {
    // Level 10 array holding scalars: fine. Level 10 array holding an object (level 11): too deep.
    json::object ok = nested(9);
    json::object bad = nested(9);
    json::object* deepest = &ok;
    json::object* deepest_bad = &bad;
    for (int i = 1; i <= 9; ++i) {
        deepest = &deepest->at("l" + std::to_string(i)).as_object();
        deepest_bad = &deepest_bad->at("l" + std::to_string(i)).as_object();
    }
    (*deepest)["arr"] = json::array{1, 2};
    (*deepest_bad)["arr"] = json::array{json::object{{"x", 1}}};
    EXPECT_TRUE(validate_patch(ok, "tags"));
    failure(bad, "tags");
}

TEST(twin_limits, array_property_of_4096_bytes_is_accepted_and_4104_rejected) {
    json::array a512, a513;
    for (int i = 0; i < 512; ++i) a512.emplace_back(i);
    a513 = a512;
    a513.emplace_back(1);
    EXPECT_TRUE(validate_patch(one("a", a512), "tags"));
    EXPECT_EQ(failure(one("a", a513)), "Value of 'properties.desired.a' is 4104 bytes; the maximum is 4096.");
}

TEST(twin_limits, size_algorithm) {
    EXPECT_EQ(section_size(obj(R"({"ab":true})")), 2u + 4u);
    EXPECT_EQ(section_size(obj(R"({"a":1,"b":1.5,"c":"xyz"})")), 3u + 8u + 8u + 3u);
    EXPECT_EQ(section_size(obj(R"({"a":{"bb":{"c":false}}})")), 1u + 2u + 1u + 4u);
    EXPECT_EQ(section_size(obj(R"({"a":[1,"xy",true]})")), 1u + 8u + 2u + 4u);
    EXPECT_EQ(section_size(obj(R"({"s":"a\nb\u0085c\u00e9"})")), 1u + 3u + 2u);  // controls not counted
    // Without a C1 control (no C2 lead byte) only C0 controls drop out; other UTF-8 counts by bytes.
    EXPECT_EQ(section_size(obj(R"({"s":"a\tb\u0001c\u00e9\u20ac"})")), 1u + 3u + 2u + 3u);
    EXPECT_EQ(section_size(obj(R"({"s":"\u00c2\u0085"})")), 1u + 2u);  // U+00C2 (C3 82) then a C1 control
}

TEST(twin_limits, section_size_limit_is_inclusive) {
    json::object tags;
    tags["a"] = std::string(4095, 'x');
    tags["b"] = std::string(4095, 'x');
    EXPECT_EQ(section_size(tags), 8192u);
    EXPECT_TRUE(check_section_size(tags, "tags", max_tags_bytes));
    tags["b"] = std::string(4096, 'x');
    auto r = check_section_size(tags, "tags", max_tags_bytes);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message, "Twin section 'tags' would be 8193 bytes; the maximum is 8192.");
}
