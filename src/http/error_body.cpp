#include "http/error_body.hpp"

#include "common/encoding.hpp"
#include "common/error_body.hpp"
#include "common/error_mapping.hpp"

namespace twinhub::http {

rest_response error_response(const error& e) {
    wire_error w = to_wire(e.code);
    rest_response r;
    r.status = w.http_status;
    r.body = rest_error_body(e, random_hex(16), now());
    r.headers.emplace_back("iothub-errorcode", w.code_name);
    return r;
}

rest_response method_error_response(const error& e, std::chrono::seconds timeout) {
    if (!uses_method_error_body(e.code)) return error_response(e);
    const wire_error w = to_wire(e.code);
    rest_response out;
    out.status = w.http_status;
    out.body = method_error_body(e, timeout);
    out.headers.emplace_back("iothub-errorcode", w.code_name);
    return out;
}

}  // namespace twinhub::http
