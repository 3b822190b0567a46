// Authentication decisions for the network heads (spec 2.2 server rule, 2.3, 2.6): given a token and
// the data it must be checked against, decide. Pure functions over data; no store access, no I/O.
// The caller looks up policies and identity keys and maps unauthorized to HTTP 401 / CONNACK 5.
// Every failure is errc::unauthorized with a message that names the reason (unknown policy, bad
// signature, expired, wrong resource, missing permission) but never a key or a signature.
// Thread safety: pure functions.
#pragma once

#include "auth/shared_access_policy.hpp"
#include "common/errc.hpp"
#include "common/identity_key.hpp"
#include "common/time.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace twinhub::auth {

// The identity a device-side connection claims: a device (module_id empty) or a module.
using identity_key = twinhub::identity_key;

// The identity's own symmetric keys (base64). Empty keys never verify (X.509 identities have none).
struct identity_keys {
    std::string_view primary_key;
    std::string_view secondary_key;
};

// True when `p` holds at least one of the permission bits in `required_any`. RegistryWrite implies
// RegistryRead (the portal's "RegistryReadWrite"). Pass several bits to be lenient, e.g.
// `service_connect | registry_read` for twin reads (spec 2.6 [UNVERIFIED]).
bool policy_grants(const shared_access_policy& p, std::uint32_t required_any) noexcept;

// True when `host` (e.g. the host part of an MQTT username) is one of `hub_host_names`,
// case-insensitively; a trailing ":port" on `host` is ignored.
bool is_hub_host(std::string_view host, std::span<const std::string> hub_host_names) noexcept;

// Service REST authorisation. `authorization` is the Authorization header value (a SAS token). The
// token must name (skn) one of `policies`, verify with its primary or secondary key, not be expired
// at `now`, carry an sr that authorises `{host}` for one of `hub_host_names` (segment prefix,
// case-insensitive; in practice sr == host; a ":port" suffix is ignored), and the policy must grant
// `required_any` (see policy_grants).
// `resource_path` is the device-relative resource being accessed, without leading '/', e.g.
// "devices/dev1" or "devices/dev1/modules/m1" (twins and methods of a device map to its devices/...
// resource). When given, an sr scoped to that resource (`{host}/devices/dev1`, as the C service SDK
// sometimes signs) is accepted too; when empty (hub-wide operations) only `{host}` is.
// On success returns the matching element of `policies` (it points into the caller's span).
result<const shared_access_policy*> authorize_service(std::string_view authorization,
                                                      std::span<const std::string> hub_host_names,
                                                      std::span<const shared_access_policy> policies,
                                                      std::uint32_t required_any, time_point now,
                                                      std::string_view resource_path = {});

// How a device-side connection was authorised.
struct device_authorization {
    std::string policy_name;  // empty: the identity's own key; else the policy (skn) used
    std::int64_t expiry = 0;  // token se (Unix seconds): the hub disconnects the session then
};

// Device/module authorisation (MQTT CONNECT password, or a device-side REST call).
// - Token without skn: an identity-key token. It must verify with keys.primary_key or
//   keys.secondary_key and its sr must name exactly this identity,
//   `{host}/devices/{d}` or `{host}/devices/{d}/modules/{m}` for one of `hub_host_names`
//   (a device's token never authorises its modules, nor a module's token its device).
// - Token with skn: a policy token. The policy must exist, hold DeviceConnect, verify the
//   signature, and its sr must be a segment prefix of the identity's resource (so
//   `{host}/devices` serves a gateway, `{host}/devices/d1` serves d1 and its modules).
// The sr is compared percent-decoded and case-insensitively; the raw sr is accepted too, for ids
// containing '%' sent unencoded (C SDK). A ":port" after the host in the sr is ignored (Node puts
// the port of `HostName=localhost:8884` into sr). The token must not be expired at `now`.
result<device_authorization> authorize_device(std::string_view token, std::span<const std::string> hub_host_names,
                                              const identity_key& identity, const identity_keys& keys,
                                              std::span<const shared_access_policy> policies, time_point now);

}  // namespace twinhub::auth
