// The service side of a direct-method call at the REST edge (spec 3.8, 3.11): validates the body of
// POST /twins/{id}[/modules/{mid}]/methods, formats the 200 answer {"status","payload"}, and formats
// the errors that the real hub's method endpoint sends in its own body form.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace twinhub::methods {

// Limits of spec 3.8 and 7.3.
inline constexpr std::size_t max_payload_size = 128 * 1024;  // request and response, serialized JSON
inline constexpr std::size_t max_method_name_size = 1024;    // [INF] undocumented; MQTT caps topics at 64 KiB
inline constexpr std::chrono::seconds default_response_timeout{30};
inline constexpr std::chrono::seconds min_response_timeout{5};
inline constexpr std::chrono::seconds max_response_timeout{300};
inline constexpr std::chrono::seconds default_connect_timeout{0};
inline constexpr std::chrono::seconds max_connect_timeout{300};

struct invocation_request {
    std::string method_name;
    std::string payload = "null";  // compact JSON text of "payload"; "null" when absent or null
    std::chrono::seconds response_timeout = default_response_timeout;
    std::chrono::seconds connect_timeout = default_connect_timeout;
};

// Checks a method name against the direct-methods character rule (spec 3.8): printable US-ASCII
// without space, tab and $ ( ) < > @ , ; : \ " / [ ] ? = { }, and, because the name travels as an
// MQTT topic level, without the wildcards + and #. Fails with invalid_argument naming the character.
result<void> validate_method_name(std::string_view name);

// Parses {"methodName", "payload", "responseTimeoutInSeconds", "connectTimeoutInSeconds"}. Fails with
// format_error (not JSON), invalid_argument (400 ArgumentInvalid: missing or bad name, timeouts not
// integers within 5..300 and 0..300) or message_too_large (413: payload over 128 KB). Absent or
// null timeouts take the defaults (30, 0). Unknown members are ignored.
result<invocation_request> parse_invocation_request(std::string_view body);

// {"status":<status>,"payload":<payload_json>} where payload_json is valid JSON text.
std::string format_invocation_result(int status, std::string_view payload_json);

// The method endpoint's error bodies (404103, 504101) are built with the hub's other error bodies,
// in common/error_body.hpp (method_error_body).

}  // namespace twinhub::methods
