#include "auth/shared_access_policy.hpp"

#include "common/encoding.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <set>

using namespace twinhub;
using namespace twinhub::auth;

TEST(shared_access_policy, default_policies_match_the_spec_table) {
    auto policies = default_policies();
    ASSERT_EQ(policies.size(), 5u);
    auto rights_of = [&](std::string_view name) -> std::uint32_t {
        for (const auto& p : policies)
            if (p.key_name == name) return p.rights;
        ADD_FAILURE() << "no policy " << name;
        return 0;
    };
    EXPECT_EQ(rights_of("iothubowner"), registry_read | registry_write | service_connect | device_connect);
    EXPECT_EQ(rights_of("service"), static_cast<std::uint32_t>(service_connect));
    EXPECT_EQ(rights_of("device"), static_cast<std::uint32_t>(device_connect));
    EXPECT_EQ(rights_of("registryRead"), static_cast<std::uint32_t>(registry_read));
    EXPECT_EQ(rights_of("registryReadWrite"), registry_read | registry_write);
}

TEST(shared_access_policy, default_policies_have_fresh_distinct_base64_keys) {
    auto a = default_policies();
    auto b = default_policies();
    std::set<std::string> keys;
    for (const auto& list : {a, b}) {
        for (const auto& p : list) {
            for (const auto& k : {p.primary_key, p.secondary_key}) {
                EXPECT_EQ(k.size(), 44u);
                auto raw = base64_decode(k);
                ASSERT_TRUE(raw);
                EXPECT_EQ(raw->size(), 32u);
                keys.insert(k);
            }
        }
    }
    EXPECT_EQ(keys.size(), 20u);
}

TEST(shared_access_policy, has_checks_every_requested_bit) {
    shared_access_policy p{"x", "", "", registry_read | registry_write};
    EXPECT_TRUE(p.has(registry_read));
    EXPECT_TRUE(p.has(registry_write));
    EXPECT_FALSE(p.has(service_connect));
}

TEST(rights_text, formats_in_canonical_order) {
    EXPECT_EQ(rights_to_string(registry_read | registry_write | service_connect | device_connect),
              "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect");
    EXPECT_EQ(rights_to_string(device_connect | registry_read), "RegistryRead, DeviceConnect");
    EXPECT_EQ(rights_to_string(service_connect), "ServiceConnect");
    EXPECT_EQ(rights_to_string(0), "");
}

TEST(rights_text, parses_any_order_spacing_and_case) {
    EXPECT_EQ(*rights_from_string("RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect"),
              registry_read | registry_write | service_connect | device_connect);
    EXPECT_EQ(*rights_from_string("deviceconnect,ServiceConnect"), device_connect | service_connect);
    EXPECT_EQ(*rights_from_string("RegistryReadWrite"), registry_read | registry_write);
    EXPECT_EQ(*rights_from_string(""), 0u);
}

TEST(rights_text, round_trips_every_combination) {
    for (std::uint32_t r = 0; r < 16; ++r) {
        auto back = rights_from_string(rights_to_string(r));
        ASSERT_TRUE(back) << r;
        EXPECT_EQ(*back, r);
    }
}

TEST(rights_text, rejects_unknown_rights) {
    auto r = rights_from_string("RegistryRead, Everything");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_NE(r.error().message.find("'Everything'"), std::string::npos);
    EXPECT_FALSE(rights_from_string("RegistryRead,,ServiceConnect"));
}

TEST(policy_storage_json, round_trips) {
    shared_access_policy p{"registryReadWrite", generate_key(), generate_key(), registry_read | registry_write};
    boost::json::value v = to_storage_json(p);
    auto text = boost::json::serialize(v);
    auto back = policy_from_storage_json(boost::json::parse(text));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->key_name, p.key_name);
    EXPECT_EQ(back->primary_key, p.primary_key);
    EXPECT_EQ(back->secondary_key, p.secondary_key);
    EXPECT_EQ(back->rights, p.rights);
    EXPECT_EQ(v.as_object().at("rights").as_string(), "RegistryRead, RegistryWrite");
}

