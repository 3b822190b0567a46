#include "http/error_body.hpp"

#include "common/encoding.hpp"
#include "common/error_mapping.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <ctime>

namespace twinhub::http {

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
    std::string text = e.message.empty() ? std::string(to_string(e.code)) : e.message;
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
