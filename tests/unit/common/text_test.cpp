#include "common/text.hpp"

#include <gtest/gtest.h>

using namespace twinhub;

TEST(text, iequals_ignores_ascii_case_only) {
    EXPECT_TRUE(iequals("Content-Type", "content-TYPE"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("abc", "abd"));
    EXPECT_FALSE(iequals("abc", "ab"));
    EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));  // é vs É: not ASCII, compared exactly
    EXPECT_FALSE(iequals("[", "{"));                // '[' + 32 == '{' but neither is a letter
}

TEST(text, ascii_lower_keeps_other_bytes) {
    EXPECT_EQ(ascii_lower("IoTHub-MessageId"), "iothub-messageid");
    EXPECT_EQ(ascii_lower("\xc3\x89Z["), "\xc3\x89z[");
}

TEST(text, trim_strips_the_given_whitespace) {
    EXPECT_EQ(trim("  a b \t\r\n"), "a b");
    EXPECT_EQ(trim(" \t "), "");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("\r\nx\r\n", " \t"), "\r\nx\r\n");
    EXPECT_EQ(trim(" \tx\t ", " \t"), "x");
}
