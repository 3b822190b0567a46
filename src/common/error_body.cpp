#include "common/error_body.hpp"

#include "common/encoding.hpp"
#include "common/error_mapping.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <ctime>

namespace twinhub {
namespace json = boost::json;
namespace {

std::string message_text(const error& e) {
    return e.message.empty() ? std::string(to_string(e.code)) : well_formed_utf8(e.message);
}

// "hh:mm:ss", as IoT Hub writes a TimeSpan.
std::string format_timespan(std::chrono::seconds s) {
    const auto total = s.count() < 0 ? 0 : s.count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
    return buf;
}

json::object device_error_object(const error& e) {
    json::object o;
    o["errorCode"] = to_wire(e.code).code_number;
    o["trackingId"] = random_hex(16);
    o["message"] = well_formed_utf8(e.message);
    return o;
}

}  // namespace

// Messages quote request input (ids, methods, paths may carry any byte); Boost.JSON copies a
// string's bytes as they are, and invalid UTF-8 would make the whole body unparsable for clients.
std::string well_formed_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t i = 0;
    while (i < in.size()) {
        const auto c = static_cast<unsigned char>(in[i]);
        std::size_t len = c < 0x80                   ? 1
                          : (c >= 0xC2 && c <= 0xDF) ? 2
                          : (c >= 0xE0 && c <= 0xEF) ? 3
                          : (c >= 0xF0 && c <= 0xF4) ? 4
                                                     : 0;
        bool ok = len != 0 && i + len <= in.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
        if (ok && len >= 3) {  // no overlong forms, no surrogates, nothing above U+10FFFF
            const auto c1 = static_cast<unsigned char>(in[i + 1]);
            if (c == 0xE0)
                ok = c1 >= 0xA0;
            else if (c == 0xED)
                ok = c1 < 0xA0;
            else if (c == 0xF0)
                ok = c1 >= 0x90;
            else if (c == 0xF4)
                ok = c1 < 0x90;
        }
        if (!ok) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        out.append(in.substr(i, len));
        i += len;
    }
    return out;
}

std::string format_exception_message(std::string_view tracking_id, time_point t) {
    std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[96];
    std::snprintf(stamp, sizeof stamp, "%02d/%02d/%04d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::string out = "Tracking ID:";
    out.append(tracking_id);
    out += "-G:0-TimeStamp:";
    out += stamp;
    return out;
}

std::string rest_error_body(const error& e, std::string_view tracking_id, time_point t) {
    std::string text = message_text(e);
    for (auto& c : text) {
        if (c == ';') c = ',';
    }
    json::object body;
    body["Message"] = std::string("ErrorCode:") + to_wire(e.code).code_name + ";" + text;
    body["ExceptionMessage"] = format_exception_message(tracking_id, t);
    return json::serialize(body);
}

std::string twin_error_body(const error& e) {
    json::object body = device_error_object(e);
    body["timestampUtc"] = format_time(now());
    return json::serialize(body);
}

bool uses_method_error_body(errc code) noexcept {
    return code == errc::device_not_online || code == errc::gateway_timeout;
}

std::string method_error_body(const error& e, std::chrono::seconds timeout) {
    json::object inner = device_error_object(e);
    json::object info;
    info["timeout"] = format_timespan(timeout);
    inner["info"] = std::move(info);
    inner["timestampUtc"] = format_time(now());
    json::object outer;
    outer["Message"] = json::serialize(inner);
    outer["ExceptionMessage"] = "";
    return json::serialize(outer);
}

std::string amqp_twin_error_body(const error& e) {
    json::object body{{"errorCode", to_wire(e.code).code_number}, {"message", well_formed_utf8(e.message)}};
    return json::serialize(body);
}

}  // namespace twinhub
