#include "auth/authenticator.hpp"

#include "auth/sas_token.hpp"
#include "common/encoding.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace twinhub;
using namespace twinhub::auth;

namespace {

constexpr std::int64_t now_s = 1700000000;
const time_point test_now = time_point{std::chrono::seconds{now_s}};
constexpr std::int64_t later = now_s + 3600;

struct fixture : ::testing::Test {
    std::vector<std::string> hosts{"hub.local", "myhub.azure-devices.net"};
    std::vector<shared_access_policy> policies = [] {
        std::vector<shared_access_policy> v;
        v.push_back({"iothubowner", generate_key(), generate_key(),
                     registry_read | registry_write | service_connect | device_connect});
        v.push_back({"service", generate_key(), generate_key(), service_connect});
        v.push_back({"device", generate_key(), generate_key(), device_connect});
        v.push_back({"registryRead", generate_key(), generate_key(), registry_read});
        v.push_back({"registryReadWrite", generate_key(), generate_key(), registry_read | registry_write});
        return v;
    }();
    std::string dev_primary = generate_key(), dev_secondary = generate_key();
    std::string mod_primary = generate_key(), mod_secondary = generate_key();
    identity_key dev1{"dev1", ""};
    identity_key mod1{"dev1", "mod1"};
    identity_keys dev_keys() const { return {dev_primary, dev_secondary}; }
    identity_keys mod_keys() const { return {mod_primary, mod_secondary}; }

    const shared_access_policy& policy(std::string_view name) const {
        for (const auto& p : policies)
            if (p.key_name == name) return p;
        throw std::logic_error("no policy");
    }
    std::string policy_token(std::string_view name, std::string_view sr, std::int64_t se = later,
                             bool secondary = false) const {
        const auto& p = policy(name);
        return *generate_sas_token(sr, secondary ? p.secondary_key : p.primary_key, se, name);
    }
    static std::string token(std::string_view sr, std::string_view key, std::int64_t se = later) {
        return *generate_sas_token(sr, key, se);
    }
    result<const shared_access_policy*> service(std::string_view header, std::uint32_t required) const {
        return authorize_service(header, hosts, policies, required, test_now);
    }
    result<device_authorization> device(std::string_view t, const identity_key& id, identity_keys keys) const {
        return authorize_device(t, hosts, id, keys, policies, test_now);
    }
};

void expect_unauthorized(const auto& r, std::string_view fragment) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized);
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

using authorize_service_test = fixture;
using authorize_device_test = fixture;

}  // namespace

TEST(policy_grants, registry_write_implies_read_and_bits_are_alternatives) {
    shared_access_policy rw{"rw", "", "", registry_write};
    EXPECT_TRUE(policy_grants(rw, registry_read));
    EXPECT_TRUE(policy_grants(rw, registry_write));
    EXPECT_FALSE(policy_grants(rw, service_connect));
    shared_access_policy r{"r", "", "", registry_read};
    EXPECT_FALSE(policy_grants(r, registry_write));
    EXPECT_FALSE(policy_grants(r, service_connect));
    EXPECT_TRUE(policy_grants(r, service_connect | registry_read));  // lenient twin read
}

TEST_F(authorize_service_test, node_service_token_with_raw_host_is_accepted) {
    auto r = service(policy_token("service", "myhub.azure-devices.net"), service_connect);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ((*r)->key_name, "service");
}

TEST_F(authorize_service_test, any_configured_host_name_is_accepted_case_insensitively) {
    EXPECT_TRUE(service(policy_token("iothubowner", "hub.local"), service_connect));
    EXPECT_TRUE(service(policy_token("iothubowner", "HUB.Local"), service_connect));
    expect_unauthorized(service(policy_token("iothubowner", "other.local"), service_connect), "host name");
}

TEST_F(authorize_service_test, python_order_and_encoded_host_are_accepted) {
    const auto& p = policy("registryRead");
    std::string sig = *compute_signature(p.primary_key, "hub.local", later);
    std::string python =
        "SharedAccessSignature sr=hub.local&sig=" + sig + "&se=" + std::to_string(later) + "&skn=registryRead";
    EXPECT_TRUE(service(python, registry_read));
}

TEST_F(authorize_service_test, secondary_key_is_accepted) {
    EXPECT_TRUE(service(policy_token("service", "hub.local", later, true), service_connect));
}

TEST_F(authorize_service_test, token_without_skn_is_rejected) {
    expect_unauthorized(service(token("hub.local", policy("service").primary_key), service_connect), "skn");
}

TEST_F(authorize_service_test, unknown_policy_is_rejected) {
    std::string t = *generate_sas_token("hub.local", generate_key(), later, "nosuch");
    expect_unauthorized(service(t, service_connect), "Unknown shared access policy 'nosuch'");
}

