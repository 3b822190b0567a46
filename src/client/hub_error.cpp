#include "client/hub_error.hpp"

#include "common/error_mapping.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <string>

namespace twinhub::client {
namespace {

constexpr errc last_errc = errc::message_lock_lost;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::string shorten(std::string_view s) {
    s = trim(s);
    if (s.size() > 500) return std::string(s.substr(0, 500)) + "...";
    return std::string(s);
}

// {"errorCode":404103,"message":"..."} (MQTT twin errors, direct-method REST errors).
bool parse_error_code_object(const boost::json::value& v, error& out) {
    const auto* o = v.if_object();
    if (!o) return false;
    const auto* code = o->if_contains("errorCode");
    if (!code) return false;
    long long n = 0;
    if (code->is_int64()) n = code->as_int64();
    else if (code->is_uint64()) n = static_cast<long long>(code->as_uint64());
    else if (code->is_double()) n = static_cast<long long>(code->as_double());
    else if (const auto* s = code->if_string()) {
        errc e = errc_from_code_name(*s);
        out.code = e == errc::ok ? errc::internal : e;
    }
    if (n != 0) out.code = errc_from_code_number(n);
    const auto* msg = o->if_contains("message");
    if (!msg) msg = o->if_contains("Message");
    if (msg && msg->is_string()) out.message = std::string(msg->as_string());
    return true;
}

}  // namespace

errc errc_from_code_name(std::string_view name) noexcept {
    if (name.empty()) return errc::ok;
    if (name == "ServerError") return errc::internal;
    if (name == "IotHubUnauthorized") return errc::unauthorized;
    if (name == "ThrottleBacklogLimitExceeded") return errc::throttled;
    if (name == "ArgumentNull") return errc::invalid_argument;
    for (int i = 1; i <= static_cast<int>(last_errc); ++i) {
        auto e = static_cast<errc>(i);
        if (name == to_wire(e).code_name) return e;
    }
    return errc::ok;
}

errc errc_from_code_number(long long number) noexcept {
    if (number == 500001) return errc::internal;
    for (int i = 1; i <= static_cast<int>(last_errc); ++i) {
        auto e = static_cast<errc>(i);
        if (to_wire(e).code_number == number) return e;
    }
    if (number >= 100000 && number < 1000000) return errc_from_http_status(static_cast<int>(number / 1000));
    if (number >= 100 && number < 1000) return errc_from_http_status(static_cast<int>(number));
    return errc::internal;
}

errc errc_from_http_status(int status) noexcept {
    switch (status) {
    case 400: return errc::invalid_argument;
    case 401: return errc::unauthorized;
    case 403: return errc::too_many_devices;
    case 404: return errc::not_found;
    case 405: return errc::method_not_allowed;
    case 408: return errc::gateway_timeout;
    case 409: return errc::device_already_exists;
    case 412: return errc::precondition_failed;
    case 413: return errc::message_too_large;
    case 429: return errc::throttled;
    case 503: return errc::shutting_down;
    case 504: return errc::gateway_timeout;
    default: return status >= 400 && status < 500 ? errc::invalid_argument : errc::internal;
    }
}

errc errc_from_amqp_condition(std::string_view condition, std::string_view description,
                              bool module_target) noexcept {
    if (condition == "amqp:not-found")
        return module_target && description.find("odule") != std::string_view::npos ? errc::module_not_found
                                                                                    : errc::device_not_found;
    if (condition == "amqp:resource-limit-exceeded") return errc::device_queue_full;
    if (condition == "amqp:link:message-size-exceeded") return errc::message_too_large;
    if (condition == "amqp:unauthorized-access") return errc::unauthorized;
    if (condition == "com.microsoft:argument-error" || condition == "com.microsoft:argument-out-of-range")
        return errc::invalid_argument;
    if (condition == "com.microsoft:device-container-throttled") return errc::throttled;
    if (condition == "com.microsoft:quota-exceeded") return errc::too_many_devices;
    if (condition == "com.microsoft:precondition-failed") return errc::precondition_failed;
    if (condition == "com.microsoft:message-lock-lost") return errc::message_lock_lost;
    if (condition == "com.microsoft:device-already-exists") return errc::device_already_exists;
    if (condition == "com.microsoft:timeout") return errc::gateway_timeout;
    if (condition == "amqp:link:detach-forced") return errc::shutting_down;
    if (condition == "amqp:not-allowed") return errc::method_not_allowed;
    return errc::internal;
}

error parse_rest_error(int status, std::string_view body, std::string_view errorcode_header) {
    error out{errc_from_http_status(status), ""};
    if (errc e = errc_from_code_name(errorcode_header); e != errc::ok) out.code = e;
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    bool parsed = false;
    if (!ec) {
        if (const auto* o = v.if_object()) {
            const auto* m = o->if_contains("Message");
            if (!m) m = o->if_contains("message");
            if (m && m->is_string()) {
                std::string_view text = m->as_string();
                // Direct-method errors: Message holds a JSON object with errorCode.
                boost::system::error_code ec2;
                auto inner = boost::json::parse(text, ec2);
                if (!ec2 && parse_error_code_object(inner, out)) {
                    parsed = true;
                } else if (text.starts_with("ErrorCode:")) {
                    auto semi = text.find(';');
                    std::string_view name = text.substr(10, semi == std::string_view::npos ? text.npos : semi - 10);
                    if (errc e = errc_from_code_name(name); e != errc::ok) out.code = e;
                    out.message = semi == std::string_view::npos ? std::string(text) : std::string(text.substr(semi + 1));
                    parsed = true;
                } else {
                    out.message = std::string(text);
                    parsed = true;
                }
            } else if (parse_error_code_object(v, out)) {
                parsed = true;
            }
        }
    }
    if (!parsed || out.message.empty()) {
        std::string b = shorten(body);
        if (out.message.empty()) out.message = b.empty() ? "HTTP " + std::to_string(status) : b;
    }
    return out;
}

error parse_twin_error(int status, std::string_view body) {
    error out{errc_from_http_status(status), ""};
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (!ec) parse_error_code_object(v, out);
    if (out.message.empty()) {
        std::string b = shorten(body);
        out.message = b.empty() ? "twin request failed with status " + std::to_string(status) : b;
    }
    return out;
}

}  // namespace twinhub::client
