#include "http/request_target.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::http;

TEST(request_target, splits_on_raw_slash_before_decoding) {
    auto t = parse_request_target("/devices/dev%201%2Fx?api-version=2021-04-12");
    ASSERT_TRUE(t);
    ASSERT_EQ(t->segments.size(), 2u);
    EXPECT_EQ(t->segments[0], "devices");
    EXPECT_EQ(t->segments[1], "dev 1/x");
}

TEST(request_target, trailing_slash_is_ignored) {
    auto a = parse_request_target("/devices/?api-version=1");
    auto b = parse_request_target("/devices?api-version=1");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->segments, b->segments);
    EXPECT_EQ(a->segments, std::vector<std::string>{"devices"});
}

TEST(request_target, root_has_no_segments) {
    auto t = parse_request_target("/");
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->segments.empty());
}

TEST(request_target, empty_inner_segment_is_rejected) {
    auto t = parse_request_target("/devices//modules");
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, errc::invalid_argument);
}

TEST(request_target, malformed_escape_is_rejected) {
    EXPECT_FALSE(parse_request_target("/devices/ab%2"));
    EXPECT_FALSE(parse_request_target("/devices/ab%zz"));
}

TEST(request_target, target_must_start_with_slash) {
    EXPECT_FALSE(parse_request_target("devices"));
    EXPECT_FALSE(parse_request_target("http://host/devices"));
}

TEST(request_target, query_values_are_decoded) {
    auto t = parse_request_target("/devices?top=10&api-version=2020-09-30&x=a%20b+c&flag");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->query_value("top"), "10");
    EXPECT_EQ(t->query_value("api-version"), "2020-09-30");
    EXPECT_EQ(t->query_value("x"), "a b c");
    EXPECT_EQ(t->query_value("flag"), "");
    EXPECT_FALSE(t->query_value("missing"));
}

TEST(request_target, plus_in_path_stays_plus) {
    auto t = parse_request_target("/devices/a+b");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->segments[1], "a+b");
}

TEST(request_target, target_path_strips_query) {
    EXPECT_EQ(target_path("/$iothub/websocket?iothub-no-client-cert=true"), "/$iothub/websocket");
    EXPECT_EQ(target_path("/a"), "/a");
}
