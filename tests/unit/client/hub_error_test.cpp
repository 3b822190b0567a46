#include "client/hub_error.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::client;

TEST(hub_error, rest_body_gives_code_and_text) {
    auto e = parse_rest_error(404, R"({"Message":"ErrorCode:DeviceNotFound;Device 'dev9' not found.","ExceptionMessage":"Tracking ID:1"})");
    EXPECT_EQ(e.code, errc::device_not_found);
    EXPECT_EQ(e.message, "Device 'dev9' not found.");
}

TEST(hub_error, stale_etag_is_precondition_failed) {
    auto e = parse_rest_error(412, R"({"Message":"ErrorCode:PreconditionFailed;Precondition failed: Device version did not match"})");
    EXPECT_EQ(e.code, errc::precondition_failed);
    EXPECT_NE(e.message.find("did not match"), std::string::npos);
}

TEST(hub_error, missing_api_version_is_invalid_protocol_version) {
    auto e = parse_rest_error(400, R"({"Message":"ErrorCode:InvalidProtocolVersion;BadRequest","ExceptionMessage":"Tracking ID:1"})");
    EXPECT_EQ(e.code, errc::invalid_protocol_version);
    EXPECT_EQ(errc_from_code_number(400001), errc::invalid_protocol_version);
}

TEST(hub_error, module_not_found_is_not_device_not_found) {
    auto e = parse_rest_error(404, R"({"Message":"ErrorCode:ModuleNotFound;Module 'm' not found."})");
    EXPECT_EQ(e.code, errc::module_not_found);
}

TEST(hub_error, direct_method_error_json_inside_message) {
    auto e = parse_rest_error(
        404, R"({"Message":"{\"errorCode\":404103,\"trackingId\":\"x\",\"message\":\"The device isn't online.\"}","ExceptionMessage":""})");
    EXPECT_EQ(e.code, errc::device_not_online);
    EXPECT_EQ(e.message, "The device isn't online.");
}

TEST(hub_error, non_json_body_falls_back_to_status_and_body) {
    auto e = parse_rest_error(401, "Unauthorized");
    EXPECT_EQ(e.code, errc::unauthorized);
    EXPECT_EQ(e.message, "Unauthorized");
    auto empty = parse_rest_error(503, "");
    EXPECT_EQ(empty.code, errc::shutting_down);
    EXPECT_EQ(empty.message, "HTTP 503");
}

TEST(hub_error, errorcode_header_used_when_body_has_none) {
    auto e = parse_rest_error(409, "conflict", "ModuleAlreadyExistsOnDevice");
    EXPECT_EQ(e.code, errc::module_already_exists);
}

TEST(hub_error, mqtt_twin_error_json) {
    auto e = parse_twin_error(400, R"({"errorCode":400004,"trackingId":"t","message":"Value of Property or Tag cannot be null.","timestampUtc":"x"})");
    EXPECT_EQ(e.code, errc::invalid_argument);
    EXPECT_EQ(e.message, "Value of Property or Tag cannot be null.");
}

TEST(hub_error, mqtt_twin_error_without_body_uses_status) {
    auto e = parse_twin_error(429, "");
    EXPECT_EQ(e.code, errc::throttled);
    EXPECT_NE(e.message.find("429"), std::string::npos);
}

TEST(hub_error, unknown_code_number_falls_back_to_its_status) {
    EXPECT_EQ(errc_from_code_number(404999), errc::not_found);
    EXPECT_EQ(errc_from_code_number(412001), errc::precondition_failed);
    EXPECT_EQ(errc_from_code_name("NoSuchCode"), errc::ok);
}

TEST(hub_error, amqp_conditions_of_c2d_sends) {
    EXPECT_EQ(errc_from_amqp_condition("amqp:not-found"), errc::device_not_found);
    EXPECT_EQ(errc_from_amqp_condition("amqp:not-found", "Module 'm' of device 'd' not found.", true),
              errc::module_not_found);
    EXPECT_EQ(errc_from_amqp_condition("amqp:not-found", "Device 'd' not found.", true), errc::device_not_found);
    EXPECT_EQ(errc_from_amqp_condition("amqp:resource-limit-exceeded"), errc::device_queue_full);
    EXPECT_EQ(errc_from_amqp_condition("amqp:link:message-size-exceeded"), errc::message_too_large);
    EXPECT_EQ(errc_from_amqp_condition("amqp:unauthorized-access"), errc::unauthorized);
    EXPECT_EQ(errc_from_amqp_condition("com.microsoft:argument-error"), errc::invalid_argument);
    EXPECT_EQ(errc_from_amqp_condition("com.microsoft:message-lock-lost"), errc::message_lock_lost);
    EXPECT_EQ(errc_from_amqp_condition("x:unknown"), errc::internal);
}
