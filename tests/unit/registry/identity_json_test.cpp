#include "registry/identity.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::registry;
namespace json = boost::json;

namespace {

const std::string key1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const std::string key2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

json::value parse(std::string_view s) { return json::parse(s); }

std::string parse_error(result<device_identity> r) {
    EXPECT_FALSE(r);
    if (r) return {};
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    return r.error().message;
}

}  // namespace

TEST(identity_json, new_device_has_every_field_with_exact_names) {
    device_identity d;
    d.device_id = "Test_Device_1";
    d.generation_id = "637534345627501371";
    d.etag = 0;
    d.authentication.symmetric_key = {key1, key2};
    auto s = json::serialize(to_json(d));
    EXPECT_EQ(s,
              R"({"deviceId":"Test_Device_1","generationId":"637534345627501371","etag":"MA==",)"
              R"("connectionState":"Disconnected","status":"enabled","statusReason":null,)"
              R"("connectionStateUpdatedTime":"0001-01-01T00:00:00Z","statusUpdatedTime":"0001-01-01T00:00:00Z",)"
              R"("lastActivityTime":"0001-01-01T00:00:00Z","cloudToDeviceMessageCount":0,)"
              R"("authentication":{"symmetricKey":{"primaryKey":")" + key1 + R"(","secondaryKey":")" + key2 +
                  R"("},"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"},)"
                  R"("capabilities":{"iotEdge":false}})");
}

TEST(identity_json, device_with_state_times_and_scope) {
    device_identity d;
    d.device_id = "edge1";
    d.generation_id = "1";
    d.etag = 8815808;
    d.status = device_status::disabled;
    d.status_reason = "maintenance";
    d.connection_state = connection_state::connected;
    d.connection_state_updated_time = parse_time("2021-05-12T08:48:08.7205939Z");
    d.status_updated_time = parse_time("2021-05-12T08:48:00Z");
    d.last_activity_time = parse_time("2021-05-12T08:48:07.6903807Z");
    d.cloud_to_device_message_count = 3;
    d.authentication.type = auth_type::self_signed;
    d.authentication.x509_thumbprint.primary_thumbprint = std::string(40, 'a');
    d.iot_edge = true;
    d.device_scope = "ms-azure-iot-edge://edge1-1";
    d.parent_scopes = {"ms-azure-iot-edge://p-2"};
    auto o = to_json(d);
    EXPECT_EQ(o.at("etag"), "ODgxNTgwOA==");
    EXPECT_EQ(o.at("status"), "disabled");
    EXPECT_EQ(o.at("statusReason"), "maintenance");
    EXPECT_EQ(o.at("connectionState"), "Connected");
    EXPECT_EQ(o.at("connectionStateUpdatedTime"), "2021-05-12T08:48:08.7205939Z");
    EXPECT_EQ(o.at("statusUpdatedTime"), "2021-05-12T08:48:00.0000000Z");
    EXPECT_EQ(o.at("lastActivityTime"), "2021-05-12T08:48:07.6903807Z");
    EXPECT_EQ(o.at("cloudToDeviceMessageCount"), 3);
    EXPECT_EQ(json::serialize(o.at("authentication")),
              R"({"symmetricKey":{"primaryKey":null,"secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":")" +
                  std::string(40, 'a') + R"(","secondaryThumbprint":null},"type":"selfSigned"})");
    EXPECT_EQ(o.at("capabilities"), parse(R"({"iotEdge":true})"));
    EXPECT_EQ(o.at("deviceScope"), "ms-azure-iot-edge://edge1-1");
    EXPECT_EQ(o.at("parentScopes"), parse(R"(["ms-azure-iot-edge://p-2"])"));
}

TEST(identity_json, scopes_absent_when_unset) {
    device_identity d;
    d.device_id = "d";
    auto o = to_json(d);
    EXPECT_FALSE(o.contains("deviceScope"));
    EXPECT_FALSE(o.contains("parentScopes"));
}

TEST(identity_json, auth_type_spellings) {
    device_identity d;
    d.device_id = "d";
    for (auto [t, s] : {std::pair{auth_type::sas, "sas"}, {auth_type::self_signed, "selfSigned"},
                        {auth_type::certificate_authority, "certificateAuthority"}, {auth_type::none, "none"}}) {
        d.authentication.type = t;
        EXPECT_EQ(to_json(d).at("authentication").at("type"), s);
    }
}

TEST(identity_json, module_has_exact_fields_and_no_status_or_capabilities) {
    module_identity m;
    m.device_id = "dev1";
    m.module_id = "mod1";
    m.generation_id = "637";
    m.authentication.symmetric_key = {key1, key2};
    auto s = json::serialize(to_json(m));
    EXPECT_EQ(s, R"({"moduleId":"mod1","managedBy":"","deviceId":"dev1","generationId":"637","etag":"MA==",)"
                 R"("connectionState":"Disconnected","connectionStateUpdatedTime":"0001-01-01T00:00:00Z",)"
                 R"("lastActivityTime":"0001-01-01T00:00:00Z","cloudToDeviceMessageCount":0,)"
                 R"("authentication":{"symmetricKey":{"primaryKey":")" +
                     key1 + R"(","secondaryKey":")" + key2 +
                     R"("},"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"}})");
}

