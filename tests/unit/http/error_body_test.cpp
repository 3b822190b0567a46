#include "http/error_body.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::http;

TEST(error_body, has_message_and_exception_message_in_hub_format) {
    auto t = parse_time("2026-11-27T22:48:21.5Z");
    ASSERT_TRUE(t);
    auto body = format_error_body(error{errc::device_not_found, "Device 'dev9' not found."}, "0f9c", *t);
    auto v = boost::json::parse(body).as_object();
    EXPECT_EQ(v.at("Message").as_string(), "ErrorCode:DeviceNotFound;Device 'dev9' not found.");
    EXPECT_EQ(v.at("ExceptionMessage").as_string(), "Tracking ID:0f9c-G:0-TimeStamp:11/27/2026 22:48:21");
    EXPECT_EQ(v.size(), 2u);
}

TEST(error_body, semicolons_in_text_do_not_break_node_parsing) {
    auto body = format_error_body(error{errc::invalid_argument, "a;b;c"}, "x", now());
    auto m = boost::json::parse(body).as_object().at("Message").as_string();
    EXPECT_EQ(m, "ErrorCode:ArgumentInvalid;a,b,c");
}

TEST(error_body, response_carries_status_and_errorcode_header) {
    auto r = error_response(error{errc::precondition_failed, "stale"});
    EXPECT_EQ(r.status, 412);
    ASSERT_NE(r.header("iothub-errorcode"), nullptr);
    EXPECT_EQ(*r.header("iothub-errorcode"), "PreconditionFailed");
    auto dup = error_response(error{errc::device_defined_multiple_times, "dup"});
    EXPECT_EQ(dup.status, 400);
    EXPECT_EQ(*dup.header("iothub-errorcode"), "DeviceDefinedMultipleTimes");
    auto big = error_response(error{errc::message_too_large, "big"});
    EXPECT_EQ(big.status, 413);
}

TEST(error_body, tracking_ids_differ_per_response) {
    auto a = error_response(error{errc::internal, "x"});
    auto b = error_response(error{errc::internal, "x"});
    EXPECT_NE(a.body, b.body);
}

// Regression (found by rest_fuzz): a message quoting request bytes that are not UTF-8 (a method,
// an id or a path segment) made the whole error body invalid JSON; they become U+FFFD.
TEST(error_body, invalid_utf8_in_the_message_still_gives_a_json_body) {
    const std::string bad = "The method \xfb\xda\xf4 is not allowed; id 'a\xc3' 'b\xed\xa0\x80' ok '\xc3\xa9\xf0\x9f\x98\x80'";
    auto body = format_error_body(error{errc::method_not_allowed, bad}, "x", now());
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    ASSERT_FALSE(ec) << body;
    EXPECT_EQ(v.as_object().at("Message").as_string(),
              "ErrorCode:InvalidOperation;The method \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd is not allowed, id 'a\xef\xbf\xbd' "
              "'b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd' ok '\xc3\xa9\xf0\x9f\x98\x80'");
}