TEST_F(authorize_service_test, wrong_key_is_rejected_without_leaking_secrets) {
    // Signed with the key of another policy but naming "service".
    std::string t = *generate_sas_token("hub.local", policy("iothubowner").primary_key, later, "service");
    auto r = service(t, service_connect);
    expect_unauthorized(r, "signature");
    auto parsed = parse_sas_token(t);
    for (const auto& p : policies) {
        EXPECT_EQ(r.error().message.find(p.primary_key), std::string::npos);
        EXPECT_EQ(r.error().message.find(p.secondary_key), std::string::npos);
    }
    EXPECT_EQ(r.error().message.find(parsed->signature), std::string::npos);
}

TEST_F(authorize_service_test, forged_signature_is_rejected) {
    auto t = *parse_sas_token(policy_token("iothubowner", "hub.local"));
    t.signature[0] = t.signature[0] == 'A' ? 'B' : 'A';
    expect_unauthorized(service(to_string(t), service_connect), "signature");
}

TEST_F(authorize_service_test, expired_token_is_rejected) {
    expect_unauthorized(service(policy_token("iothubowner", "hub.local", now_s), service_connect), "expired");
    expect_unauthorized(service(policy_token("iothubowner", "hub.local", now_s - 10), service_connect), "expired");
    EXPECT_TRUE(service(policy_token("iothubowner", "hub.local", now_s + 1), service_connect));
}

TEST_F(authorize_service_test, device_scoped_sr_does_not_authorise_service_calls) {
    expect_unauthorized(service(policy_token("iothubowner", "hub.local%2Fdevices%2Fdev1"), service_connect),
                        "host name");
}

TEST_F(authorize_service_test, permissions_follow_the_spec_table) {
    // RegistryRead operations.
    EXPECT_TRUE(service(policy_token("registryRead", "hub.local"), registry_read));
    EXPECT_TRUE(service(policy_token("registryReadWrite", "hub.local"), registry_read));
    EXPECT_TRUE(service(policy_token("iothubowner", "hub.local"), registry_read));
    expect_unauthorized(service(policy_token("service", "hub.local"), registry_read),
                        "Authorization rule 'service' does not allow access for 'RegistryRead'");
    expect_unauthorized(service(policy_token("device", "hub.local"), registry_read), "'device'");
    // RegistryWrite operations.
    EXPECT_TRUE(service(policy_token("registryReadWrite", "hub.local"), registry_write));
    EXPECT_TRUE(service(policy_token("iothubowner", "hub.local"), registry_write));
    expect_unauthorized(service(policy_token("registryRead", "hub.local"), registry_write), "'RegistryWrite'");
    // ServiceConnect operations.
    EXPECT_TRUE(service(policy_token("service", "hub.local"), service_connect));
    EXPECT_TRUE(service(policy_token("iothubowner", "hub.local"), service_connect));
    expect_unauthorized(service(policy_token("registryReadWrite", "hub.local"), service_connect), "'ServiceConnect'");
    expect_unauthorized(service(policy_token("device", "hub.local"), service_connect), "'ServiceConnect'");
}

TEST_F(authorize_service_test, malformed_or_missing_header_is_unauthorized) {
    expect_unauthorized(service("", service_connect), "Missing");
    expect_unauthorized(service("Bearer abc", service_connect), "SharedAccessSignature");
    expect_unauthorized(service("SharedAccessSignature sr=hub.local&se=1&skn=service", service_connect), "'sig'");
}

TEST_F(authorize_device_test, node_device_token_is_accepted) {
    auto t = token(percent_encode(identity_resource("hub.local", "dev1")), dev_primary);
    auto r = device(t, dev1, dev_keys());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->policy_name.empty());
    EXPECT_EQ(r->expiry, later);
}

TEST_F(authorize_device_test, lowercase_percent_encoding_is_accepted) {
    EXPECT_TRUE(device(token("hub.local%2fdevices%2fdev1", dev_primary), dev1, dev_keys()));
}

TEST_F(authorize_device_test, raw_c_style_resource_is_accepted) {
    EXPECT_TRUE(device(token("hub.local/devices/dev1", dev_primary), dev1, dev_keys()));
    EXPECT_TRUE(device(token("myhub.azure-devices.net/devices/dev1/modules/mod1", mod_primary), mod1, mod_keys()));
}

TEST_F(authorize_device_test, python_and_c_field_order_are_accepted) {
    std::string sr = "hub.local%2Fdevices%2Fdev1";
    std::string sig = *compute_signature(dev_secondary, sr, later);
    // Old C SDK with an empty key name: trailing "&skn=" means no policy.
    std::string c_old = "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + std::to_string(later) + "&skn=";
    auto r = device(c_old, dev1, dev_keys());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->policy_name.empty());
}