TEST(identity_parse, node_create_body) {
    auto r = parse_device_request(parse(
        R"({"deviceId":"dev 1/x","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})"));
    EXPECT_FALSE(r);  // '/' and ' ' are not id characters
    r = parse_device_request(parse(
        R"({"deviceId":"dev1","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->device_id, "dev1");
    EXPECT_EQ(r->authentication.type, auth_type::sas);
    EXPECT_EQ(r->authentication.symmetric_key.primary_key, "");
    EXPECT_EQ(r->status, device_status::enabled);
    EXPECT_FALSE(r->iot_edge);
}

TEST(identity_parse, missing_authentication_is_sas_with_empty_keys) {
    auto r = parse_device_request(parse(R"({"deviceId":"dev1","authentication":null})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->authentication.type, auth_type::sas);
    EXPECT_TRUE(r->authentication.symmetric_key.primary_key.empty());
    r = parse_device_request(parse(R"({"deviceId":"dev1"})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->authentication.type, auth_type::sas);
}

TEST(identity_parse, missing_type_follows_node_normalisation) {
    auto r = parse_device_request(parse(
        R"({"deviceId":"d","authentication":{"x509Thumbprint":{"primaryThumbprint":")" + std::string(64, 'F') +
        R"("}}})"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->authentication.type, auth_type::self_signed);
    r = parse_device_request(parse(R"({"deviceId":"d","authentication":{"symmetricKey":{"primaryKey":")" + key1 +
                                   R"("}}})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->authentication.type, auth_type::sas);
    EXPECT_EQ(r->authentication.symmetric_key.primary_key, key1);
    EXPECT_EQ(r->authentication.symmetric_key.secondary_key, "");
}

TEST(identity_parse, full_body_with_read_only_fields_ignored) {
    auto r = parse_device_request(parse(R"({"deviceId":"d1","generationId":"999","etag":"MQ==",
        "connectionState":"Connected","status":"disabled","statusReason":"why",
        "connectionStateUpdatedTime":"2021-05-12T08:48:08Z","statusUpdatedTime":"bogus",
        "lastActivityTime":5,"cloudToDeviceMessageCount":"7",
        "authentication":{"symmetricKey":{"primaryKey":")" + key1 + R"(","secondaryKey":")" + key2 + R"("},
            "x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"},
        "capabilities":{"iotEdge":true},"deviceScope":"scope","parentScopes":["p1","p2"]})"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->generation_id, "");
    EXPECT_EQ(r->etag, 0u);
    EXPECT_EQ(r->connection_state, connection_state::disconnected);
    EXPECT_FALSE(r->last_activity_time);
    EXPECT_EQ(r->cloud_to_device_message_count, 0);
    EXPECT_EQ(r->status, device_status::disabled);
    EXPECT_EQ(r->status_reason, "why");
    EXPECT_EQ(r->authentication.symmetric_key.primary_key, key1);
    EXPECT_EQ(r->authentication.symmetric_key.secondary_key, key2);
    EXPECT_TRUE(r->iot_edge);
    EXPECT_EQ(r->device_scope, "scope");
    EXPECT_EQ(r->parent_scopes, (std::vector<std::string>{"p1", "p2"}));
}

TEST(identity_parse, enums_are_case_insensitive) {
    auto r = parse_device_request(parse(R"({"deviceId":"d","status":"Disabled","authentication":{"type":"SAS"}})"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, device_status::disabled);
    EXPECT_EQ(r->authentication.type, auth_type::sas);
}

TEST(identity_parse, rejects_bad_status_with_precise_message) {
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","status":"paused"})"))),
              "Invalid value for 'status': expected 'enabled' or 'disabled'.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","status":1})"))),
              "Invalid value for 'status': expected a string or null.");
}

TEST(identity_parse, rejects_bad_auth_type) {
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","authentication":{"type":"x509"}})"))),
              "Invalid value for 'authentication.type': expected 'sas', 'selfSigned', 'certificateAuthority' or "
              "'none'.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","authentication":"sas"})"))),
              "Invalid value for 'authentication': expected a JSON object or null.");
}

