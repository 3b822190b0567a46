#include "common/error_mapping.hpp"

#include <gtest/gtest.h>

using namespace twinhub;

TEST(error_mapping, iot_hub_codes_for_registry_errors) {
    EXPECT_EQ(to_wire(errc::device_not_found).http_status, 404);
    EXPECT_STREQ(to_wire(errc::device_not_found).code_name, "DeviceNotFound");
    EXPECT_EQ(to_wire(errc::device_already_exists).code_number, 409001);
    EXPECT_STREQ(to_wire(errc::module_already_exists).code_name, "ModuleAlreadyExistsOnDevice");
    EXPECT_EQ(to_wire(errc::precondition_failed).http_status, 412);
    EXPECT_EQ(to_wire(errc::unauthorized).http_status, 401);
    EXPECT_STREQ(to_wire(errc::unauthorized).code_name, "IotHubUnauthorizedAccess");
    EXPECT_EQ(to_wire(errc::device_not_online).code_number, 404103);
    EXPECT_EQ(to_wire(errc::gateway_timeout).code_number, 504101);
    EXPECT_EQ(to_wire(errc::invalid_argument).code_number, 400004);
    EXPECT_EQ(to_wire(errc::invalid_protocol_version).http_status, 400);
    EXPECT_STREQ(to_wire(errc::invalid_protocol_version).code_name, "InvalidProtocolVersion");
    EXPECT_EQ(to_wire(errc::invalid_protocol_version).code_number, 400001);
}

TEST(error_mapping, every_error_is_an_http_error) {
    for (int e = 1; std::string(to_string(static_cast<errc>(e))) != "unknown"; ++e) {
        auto w = to_wire(static_cast<errc>(e));
        EXPECT_GE(w.http_status, 400) << to_string(static_cast<errc>(e));
        EXPECT_STRNE(w.code_name, "") << to_string(static_cast<errc>(e));
    }
}

TEST(error_mapping, c2d_errors_map_to_iot_hub_and_amqp_codes) {
    EXPECT_EQ(to_wire(errc::device_queue_full).http_status, 403);
    EXPECT_STREQ(to_wire(errc::device_queue_full).code_name, "DeviceMaximumQueueDepthExceeded");
    EXPECT_EQ(to_wire(errc::device_queue_full).code_number, 403004);
    EXPECT_STREQ(to_amqp_condition(errc::device_queue_full), "amqp:resource-limit-exceeded");
    EXPECT_EQ(to_wire(errc::message_too_large).code_number, 413001);
    EXPECT_STREQ(to_amqp_condition(errc::message_too_large), "amqp:link:message-size-exceeded");
    EXPECT_EQ(to_wire(errc::message_lock_lost).code_number, 412002);
    EXPECT_STREQ(to_amqp_condition(errc::message_lock_lost), "com.microsoft:message-lock-lost");
    EXPECT_STREQ(to_amqp_condition(errc::device_not_found), "amqp:not-found");
}

TEST(error_mapping, every_error_has_an_amqp_condition) {
    for (int e = 1; std::string(to_string(static_cast<errc>(e))) != "unknown"; ++e)
        EXPECT_STRNE(to_amqp_condition(static_cast<errc>(e)), "") << to_string(static_cast<errc>(e));
}

TEST(error_code, category_names_the_error) {
    boost::system::error_code ec = errc::precondition_failed;
    EXPECT_EQ(ec.message(), "precondition_failed");
    EXPECT_STREQ(ec.category().name(), "twinhub");
}

TEST(error_mapping, connack_is_5_for_every_refusal_but_a_protocol_version) {
    EXPECT_EQ(to_connack(errc::ok), 0);
    EXPECT_EQ(to_connack(errc::invalid_protocol_version), 1);
    for (int e = 1; std::string(to_string(static_cast<errc>(e))) != "unknown"; ++e) {
        if (static_cast<errc>(e) == errc::invalid_protocol_version) continue;
        EXPECT_EQ(to_connack(static_cast<errc>(e)), 5) << to_string(static_cast<errc>(e));
    }
}