TEST_F(authorize_device_test, host_name_and_ids_compare_case_insensitively) {
    EXPECT_TRUE(device(token("HUB.LOCAL%2FDEVICES%2FDEV1", dev_primary), dev1, dev_keys()));
}

TEST_F(authorize_device_test, secondary_identity_key_is_accepted) {
    EXPECT_TRUE(device(token("hub.local%2Fdevices%2Fdev1", dev_secondary), dev1, dev_keys()));
}

TEST_F(authorize_device_test, wrong_identity_key_is_rejected) {
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1", generate_key()), dev1, dev_keys()), "device 'dev1'");
}

TEST_F(authorize_device_test, identity_without_keys_is_rejected) {
    // An empty-key HMAC is computable by anyone; it must never authenticate.
    std::string sr = "hub.local%2Fdevices%2Fdev1";
    std::string sig = percent_encode(base64_encode(hmac_sha256("", sr + "\n" + std::to_string(later))));
    std::string t = "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + std::to_string(later);
    expect_unauthorized(device(t, dev1, identity_keys{}), "no symmetric keys");
    expect_unauthorized(device(t, dev1, identity_keys{"", dev_secondary}), "signature");
}

TEST_F(authorize_device_test, expired_identity_token_is_rejected) {
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1", dev_primary, now_s), dev1, dev_keys()), "expired");
}

TEST_F(authorize_device_test, device_token_does_not_authorise_another_device) {
    // Signed with dev1's key for dev1, presented as dev2 whose keys happen to be dev1's.
    identity_key dev2{"dev2", ""};
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1", dev_primary), dev2, dev_keys()),
                        "does not name the device 'dev2'");
    // Segment boundaries: dev1 is not dev10.
    identity_key dev10{"dev10", ""};
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1", dev_primary), dev10, dev_keys()), "dev10");
}

TEST_F(authorize_device_test, device_token_does_not_authorise_its_modules) {
    // Even when the module shares the device's keys, a device-scoped sr names only the device.
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1", dev_primary), mod1, dev_keys()),
                        "module 'dev1/mod1'");
}

TEST_F(authorize_device_test, module_token_authorises_only_that_module) {
    std::string sr = percent_encode(identity_resource("hub.local", "dev1", "mod1"));
    EXPECT_TRUE(device(token(sr, mod_primary), mod1, mod_keys()));
    expect_unauthorized(device(token(sr, mod_primary), dev1, mod_keys()), "device 'dev1'");
    expect_unauthorized(device(token(sr, mod_primary), identity_key{"dev1", "mod2"}, mod_keys()), "mod2");
    // Module keys do not open the device.
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1", mod_primary), dev1, dev_keys()), "signature");
}

TEST_F(authorize_device_test, hub_wide_sr_with_identity_key_is_rejected) {
    expect_unauthorized(device(token("hub.local", dev_primary), dev1, dev_keys()), "does not name");
}

TEST_F(authorize_device_test, unknown_host_is_rejected) {
    expect_unauthorized(device(token("evil.local%2Fdevices%2Fdev1", dev_primary), dev1, dev_keys()), "does not name");
}

TEST_F(authorize_device_test, policy_token_with_device_connect_is_accepted) {
    auto r = device(policy_token("device", "hub.local%2Fdevices%2Fdev1"), dev1, identity_keys{});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->policy_name, "device");
    EXPECT_TRUE(device(policy_token("iothubowner", "hub.local/devices/dev1", later, true), dev1, identity_keys{}));
}

TEST_F(authorize_device_test, policy_token_prefix_covers_modules_and_gateways) {
    EXPECT_TRUE(device(policy_token("device", "hub.local%2Fdevices%2Fdev1"), mod1, identity_keys{}));
    EXPECT_TRUE(device(policy_token("device", "hub.local%2Fdevices"), dev1, identity_keys{}));
    EXPECT_TRUE(device(policy_token("device", "hub.local"), mod1, identity_keys{}));
    expect_unauthorized(device(policy_token("device", "hub.local%2Fdevices%2Fdev"), dev1, identity_keys{}),
                        "does not authorise");
    expect_unauthorized(device(policy_token("device", "hub.local%2Fdevices%2Fdev2"), dev1, identity_keys{}),
                        "does not authorise");
}

TEST_F(authorize_device_test, policy_without_device_connect_is_rejected) {
    expect_unauthorized(device(policy_token("service", "hub.local%2Fdevices%2Fdev1"), dev1, dev_keys()),
                        "'DeviceConnect'");
    expect_unauthorized(device(policy_token("registryReadWrite", "hub.local%2Fdevices%2Fdev1"), dev1, dev_keys()),
                        "'DeviceConnect'");
}

