// The REST head's view of one HTTP exchange, free of Beast so that routing, authorisation and
// formatting can be tested without sockets: the few request fields the API uses, and the response
// to send. Thread safety: plain values.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace twinhub::http {

struct rest_request {
    std::string method;                   // as sent: "GET", "PUT", "PATCH", "POST", "DELETE", ...
    std::string target;                   // origin form, e.g. "/devices/d%201?api-version=2021-04-12"
    std::optional<std::string> authorization;  // Authorization header; nullopt when absent
    std::optional<std::string> if_match;       // If-Match header; nullopt when absent (create-only PUT)
    std::string body;
    std::optional<std::string> max_item_count = {};  // x-ms-max-item-count (POST /devices/query, spec 3.7)
    std::optional<std::string> continuation = {};    // x-ms-continuation (POST /devices/query)
    // Device telemetry over HTTPS: Content-Type, Content-Encoding, and every iothub-* header with its
    // name lower-cased (system properties, iothub-app-{name} application properties), in order.
    std::optional<std::string> content_type = {};
    std::optional<std::string> content_encoding = {};
    std::vector<std::pair<std::string, std::string>> iothub_headers = {};
    // The TLS client certificate chain (DER, leaf first), filled only when there is no
    // Authorization header: the device routes then authenticate the identity by X.509.
    std::vector<std::string> client_certificates = {};
};

struct rest_response {
    int status = 200;
    std::string body;  // JSON text (Content-Type: application/json; charset=utf-8); empty for 204
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers: ETag, iothub-errorcode

    // The value of an extra header (case-sensitive name), or nullptr.
    const std::string* header(std::string_view name) const {
        for (const auto& [k, v] : headers) {
            if (k == name) return &v;
        }
        return nullptr;
    }
};

}  // namespace twinhub::http
