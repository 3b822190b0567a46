#include "proto/iothub/property_bag.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::iothub;
using kv = std::pair<std::string, std::string>;

TEST(property_bag, decodes_system_and_application_properties) {
    auto b = decode_property_bag(
        "%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&alert=high%20temp&%24weird=a%26b%3Dc&flag&empty=");
    ASSERT_TRUE(b);
    ASSERT_EQ(b->system.size(), 3u);
    EXPECT_EQ(b->system[0], (std::pair<std::string, std::string>{"$.mid", "mid-1"}));
    EXPECT_EQ(b->system[1].second, "cid 1");
    EXPECT_EQ(b->system[2].second, "application/json");
    ASSERT_EQ(b->application.size(), 4u);
    EXPECT_EQ(b->application[0], (std::pair<std::string, std::string>{"alert", "high temp"}));
    EXPECT_EQ(b->application[1], (std::pair<std::string, std::string>{"$weird", "a&b=c"}));
    EXPECT_EQ(b->application[2].first, "flag");
    EXPECT_EQ(b->application[3].second, "");
    EXPECT_FALSE(decode_property_bag("a=%z1"));
}

TEST(property_bag, encode_puts_system_properties_first_and_escapes_both_sides) {
    property_bag b;
    b.application = {{"alert", "high temp"}, {"$weird", "a&b=c"}};
    b.system = {{"$.mid", "mid-1"}, {"$.ct", "application/json"}};
    EXPECT_EQ(encode_property_bag(b), "%24.mid=mid-1&%24.ct=application%2Fjson&alert=high%20temp&%24weird=a%26b%3Dc");
    EXPECT_EQ(encode_property_bag({}), "");
}

TEST(property_bag, lenient_decoding_keeps_bad_escapes_and_empty_keys) {
    auto b = decode_property_bag_lenient("%24.mid=a%zz&=v&x=%41&&flag");
    ASSERT_EQ(b.system.size(), 1u);
    EXPECT_EQ(b.system[0], (kv{"$.mid", "a%zz"}));
    EXPECT_EQ(b.application, (std::vector<kv>{{"", "v"}, {"x", "A"}, {"flag", ""}}));
    // The strict (hub) decoder refuses the bad escape and skips the empty key.
    EXPECT_FALSE(decode_property_bag("%24.mid=a%zz"));
    auto strict = decode_property_bag("=v&x=%41");
    ASSERT_TRUE(strict);
    EXPECT_EQ(strict->application, (std::vector<kv>{{"x", "A"}}));
}
