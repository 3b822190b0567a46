#include "http/error_body.hpp"

#include "common/encoding.hpp"
#include "common/error_mapping.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <ctime>

namespace twinhub::http {

namespace {

// The message with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
// Messages quote request input (ids, methods, paths may carry any byte); Boost.JSON copies a
// string's bytes as they are, and invalid UTF-8 would make the whole body unparsable for clients.
std::string well_formed_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t i = 0;
    while (i < in.size()) {
        const auto c = static_cast<unsigned char>(in[i]);
        std::size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                          : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = len != 0 && i + len <= in.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
        if (ok && len >= 3) {  // no overlong forms, no surrogates, nothing above U+10FFFF
            const auto c1 = static_cast<unsigned char>(in[i + 1]);
            if (c == 0xE0) ok = c1 >= 0xA0;
            else if (c == 0xED) ok = c1 < 0xA0;
            else if (c == 0xF0) ok = c1 >= 0x90;
            else if (c == 0xF4) ok = c1 < 0x90;
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

}  // namespace

std::string format_exception_message(std::string_view tracking_id, time_point t) {
    std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[96];
    std::snprintf(stamp, sizeof stamp, "%02d/%02d/%04d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::string out = "Tracking ID:";
    out.append(tracking_id);
    out += "-G:0-TimeStamp:";
    out += stamp;
    return out;
}

std::string format_error_body(const error& e, std::string_view tracking_id, time_point t) {
    wire_error w = to_wire(e.code);
    std::string text = e.message.empty() ? std::string(to_string(e.code)) : well_formed_utf8(e.message);
    for (auto& c : text) {
        if (c == ';') c = ',';
    }
    boost::json::object body;
    body["Message"] = std::string("ErrorCode:") + w.code_name + ";" + text;
    body["ExceptionMessage"] = format_exception_message(tracking_id, t);
    return boost::json::serialize(body);
}

rest_response error_response(const error& e) {
    wire_error w = to_wire(e.code);
    rest_response r;
    r.status = w.http_status;
    r.body = format_error_body(e, random_hex(16), now());
    r.headers.emplace_back("iothub-errorcode", w.code_name);
    return r;
}

}  // namespace twinhub::http
