// The hub's one error-body builder: REST, MQTT twin, method-endpoint and AMQP twin bodies.
#include "common/error_body.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

using namespace twinhub;
using namespace std::chrono_literals;
namespace json = boost::json;

TEST(error_body, has_message_and_exception_message_in_hub_format) {
    auto t = parse_time("2026-11-27T22:48:21.5Z");
    ASSERT_TRUE(t);
    auto body = rest_error_body(error{errc::device_not_found, "Device 'dev9' not found."}, "0f9c", *t);
    auto v = boost::json::parse(body).as_object();
    EXPECT_EQ(v.at("Message").as_string(), "ErrorCode:DeviceNotFound;Device 'dev9' not found.");
    EXPECT_EQ(v.at("ExceptionMessage").as_string(), "Tracking ID:0f9c-G:0-TimeStamp:11/27/2026 22:48:21");
    EXPECT_EQ(v.size(), 2u);
}

TEST(error_body, semicolons_in_text_do_not_break_node_parsing) {
    auto body = rest_error_body(error{errc::invalid_argument, "a;b;c"}, "x", now());
    auto m = boost::json::parse(body).as_object().at("Message").as_string();
    EXPECT_EQ(m, "ErrorCode:ArgumentInvalid;a,b,c");
}

// Regression (found by rest_fuzz): a message quoting request bytes that are not UTF-8 (a method,
// an id or a path segment) made the whole error body invalid JSON; they become U+FFFD.
TEST(error_body, invalid_utf8_in_the_message_still_gives_a_json_body) {
    const std::string bad =
        "The method \xfb\xda\xf4 is not allowed; id 'a\xc3' 'b\xed\xa0\x80' ok '\xc3\xa9\xf0\x9f\x98\x80'";
    auto body = rest_error_body(error{errc::method_not_allowed, bad}, "x", now());
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    ASSERT_FALSE(ec) << body;
    EXPECT_EQ(
        v.as_object().at("Message").as_string(),
        "ErrorCode:InvalidOperation;The method \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd is not allowed, id 'a\xef\xbf\xbd' "
        "'b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd' ok '\xc3\xa9\xf0\x9f\x98\x80'");
}

TEST(error_body, method_error_body_nests_the_error_as_the_real_hub_does) {
    const std::string body = method_error_body(error{errc::device_not_online, "offline"}, 90s);
    auto outer = json::parse(body).as_object();
    EXPECT_EQ(outer.at("ExceptionMessage").as_string(), "");
    auto inner = json::parse(outer.at("Message").as_string()).as_object();
    EXPECT_EQ(inner.at("errorCode").as_int64(), 404103);
    EXPECT_EQ(inner.at("message").as_string(), "offline");
    EXPECT_EQ(inner.at("info").at("timeout").as_string(), "00:01:30");
    EXPECT_FALSE(inner.at("trackingId").as_string().empty());
    EXPECT_EQ(inner.at("timestampUtc").as_string().back(), 'Z');

    inner =
        json::parse(json::parse(method_error_body(error{errc::gateway_timeout, "t"}, 3600s)).at("Message").as_string())
            .as_object();
    EXPECT_EQ(inner.at("errorCode").as_int64(), 504101);
    EXPECT_EQ(inner.at("info").at("timeout").as_string(), "01:00:00");
}

TEST(error_body, only_not_online_and_timeout_use_the_method_error_body) {
    EXPECT_TRUE(uses_method_error_body(errc::device_not_online));
    EXPECT_TRUE(uses_method_error_body(errc::gateway_timeout));
    EXPECT_FALSE(uses_method_error_body(errc::device_not_found));
    EXPECT_FALSE(uses_method_error_body(errc::invalid_argument));
    EXPECT_FALSE(uses_method_error_body(errc::message_too_large));
}

TEST(error_body, twin_error_body_has_code_tracking_id_message_and_time) {
    auto v = json::parse(twin_error_body(error{errc::device_not_found, "Device 'd9' not found."})).as_object();
    EXPECT_EQ(v.at("errorCode").as_int64(), 404001);
    EXPECT_EQ(v.at("message").as_string(), "Device 'd9' not found.");
    EXPECT_EQ(v.at("trackingId").as_string().size(), 32u);
    EXPECT_EQ(v.at("timestampUtc").as_string().back(), 'Z');
    EXPECT_EQ(v.size(), 4u);
    EXPECT_NE(twin_error_body(error{errc::internal, "x"}), twin_error_body(error{errc::internal, "x"}));
}

TEST(error_body, amqp_twin_error_body_has_code_and_message) {
    EXPECT_EQ(amqp_twin_error_body(error{errc::precondition_failed, "stale"}),
              R"({"errorCode":412001,"message":"stale"})");
}

// Every device-facing body stays JSON when the message quotes bytes that are not UTF-8.
TEST(error_body, device_bodies_replace_invalid_utf8) {
    const error e{errc::invalid_argument, "id 'a\xc3'"};
    for (const std::string& body : {twin_error_body(e), amqp_twin_error_body(e), method_error_body(e, 5s)}) {
        boost::system::error_code ec;
        (void)json::parse(body, ec);
        EXPECT_FALSE(ec) << body;
    }
}
