#include "http/error_body.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::http;

TEST(error_response, response_carries_status_and_errorcode_header) {
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

TEST(error_response, tracking_ids_differ_per_response) {
    auto a = error_response(error{errc::internal, "x"});
    auto b = error_response(error{errc::internal, "x"});
    EXPECT_NE(a.body, b.body);
}


TEST(error_response, method_errors_use_the_method_body_only_for_not_online_and_timeout) {
    using namespace std::chrono_literals;
    auto off = method_error_response(error{errc::device_not_online, "offline"}, 10s);
    EXPECT_EQ(off.status, 404);
    EXPECT_EQ(*off.header("iothub-errorcode"), "DeviceNotOnline");
    auto inner = boost::json::parse(boost::json::parse(off.body).at("Message").as_string());
    EXPECT_EQ(inner.at("info").at("timeout").as_string(), "00:00:10");
    auto gone = method_error_response(error{errc::device_not_found, "gone"}, 10s);
    EXPECT_EQ(gone.status, 404);
    EXPECT_EQ(std::string(boost::json::parse(gone.body).at("Message").as_string()), "ErrorCode:DeviceNotFound;gone");
}
