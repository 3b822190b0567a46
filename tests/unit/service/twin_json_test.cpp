#include "service/twin_json.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace twinhub::service {
namespace {

TEST(service_twin_json, device_twin_mirrors_the_identity_with_twin_names) {
    registry::device_identity d;
    d.device_id = "dev1";
    d.etag = 5;
    d.status = registry::device_status::disabled;
    d.status_reason = "stolen";
    d.authentication.type = registry::auth_type::self_signed;
    d.authentication.x509_thumbprint.primary_thumbprint = std::string(40, 'a');
    d.iot_edge = true;
    d.device_scope = "ms-azure-iot-edge://dev1-1";
    auto t = twin::new_twin(now());
    t.model_id = "dtmi:x;1";
    auto j = service_twin_json(d, t);
    EXPECT_EQ(std::string(j.at("deviceEtag").as_string()), registry::etag_to_string(5));
    EXPECT_EQ(j.at("etag"), "AAAAAAAAAAE=");
    EXPECT_EQ(j.at("status"), "disabled");
    EXPECT_EQ(j.at("statusReason"), "stolen");
    EXPECT_EQ(j.at("authenticationType"), "selfSigned");
    EXPECT_EQ(std::string(j.at("x509Thumbprint").at("primaryThumbprint").as_string()), std::string(40, 'a'));
    EXPECT_TRUE(j.at("x509Thumbprint").at("secondaryThumbprint").is_null());
    EXPECT_EQ(j.at("modelId"), "dtmi:x;1");
    EXPECT_EQ(j.at("capabilities").at("iotEdge"), true);
    EXPECT_EQ(j.at("deviceScope"), "ms-azure-iot-edge://dev1-1");
    EXPECT_FALSE(j.contains("parentScopes"));
    EXPECT_FALSE(j.contains("generationId"));
    EXPECT_FALSE(j.contains("connectionStateUpdatedTime"));
    EXPECT_TRUE(j.at("properties").at("desired").as_object().contains("$metadata"));
}

TEST(service_twin_json, module_twin_has_module_id_and_no_capabilities) {
    registry::module_identity m;
    m.device_id = "dev1";
    m.module_id = std::string("m1");  // not `= "m1"`: GCC 12 -Wmaybe-uninitialized false positive
    m.connection_state = registry::connection_state::connected;
    auto j = service_twin_json(m, twin::new_twin(now()));
    EXPECT_EQ(j.at("moduleId"), "m1");
    EXPECT_EQ(j.at("deviceId"), "dev1");
    EXPECT_EQ(j.at("connectionState"), "Connected");
    EXPECT_EQ(j.at("status"), "enabled");
    EXPECT_FALSE(j.contains("capabilities"));
    EXPECT_EQ(j.at("version"), 2);
}

}  // namespace
}  // namespace twinhub::service
