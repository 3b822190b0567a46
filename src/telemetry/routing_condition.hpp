// Route conditions: the IoT Hub message routing query language, compiled once per route and
// evaluated per message. Grammar, operators and functions are those of Azure's routing query
// syntax page and the "Expressions and conditions" section of the IoT Hub query language page; what
// twinhub does differently is listed in docs/compatibility.md ("Message routing").
//
// Untrusted text (a hub configuration) goes through condition::compile(), which never throws and
// never recurses without bound. Evaluation never fails: anything that cannot be computed is
// undefined, and a condition is met only when it evaluates to the Boolean true.
// Thread safety: a compiled condition is immutable and may be evaluated from any number of threads
// at once; a condition_input belongs to one thread.
#pragma once

#include "common/errc.hpp"
#include "telemetry/routing_message.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace twinhub::telemetry {

// Longest condition accepted, in bytes (Azure's limit for a route query).
inline constexpr std::size_t max_condition_length = 1024;
// Deepest expression tree accepted (parentheses, NOT chains, long operator chains).
inline constexpr std::uint32_t max_condition_depth = 64;

// One message as conditions see it: the body is decoded and parsed as JSON at most once, on the
// first $body reference, and shared by every condition evaluated on the same input.
class condition_input {
public:
    // `m` must outlive this object.
    explicit condition_input(const routing_message& m) : message_(m) {}

    const routing_message& message() const noexcept { return message_; }
    // The parsed body, or nullptr when the body is not queryable (see routing_message::body).
    const boost::json::value* body();

private:
    const routing_message& message_;
    bool body_done_ = false;
    std::optional<boost::json::value> body_;
};

namespace detail {
struct node;
}

class condition {
public:
    // On success the compiled condition. On failure errc::invalid_argument with a message naming
    // the position and what was expected, e.g. "Syntax error at position 9 (line 1, column 10):
    // expected an operand, found ')'". An empty or all-blank text is the condition `true`.
    static result<condition> compile(std::string_view text);

    // True when the condition evaluates to the Boolean true for this message; false when it is
    // false, null, undefined or of any other type.
    bool matches(condition_input& in) const;
    bool matches(const routing_message& m) const {
        condition_input in(m);
        return matches(in);
    }

    const std::string& text() const noexcept { return text_; }

private:
    std::string text_;
    std::shared_ptr<const detail::node> root_;
};

// Decodes a body per content type and encoding as routing_message::body describes; nullopt when it
// is not queryable JSON. Exposed for tests and for the hub's own use.
std::optional<boost::json::value> parse_json_body(std::string_view body, std::string_view content_type,
                                                  std::string_view content_encoding);

}  // namespace twinhub::telemetry
