// Shared access policies of the hub (spec 2.6): a named pair of keys with a set of permissions.
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::auth {

// Bit flags; a policy holds any combination.
enum permission : std::uint32_t {
    registry_read = 1u << 0,
    registry_write = 1u << 1,
    service_connect = 1u << 2,
    device_connect = 1u << 3,
};

struct shared_access_policy {
    std::string key_name;       // "iothubowner", used as skn in tokens
    std::string primary_key;    // base64
    std::string secondary_key;  // base64
    std::uint32_t rights = 0;   // permission flags

    bool has(permission p) const noexcept { return (rights & p) == p; }
};

// The five policies of a new hub, each with two fresh random keys:
// iothubowner (all), service (ServiceConnect), device (DeviceConnect), registryRead (RegistryRead),
// registryReadWrite (RegistryRead + RegistryWrite).
std::vector<shared_access_policy> default_policies();

// "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect" style text, and back.
std::string rights_to_string(std::uint32_t rights);
result<std::uint32_t> rights_from_string(std::string_view s);

// Spec 2.6 limits.
inline constexpr std::size_t max_policies = 16;
inline constexpr std::size_t max_service_connect_policies = 10;

// Checks one policy: a key name of 1-64 characters from ASCII letters, digits and "-._"; both keys
// canonical base64 of 16-64 bytes; at least one right. Fails with invalid_argument naming the field
// (never the key).
result<void> validate_policy(const shared_access_policy& p);
// Checks every policy, unique key names (case-insensitive), at most 16 policies and at most 10 with
// ServiceConnect. Fails with invalid_argument.
result<void> validate_policies(std::span<const shared_access_policy> policies);

// Storage round trip; from_storage fails with corrupt_data.
boost::json::object to_storage_json(const shared_access_policy& p);
result<shared_access_policy> policy_from_storage_json(const boost::json::value& v);

}  // namespace twinhub::auth