TEST(identity_parse, rejects_non_base64_keys) {
    EXPECT_EQ(parse_error(parse_device_request(
                  parse(R"({"deviceId":"d","authentication":{"symmetricKey":{"primaryKey":"not base64!"}}})"))),
              "Invalid value for 'authentication.symmetricKey.primaryKey': the key must be valid base64.");
    EXPECT_EQ(parse_error(parse_device_request(
                  parse(R"({"deviceId":"d","authentication":{"symmetricKey":{"secondaryKey":"abc"}}})"))),
              "Invalid value for 'authentication.symmetricKey.secondaryKey': the key must be valid base64.");
    EXPECT_EQ(parse_error(parse_device_request(
                  parse(R"({"deviceId":"d","authentication":{"symmetricKey":{"primaryKey":5}}})"))),
              "Invalid value for 'authentication.symmetricKey.primaryKey': expected a string or null.");
}

TEST(identity_parse, rejects_bad_thumbprints) {
    EXPECT_EQ(parse_error(parse_device_request(parse(
                  R"({"deviceId":"d","authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"xyz"}}})"))),
              "Invalid value for 'authentication.x509Thumbprint.primaryThumbprint': expected 40 (SHA-1) or 64 "
              "(SHA-256) hexadecimal characters.");
    auto msg = parse_error(parse_device_request(parse(R"({"deviceId":"d","authentication":{"type":"selfSigned"}})")));
    EXPECT_NE(msg.find("requires"), std::string::npos) << msg;
}

TEST(identity_parse, x509_device_drops_keys) {
    auto r = parse_device_request(parse(R"({"deviceId":"d","authentication":{"type":"selfSigned",
        "symmetricKey":{"primaryKey":")" + key1 + R"("},"x509Thumbprint":{"primaryThumbprint":")" +
                                        std::string(40, '0') + R"(","secondaryThumbprint":")" + std::string(40, '1') +
                                        R"("}}})"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->authentication.symmetric_key.primary_key, "");
    EXPECT_EQ(r->authentication.x509_thumbprint.secondary_thumbprint, std::string(40, '1'));
    r = parse_device_request(parse(R"({"deviceId":"d","authentication":{"type":"certificateAuthority"}})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->authentication.type, auth_type::certificate_authority);
}

TEST(identity_parse, rejects_bad_ids_and_shapes) {
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({})"))), "deviceId is required.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":7})"))),
              "Invalid value for 'deviceId': expected a string.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":""})"))), "deviceId must not be empty.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"([1])"))), "The device body must be a JSON object.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","capabilities":{"iotEdge":"yes"}})"))),
              "Invalid value for 'capabilities.iotEdge': expected true or false.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","parentScopes":"p"})"))),
              "Invalid value for 'parentScopes': expected an array of strings.");
    EXPECT_EQ(parse_error(parse_device_request(parse(R"({"deviceId":"d","statusReason":")" +
                                                      std::string(129, 'r') + R"("})"))),
              "Invalid value for 'statusReason': at most 128 characters are allowed.");
}

TEST(identity_parse, module_body) {
    auto r = parse_module_request(parse(R"({"deviceId":"dev1","moduleId":"mod1","managedBy":"IotEdge",
        "etag":"MQ==","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->device_id, "dev1");
    EXPECT_EQ(r->module_id, "mod1");
    EXPECT_EQ(r->managed_by, "IotEdge");
    EXPECT_EQ(r->etag, 0u);
    r = parse_module_request(parse(R"({"moduleId":"mod1"})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->device_id, "");
    EXPECT_EQ(r->authentication.type, auth_type::sas);
}

TEST(identity_parse, module_rejects_bad_ids) {
    auto r = parse_module_request(parse(R"({"deviceId":"dev1"})"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "moduleId is required.");
    r = parse_module_request(parse(R"({"deviceId":"dev1","moduleId":"a/b"})"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    r = parse_module_request(parse(R"({"deviceId":"d/1","moduleId":"m"})"));
    ASSERT_FALSE(r);
    r = parse_module_request(parse(R"({"moduleId":"m","managedBy":3})"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "Invalid value for 'managedBy': expected a string or null.");
}

TEST(identity_parse, round_trips_wire_json) {
    device_identity d;
    d.device_id = "d";
    d.status = device_status::disabled;
    d.status_reason = "r";
    d.authentication.symmetric_key = {key1, key2};
    d.iot_edge = true;
    auto back = parse_device_request(to_json(d));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->status, device_status::disabled);
    EXPECT_EQ(back->status_reason, "r");
    EXPECT_EQ(back->authentication.symmetric_key.primary_key, key1);
    EXPECT_TRUE(back->iot_edge);
}
