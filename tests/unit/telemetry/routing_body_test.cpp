#include "telemetry/routing_condition.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twinhub::telemetry {
namespace {

// {"t":"é😀"} in each encoding Azure allows for body queries.
const std::string json_utf8 = "{\"t\":\"\xC3\xA9\xF0\x9F\x98\x80\"}";

std::string utf16(bool big, bool bom) {
    std::u16string units = u"{\"t\":\"\u00e9\U0001F600\"}";
    std::string out;
    if (bom) units.insert(units.begin(), u'\uFEFF');
    for (char16_t u : units) {
        const char hi = static_cast<char>(u >> 8), lo = static_cast<char>(u & 0xFF);
        out += big ? hi : lo;
        out += big ? lo : hi;
    }
    return out;
}

std::string utf32(bool big, bool bom) {
    std::u32string units = U"{\"t\":\"\u00e9\U0001F600\"}";
    if (bom) units.insert(units.begin(), U'\uFEFF');
    std::string out;
    for (char32_t u : units)
        for (int k = 0; k < 4; ++k) out += static_cast<char>(u >> (8 * (big ? 3 - k : k)));
    return out;
}

bool body_matches(const std::string& body, const std::string& encoding) {
    routing_message m;
    m.body = body;
    m.content_type = "application/json";
    m.content_encoding = encoding;
    auto c = condition::compile("$body.t = '\\u00e9\\uD83D\\uDE00' AND LENGTH($body.t) = 2");
    EXPECT_TRUE(c.has_value());
    return c->matches(m);
}

TEST(routing_body, utf8_with_and_without_bom) {
    EXPECT_TRUE(body_matches(json_utf8, "utf-8"));
    EXPECT_TRUE(body_matches("\xEF\xBB\xBF" + json_utf8, "UTF-8"));
    EXPECT_FALSE(body_matches("{\"t\":\"\xC3\"}", "utf-8"));  // invalid UTF-8 is not JSON
}

TEST(routing_body, utf16_little_endian_by_default_big_endian_by_bom) {
    EXPECT_TRUE(body_matches(utf16(false, false), "utf-16"));
    EXPECT_TRUE(body_matches(utf16(false, true), "utf-16"));
    EXPECT_TRUE(body_matches(utf16(true, true), "UTF-16"));
    EXPECT_FALSE(body_matches(utf16(true, false), "utf-16"));             // big-endian needs its BOM
    EXPECT_FALSE(body_matches(utf16(false, false).substr(1), "utf-16"));  // odd length
    EXPECT_FALSE(body_matches(utf16(false, false), "utf-8"));             // wrong declared encoding
}

TEST(routing_body, utf32_little_endian_by_default_big_endian_by_bom) {
    EXPECT_TRUE(body_matches(utf32(false, false), "utf-32"));
    EXPECT_TRUE(body_matches(utf32(false, true), "utf-32"));
    EXPECT_TRUE(body_matches(utf32(true, true), "UTF-32"));
    EXPECT_FALSE(body_matches(utf32(false, false).substr(0, 7), "utf-32"));
}

TEST(routing_body, unpaired_surrogate_is_not_queryable) {
    std::string bad = utf16(false, false);
    bad[16] = 'A';  // the low surrogate that pairs with U+D83D
    bad[17] = '\x00';
    EXPECT_FALSE(parse_json_body(bad, "application/json", "utf-16").has_value());
    EXPECT_TRUE(parse_json_body(utf16(false, false), "application/json", "utf-16").has_value());
}

TEST(routing_body, parsed_once_per_input) {
    routing_message m;
    m.body = R"({"a":1})";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    condition_input in(m);
    const auto* first = in.body();
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first, in.body());
    m.content_type = "text/plain";
    condition_input plain(m);
    EXPECT_EQ(plain.body(), nullptr);
}

}  // namespace
}  // namespace twinhub::telemetry
