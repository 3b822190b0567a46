#include "http/beast_request.hpp"

#include "common/text.hpp"

#include "http/request_target.hpp"

#include <boost/beast/core/string.hpp>

#include <cctype>

namespace twinhub::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {
constexpr std::string_view websocket_path = "/$iothub/websocket";
}

rest_request to_rest_request(net::upgrade_request&& req) {
    rest_request rr;
    rr.method = std::string(req.method_string());
    rr.target = std::string(req.target());
    if (auto it = req.find(bhttp::field::authorization); it != req.end()) rr.authorization = std::string(it->value());
    if (auto it = req.find(bhttp::field::if_match); it != req.end()) rr.if_match = std::string(it->value());
    if (auto it = req.find("x-ms-max-item-count"); it != req.end()) rr.max_item_count = std::string(it->value());
    if (auto it = req.find("x-ms-continuation"); it != req.end()) rr.continuation = std::string(it->value());
    if (auto it = req.find(bhttp::field::content_type); it != req.end()) rr.content_type = std::string(it->value());
    if (auto it = req.find(bhttp::field::content_encoding); it != req.end()) rr.content_encoding = std::string(it->value());
    for (const auto& f : req) {
        const auto name = f.name_string();
        if (name.size() > 7 && beast::iequals(name.substr(0, 7), "iothub-")) {
            rr.iothub_headers.emplace_back(ascii_lower(name), std::string(f.value()));
        }
    }
    rr.body = std::move(req.body());
    return rr;
}

bool lists_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        auto comma = value.find(',');
        std::string_view item = value.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (beast::iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

const net::websocket_handler* select_websocket_handler(const net::upgrade_request& req, const net::websocket_handlers& served,
                                                  std::string& why) {
    const auto asked = req[bhttp::field::sec_websocket_protocol];
    const net::websocket_handler* handler = nullptr;
    for (auto& [name, h] : served)
        if (h && lists_token(asked, name)) {
            handler = &h;
            break;
        }
    if (target_path(req.target()) != websocket_path) {
        why = "WebSocket upgrades are served only on /$iothub/websocket.";
        return nullptr;
    }
    if (!handler) {
        std::string names;
        for (auto& [name, h] : served)
            if (h) names += (names.empty() ? "'" : ", '") + name + "'";
        why = "The WebSocket subprotocol '" + std::string(asked) + "' is not served (served: " +
              (names.empty() ? std::string("none") : names) + ").";
    }
    return handler;
}

}  // namespace twinhub::http
