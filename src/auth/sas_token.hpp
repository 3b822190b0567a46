// Shared access signature tokens (spec 2.1-2.2): parsing in any field order, generation in the Node
// SDK's order, signature verification and the resource (sr) authorisation rule.
//
//   SharedAccessSignature sr=<resource>&sig=<url-encoded base64 HMAC>&se=<expiry>[&skn=<policy>]
//
// The signature covers `sr` exactly as it appears in the token (SDKs encode it differently: raw,
// uppercase or lowercase percent-encoding), so verification never re-encodes it; only the
// authorisation check decodes it.
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace twinhub::auth {

inline constexpr std::string_view sas_token_prefix = "SharedAccessSignature";

struct sas_token {
    std::string resource;     // sr, exactly as received (possibly percent-encoded)
    std::string signature;    // sig, exactly as received (URL-encoded base64)
    std::int64_t expiry = 0;  // se, seconds since the Unix epoch (UTC)
    std::string key_name;     // skn; empty when absent or sent empty
};

// Parses a token. Leading/trailing whitespace is ignored; the fields may come in any order; unknown
// fields are ignored. Fails with invalid_argument on a missing prefix, a missing or duplicate sr, sig
// or se, an empty sr or sig, or a non-integer se. Messages never contain the signature.
result<sas_token> parse_sas_token(std::string_view token);

// The token text with fields in Node's order: sr, sig, skn (only when non-empty), se.
std::string to_string(const sas_token& t);

// sig for (key, sr, se): URL-encoded base64 of HMAC-SHA256(base64-decode(key), sr + "\n" + se).
// Fails with invalid_argument when the key is empty or not base64.
result<std::string> compute_signature(std::string_view key_base64, std::string_view resource, std::int64_t expiry);

// A complete token string for `resource` (used as given, so the caller chooses its encoding).
// key_name empty: no skn. Fails like compute_signature.
result<std::string> generate_sas_token(std::string_view resource, std::string_view key_base64, std::int64_t expiry,
                                       std::string_view key_name = {});

// True when t.signature was made over t.resource and t.expiry with key_base64 (HMAC keyed with the
// decoded key, as IoT Hub signs, or with the key text, as Event Hubs and Service Bus clients sign). Compares in constant
// time; an empty or non-base64 key never verifies. Accepts sig with upper- or lowercase escapes.
bool signature_matches(const sas_token& t, std::string_view key_base64) noexcept;

// Succeeds when the signature verifies with the primary or the secondary key; otherwise unauthorized.
// `what` names the key owner in the message ("device 'dev1'", "policy 'service'").
result<void> verify_signature(const sas_token& t, std::string_view primary_key, std::string_view secondary_key,
                              std::string_view what);

// Seconds since the Unix epoch, rounded down.
std::int64_t to_unix_seconds(time_point t) noexcept;

// Succeeds when the token is still valid at `now` (se > now); otherwise unauthorized.
result<void> check_expiry(const sas_token& t, time_point now);

// The sr with percent-escapes decoded; invalid_argument on a malformed escape.
result<std::string> decode_resource(std::string_view resource);

// The resource authorisation rule on a decoded sr: case-insensitive, segment-wise prefix. "a/b"
// authorises "a/b" and "a/b/c" but not "a/bc"; one trailing '/' on the sr is ignored; an empty sr
// authorises nothing.
bool resource_authorizes(std::string_view decoded_sr, std::string_view resource) noexcept;

// "{host}/devices/{device_id}" or, with a module id, "{host}/devices/{device_id}/modules/{module_id}";
// raw (not encoded), as the C SDK sends it. Percent-encode it for the Node/Python form.
std::string identity_resource(std::string_view host_name, std::string_view device_id, std::string_view module_id = {});

}  // namespace twinhub::auth
