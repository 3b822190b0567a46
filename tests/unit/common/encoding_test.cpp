#include "common/encoding.hpp"

#include <gtest/gtest.h>

using namespace twinhub;

TEST(base64, encodes_with_padding) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("testkeytestkeytestkey"), "dGVzdGtleXRlc3RrZXl0ZXN0a2V5");
}

TEST(base64, decodes_and_rejects_malformed) {
    EXPECT_EQ(base64_decode("Zm8="), "fo");
    EXPECT_EQ(base64_decode("Zg=="), "f");
    EXPECT_FALSE(base64_decode("Zm8"));     // not a multiple of 4
    EXPECT_FALSE(base64_decode("Z=m8"));    // padding inside
    EXPECT_FALSE(base64_decode("Zm8*"));    // bad alphabet
    EXPECT_FALSE(base64_decode("Zm8=Zm8="));  // padding before the end
}

TEST(percent, decodes_and_rejects_truncated_escapes) {
    EXPECT_EQ(percent_decode("myhub%2Fdevices%2fdev1"), "myhub/devices/dev1");
    EXPECT_EQ(percent_decode("a+b"), "a+b");
    EXPECT_FALSE(percent_decode("abc%2"));
    EXPECT_FALSE(percent_decode("abc%"));
    EXPECT_FALSE(percent_decode("%zz"));
}

TEST(percent, encodes_reserved_characters) {
    EXPECT_EQ(percent_encode("dev 1/x"), "dev%201%2Fx");
    EXPECT_EQ(percent_encode("a-b_c.d~"), "a-b_c.d~");
}

TEST(keys, generated_key_is_32_random_bytes_in_base64) {
    auto k1 = generate_key(), k2 = generate_key();
    EXPECT_EQ(k1.size(), 44u);
    EXPECT_EQ(base64_decode(k1)->size(), 32u);
    EXPECT_NE(k1, k2);
}

TEST(hmac, matches_rfc4231_case_2) {
    std::string mac = hmac_sha256("Jefe", "what do ya want for nothing?");
    EXPECT_EQ(base64_encode(mac), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
}

TEST(secure_equals, compares_length_and_content) {
    EXPECT_TRUE(secure_equals("abc", "abc"));
    EXPECT_FALSE(secure_equals("abc", "abd"));
    EXPECT_FALSE(secure_equals("abc", "abcd"));
}