TEST(policy_storage_json, corrupt_input_is_corrupt_data) {
    for (std::string_view text : {
             R"([])",
             R"({"primaryKey":"a","secondaryKey":"b","rights":"DeviceConnect"})",
             R"({"keyName":"","primaryKey":"a","secondaryKey":"b","rights":"DeviceConnect"})",
             R"({"keyName":"x","secondaryKey":"b","rights":"DeviceConnect"})",
             R"({"keyName":"x","primaryKey":"a","rights":"DeviceConnect"})",
             R"({"keyName":"x","primaryKey":"a","secondaryKey":"b"})",
             R"({"keyName":"x","primaryKey":"a","secondaryKey":"b","rights":"Root"})",
             R"({"keyName":"x","primaryKey":1,"secondaryKey":"b","rights":"DeviceConnect"})",
         }) {
        auto r = policy_from_storage_json(boost::json::parse(text));
        ASSERT_FALSE(r) << text;
        EXPECT_EQ(r.error().code, errc::corrupt_data) << text;
    }
}

TEST(policy_storage_json, corrupt_data_message_never_contains_keys) {
    auto r = policy_from_storage_json(
        boost::json::parse(R"({"keyName":"x","primaryKey":"c2VjcmV0","secondaryKey":"b","rights":"Root"})"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.find("c2VjcmV0"), std::string::npos);
}

TEST(validate_policies, default_policies_are_valid) {
    auto policies = default_policies();
    for (const auto& p : policies) EXPECT_TRUE(validate_policy(p)) << p.key_name;
    EXPECT_TRUE(validate_policies(policies));
}

TEST(validate_policies, rejects_bad_names_keys_and_rights) {
    shared_access_policy good{"gateway-1", generate_key(), generate_key(), device_connect};
    ASSERT_TRUE(validate_policy(good));
    auto with = [&](auto change) {
        auto p = good;
        change(p);
        auto r = validate_policy(p);
        EXPECT_FALSE(r);
        if (!r) {
            EXPECT_EQ(r.error().code, errc::invalid_argument);
        }
        return r ? std::string() : r.error().message;
    };
    with([](auto& p) { p.key_name = ""; });
    with([](auto& p) { p.key_name = std::string(65, 'a'); });
    with([](auto& p) { p.key_name = "a;b"; });
    with([](auto& p) { p.key_name = "a&skn=b"; });
    EXPECT_NE(with([](auto& p) { p.primary_key = "c2hvcnQ="; }).find("primaryKey"), std::string::npos);
    EXPECT_NE(with([](auto& p) { p.secondary_key = "not base64"; }).find("secondaryKey"), std::string::npos);
    EXPECT_EQ(with([](auto& p) { p.secondary_key = "c2hvcnQ="; }).find("c2hvcnQ="), std::string::npos);
    with([](auto& p) { p.rights = 0; });
    with([](auto& p) { p.rights = 1u << 7; });
}

TEST(validate_policies, rejects_duplicate_names_case_insensitively) {
    auto policies = default_policies();
    policies.push_back({"Service", generate_key(), generate_key(), service_connect});
    auto r = validate_policies(policies);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("Duplicate"), std::string::npos);
}

TEST(validate_policies, enforces_the_policy_limits) {
    std::vector<shared_access_policy> policies;
    for (int i = 0; i < 16; ++i)
        policies.push_back(
            {"p" + std::to_string(i), generate_key(), generate_key(), i < 10 ? service_connect : registry_read});
    EXPECT_TRUE(validate_policies(policies));
    policies.push_back({"p16", generate_key(), generate_key(), registry_read});
    EXPECT_FALSE(validate_policies(policies));
    policies.pop_back();
    policies[10].rights = service_connect;  // an 11th ServiceConnect policy
    auto r = validate_policies(policies);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("ServiceConnect"), std::string::npos);
}
