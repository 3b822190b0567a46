#include "methods/method_invocation.hpp"

#include "common/encoding.hpp"
#include "common/time.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <cstdio>
#include <limits>

namespace twinhub::methods {

namespace json = boost::json;

namespace {

constexpr std::string_view forbidden = "$()<>@,;:\\\"/[]?={}+#";

std::string describe_char(char c) {
    if (c == ' ') return "a space";
    if (c == '\t') return "a tab";
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "byte 0x%02X", u);
        return buf;
    }
    return std::string("'") + c + "'";
}

// A whole number of seconds in [lo, hi]; null or absent gives `dflt`.
result<std::chrono::seconds> parse_seconds(const json::object& o, std::string_view key, std::chrono::seconds dflt,
                                           std::chrono::seconds lo, std::chrono::seconds hi) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return dflt;
    auto range_error = [&] {
        return error{errc::invalid_argument, std::string(key) + " must be a whole number of seconds from " +
                                                 std::to_string(lo.count()) + " to " + std::to_string(hi.count()) +
                                                 "."};
    };
    std::int64_t n = 0;
    if (v->is_int64()) {
        n = v->get_int64();
    } else if (v->is_uint64()) {
        return range_error();
    } else if (v->is_double()) {
        const double d = v->get_double();
        if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 1e9) return range_error();
        n = static_cast<std::int64_t>(d);
    } else {
        return range_error();
    }
    if (n < lo.count() || n > hi.count()) return range_error();
    return std::chrono::seconds(n);
}

}  // namespace

result<void> validate_method_name(std::string_view name) {
    if (name.empty()) return error{errc::invalid_argument, "methodName must not be empty."};
    if (name.size() > max_method_name_size)
        return error{errc::invalid_argument, "methodName is " + std::to_string(name.size()) +
                                                 " characters long; at most " + std::to_string(max_method_name_size) +
                                                 " are allowed."};
    for (char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || forbidden.find(c) != std::string_view::npos) {
            return error{errc::invalid_argument,
                         "methodName '" + std::string(name) + "' contains " + describe_char(c) +
                             "; a method name may use printable US-ASCII only, without spaces, tabs and the "
                             "characters $ ( ) < > @ , ; : \\ \" / [ ] ? = { } + #."};
        }
    }
    return {};
}

result<invocation_request> parse_invocation_request(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return error{errc::format_error, "The request body is empty; a JSON object with methodName is expected."};
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return error{errc::format_error, "The request body is not valid JSON (" + ec.message() + ")."};
    if (!v.is_object()) return error{errc::invalid_argument, "The request body must be a JSON object with methodName."};
    const json::object& o = v.get_object();

    invocation_request r;
    const json::value* name = o.if_contains("methodName");
    if (name == nullptr || name->is_null()) return error{errc::invalid_argument, "methodName is required."};
    if (!name->is_string()) return error{errc::invalid_argument, "methodName must be a string."};
    r.method_name = std::string(name->get_string());
    if (auto ok = validate_method_name(r.method_name); !ok) return ok.error();

    auto rt = parse_seconds(o, "responseTimeoutInSeconds", default_response_timeout, min_response_timeout,
                            max_response_timeout);
    if (!rt) return rt.error();
    r.response_timeout = *rt;
    auto ct = parse_seconds(o, "connectTimeoutInSeconds", default_connect_timeout, std::chrono::seconds(0),
                            max_connect_timeout);
    if (!ct) return ct.error();
    r.connect_timeout = *ct;

    if (const json::value* p = o.if_contains("payload"); p != nullptr && !p->is_null()) r.payload = json::serialize(*p);
    if (r.payload.size() > max_payload_size)
        return error{errc::message_too_large, "The method payload is " + std::to_string(r.payload.size()) +
                                                  " bytes of JSON; a direct-method request may carry at most " +
                                                  std::to_string(max_payload_size) + " bytes (128 KB)."};
    return r;
}

std::string format_invocation_result(int status, std::string_view payload_json) {
    std::string out = "{\"status\":";
    out += std::to_string(status);
    out += ",\"payload\":";
    out.append(payload_json.empty() ? std::string_view("null") : payload_json);
    out += '}';
    return out;
}

}  // namespace twinhub::methods
