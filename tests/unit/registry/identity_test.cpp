#include "registry/identity.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

using namespace twinhub;
using namespace twinhub::registry;

TEST(identity_id, accepts_every_allowed_character) {
    EXPECT_TRUE(validate_id("abcXYZ019-.+%_#*?!(),=@$':;", "deviceId"));
    EXPECT_TRUE(validate_id("a", "deviceId"));
}

TEST(identity_id, accepts_128_characters) { EXPECT_TRUE(validate_id(std::string(128, 'a'), "deviceId")); }

TEST(identity_id, rejects_129_characters) {
    auto r = validate_id(std::string(129, 'a'), "deviceId");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message, "deviceId is 129 characters long; the maximum is 128.");
}

TEST(identity_id, rejects_empty) {
    auto r = validate_id("", "moduleId");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message, "moduleId must not be empty.");
}

TEST(identity_id, rejects_slash_and_names_it) {
    auto r = validate_id("invalid/name", "deviceId");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_NE(r.error().message.find("deviceId 'invalid/name' contains '/'"), std::string::npos) << r.error().message;
}

TEST(identity_id, rejects_space_backslash_non_ascii_and_controls) {
    for (std::string bad : std::vector<std::string>{"a b", "a\\b", "a\"b", "a&b", "a<b", "a{b", "a~b", "a^b", "a|b", "a[b", "caf\xC3\xA9",
                            std::string("a\0b", 3), "a\nb", "a\x7f"}) {
        EXPECT_FALSE(validate_id(bad, "deviceId")) << bad;
    }
}

TEST(identity_id, message_omits_unprintable_ids) {
    auto r = validate_id("a\nb", "deviceId");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
    EXPECT_NE(r.error().message.find("byte 0x0A"), std::string::npos) << r.error().message;
}

TEST(identity_etag, is_base64_of_decimal_counter) {
    EXPECT_EQ(etag_to_string(0), "MA==");
    EXPECT_EQ(etag_to_string(8815808), "ODgxNTgwOA==");
    EXPECT_EQ(etag_to_string(1), "MQ==");
}

TEST(identity_generation_id, looks_like_dotnet_ticks_and_is_unique) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto g = new_generation_id();
        EXPECT_EQ(g.size(), 18u) << g;
        EXPECT_EQ(g.find_first_not_of("0123456789"), std::string::npos) << g;
        EXPECT_GT(g, std::string("638000000000000000"));  // after 2022
        EXPECT_TRUE(seen.insert(g).second) << "duplicate " << g;
    }
}

TEST(identity_if_match, accepts_all_wildcard_spellings) {
    EXPECT_TRUE(if_match_is_wildcard("*"));
    EXPECT_TRUE(if_match_is_wildcard("\"*\""));
    EXPECT_TRUE(if_match_is_wildcard(" * "));
    EXPECT_FALSE(if_match_is_wildcard("MA=="));
    EXPECT_FALSE(if_match_is_wildcard(""));
    EXPECT_TRUE(if_match_matches("*", "MA=="));
    EXPECT_TRUE(if_match_matches("\"*\"", "MA=="));
}

TEST(identity_if_match, compares_after_stripping_quotes_and_weak_prefix) {
    EXPECT_TRUE(if_match_matches("MA==", "MA=="));
    EXPECT_TRUE(if_match_matches("\"MA==\"", "MA=="));
    EXPECT_TRUE(if_match_matches("W/\"MA==\"", "MA=="));
    EXPECT_TRUE(if_match_matches("\"MA==\"", "\"MA==\""));
    EXPECT_FALSE(if_match_matches("\"abc\"", "MA=="));
    EXPECT_FALSE(if_match_matches("\"MQ==\"", "MA=="));
    EXPECT_FALSE(if_match_matches("", "MA=="));
    EXPECT_FALSE(if_match_matches("\"\"", ""));
}