TEST_F(authorize_device_test, policy_token_with_identity_key_is_rejected) {
    // skn=device but signed with the device's own key.
    std::string t = *generate_sas_token("hub.local%2Fdevices%2Fdev1", dev_primary, later, "device");
    expect_unauthorized(device(t, dev1, dev_keys()), "policy 'device'");
}

TEST_F(authorize_device_test, unknown_policy_and_expired_policy_token_are_rejected) {
    std::string t = *generate_sas_token("hub.local%2Fdevices%2Fdev1", generate_key(), later, "gateway");
    expect_unauthorized(device(t, dev1, dev_keys()), "'gateway'");
    expect_unauthorized(device(policy_token("device", "hub.local%2Fdevices%2Fdev1", now_s - 1), dev1, dev_keys()),
                        "expired");
}

TEST_F(authorize_device_test, malformed_sr_escape_falls_back_to_raw_and_fails_cleanly) {
    expect_unauthorized(device(token("hub.local%2Fdevices%2Fdev1%", dev_primary), dev1, dev_keys()), "does not name");
}

TEST_F(authorize_device_test, malformed_token_is_unauthorized) {
    expect_unauthorized(device("not a token", dev1, dev_keys()), "SharedAccessSignature");
    expect_unauthorized(device("", dev1, dev_keys()), "Missing");
}

TEST_F(authorize_device_test, port_in_node_sr_is_ignored) {
    // Node with HostName=hub.local:8884 sends sr=hub.local%3A8884%2Fdevices%2Fdev1.
    auto r = device(token("hub.local%3A8884%2Fdevices%2Fdev1", dev_primary), dev1, dev_keys());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(device(token("hub.local:8884/devices/dev1", dev_primary), dev1, dev_keys()));
    // Only a numeric port is dropped.
    expect_unauthorized(device(token("hub.local%3Aevil%2Fdevices%2Fdev1", dev_primary), dev1, dev_keys()),
                        "does not name");
}

TEST_F(authorize_service_test, port_in_sr_or_configured_host_is_ignored) {
    EXPECT_TRUE(service(policy_token("service", "hub.local:8443"), service_connect));
    std::vector<std::string> with_port{"localhost:8884"};
    EXPECT_TRUE(
        authorize_service(policy_token("service", "localhost"), with_port, policies, service_connect, test_now));
}

TEST(is_hub_host, matches_configured_names_case_insensitively_with_optional_port) {
    std::vector<std::string> hosts{"hub.local", "myhub.azure-devices.net"};
    EXPECT_TRUE(is_hub_host("hub.local", hosts));
    EXPECT_TRUE(is_hub_host("MyHub.Azure-Devices.NET", hosts));
    EXPECT_TRUE(is_hub_host("hub.local:8883", hosts));
    EXPECT_FALSE(is_hub_host("hub.loca", hosts));
    EXPECT_FALSE(is_hub_host("hub.local.evil", hosts));
    EXPECT_FALSE(is_hub_host("hub.local/devices", hosts));
    EXPECT_FALSE(is_hub_host("", hosts));
    EXPECT_FALSE(is_hub_host("hub.local", std::vector<std::string>{}));
}

TEST_F(authorize_device_test, no_configured_host_authorises_nothing) {
    std::vector<std::string> none;
    auto r =
        authorize_device(token("hub.local%2Fdevices%2Fdev1", dev_primary), none, dev1, dev_keys(), policies, test_now);
    expect_unauthorized(r, "does not name");
}

TEST_F(authorize_service_test, device_scoped_sr_authorises_only_that_device_resource) {
    auto t = policy_token("iothubowner", "hub.local%2Fdevices%2Fdev1");
    EXPECT_TRUE(authorize_service(t, hosts, policies, registry_read, test_now, "devices/dev1"));
    EXPECT_TRUE(authorize_service(t, hosts, policies, registry_read, test_now, "devices/dev1/modules/m1"));
    expect_unauthorized(authorize_service(t, hosts, policies, registry_read, test_now, "devices/dev2"), "host name");
    expect_unauthorized(authorize_service(t, hosts, policies, registry_read, test_now, "devices/dev10"), "host name");
    expect_unauthorized(authorize_service(t, hosts, policies, registry_read, test_now), "host name");
    // A hub-wide sr still covers device resources.
    EXPECT_TRUE(authorize_service(policy_token("iothubowner", "hub.local"), hosts, policies, registry_read, test_now,
                                  "devices/dev2"));
}
