// The REST edge of direct methods: body validation (spec 3.8), the 200 body and the method error body
// form (spec 3.11).
#include "methods/method_invocation.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace twinhub::methods {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

TEST(method_invocation, parses_the_node_sdk_body) {
    auto r = parse_invocation_request(
        R"({"methodName":"reboot","payload":{"a":1},"responseTimeoutInSeconds":10,"connectTimeoutInSeconds":0})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->method_name, "reboot");
    EXPECT_EQ(r->payload, R"({"a":1})");
    EXPECT_EQ(r->response_timeout, 10s);
    EXPECT_EQ(r->connect_timeout, 0s);
}

TEST(method_invocation, absent_or_null_fields_take_the_defaults) {
    auto r = parse_invocation_request(R"({"methodName":"m"})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->payload, "null");
    EXPECT_EQ(r->response_timeout, 30s);
    EXPECT_EQ(r->connect_timeout, 0s);
    r = parse_invocation_request(
        R"({"methodName":"m","payload":null,"responseTimeoutInSeconds":null,"connectTimeoutInSeconds":null,"x":1})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->payload, "null");
    EXPECT_EQ(r->response_timeout, 30s);
}

TEST(method_invocation, payload_of_any_json_type_is_kept) {
    for (std::string p : {R"("text")", "42", "true", "[1,\"a\",null]", R"({"n":{"d":[]}})", "0.5"}) {
        auto r = parse_invocation_request(R"({"methodName":"m","payload":)" + p + "}");
        ASSERT_TRUE(r) << p;
        EXPECT_EQ(json::parse(r->payload), json::parse(p)) << p;
    }
}

TEST(method_invocation, timeouts_outside_their_ranges_are_argument_invalid) {
    for (std::string body : {R"({"methodName":"m","responseTimeoutInSeconds":4})",
                             R"({"methodName":"m","responseTimeoutInSeconds":301})",
                             R"({"methodName":"m","responseTimeoutInSeconds":0})",
                             R"({"methodName":"m","responseTimeoutInSeconds":-5})",
                             R"({"methodName":"m","responseTimeoutInSeconds":10.5})",
                             R"({"methodName":"m","responseTimeoutInSeconds":"10"})",
                             R"({"methodName":"m","responseTimeoutInSeconds":18446744073709551615})",
                             R"({"methodName":"m","connectTimeoutInSeconds":-1})",
                             R"({"methodName":"m","connectTimeoutInSeconds":301})",
                             R"({"methodName":"m","connectTimeoutInSeconds":true})"}) {
        auto r = parse_invocation_request(body);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().code, errc::invalid_argument) << body;
        EXPECT_NE(r.error().message.find("TimeoutInSeconds must be a whole number of seconds"), std::string::npos)
            << r.error().message;
    }
}

TEST(method_invocation, timeouts_at_their_bounds_are_accepted) {
    auto r = parse_invocation_request(R"({"methodName":"m","responseTimeoutInSeconds":5,"connectTimeoutInSeconds":300})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->response_timeout, 5s);
    EXPECT_EQ(r->connect_timeout, 300s);
    r = parse_invocation_request(R"({"methodName":"m","responseTimeoutInSeconds":300.0})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->response_timeout, 300s);
}

TEST(method_invocation, bad_bodies_say_what_is_wrong) {
    auto r = parse_invocation_request("");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::format_error);
    r = parse_invocation_request("{methodName:1}");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::format_error);
    r = parse_invocation_request("[]");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    r = parse_invocation_request(R"({"payload":1})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "methodName is required.");
    r = parse_invocation_request(R"({"methodName":5})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "methodName must be a string.");
    r = parse_invocation_request(R"({"methodName":""})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
}

TEST(method_invocation, method_names_follow_the_character_rule) {
    for (std::string ok : {"reboot", "get-logs_v2.1", "A!%&'*^`|~", "x"}) EXPECT_TRUE(validate_method_name(ok)) << ok;
    for (std::string bad : std::vector<std::string>{"a/b", "a b", "a\tb", "$edge", "a(b", "a)b", "a<b", "a>b", "a@b", "a,b", "a;b", "a:b",
                            "a\\b", "a\"b", "a[b", "a]b", "a?b", "a=b", "a{b", "a}b", "a+b", "a#b", "caf\xc3\xa9",
                            std::string("a\0b", 3), "a\x7f"}) {
        auto r = validate_method_name(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, errc::invalid_argument);
        EXPECT_NE(r.error().message.find("printable US-ASCII"), std::string::npos);
    }
    EXPECT_NE(validate_method_name("a/b").error().message.find("'/'"), std::string::npos);
    EXPECT_NE(validate_method_name("a b").error().message.find("a space"), std::string::npos);
    EXPECT_TRUE(validate_method_name(std::string(1024, 'm')));
    EXPECT_FALSE(validate_method_name(std::string(1025, 'm')));
    auto r = parse_invocation_request(R"({"methodName":"a/b"})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
}

TEST(method_invocation, payload_over_128_kb_is_message_too_large_and_128_kb_is_accepted) {
    const std::string at_limit = "\"" + std::string(128 * 1024 - 2, 'x') + "\"";
    auto r = parse_invocation_request(R"({"methodName":"m","payload":)" + at_limit + "}");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->payload.size(), 128u * 1024);
    const std::string over = "\"" + std::string(128 * 1024 - 1, 'x') + "\"";
    r = parse_invocation_request(R"({"methodName":"m","payload":)" + over + "}");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::message_too_large);
    EXPECT_NE(r.error().message.find("131073 bytes"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("128 KB"), std::string::npos);
}

TEST(method_invocation, result_body_is_status_and_payload) {
    EXPECT_EQ(format_invocation_result(200, R"({"a":1})"), R"({"status":200,"payload":{"a":1}})");
    EXPECT_EQ(format_invocation_result(-3, "null"), R"({"status":-3,"payload":null})");
    EXPECT_EQ(format_invocation_result(500, ""), R"({"status":500,"payload":null})");
    auto v = json::parse(format_invocation_result(404, R"(["x"])"));
    EXPECT_EQ(v.at("status").as_int64(), 404);
}

}  // namespace
}  // namespace twinhub::methods
