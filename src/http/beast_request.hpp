// The HTTPS head's translation of a parsed Beast request into what the REST API and the WebSocket
// hand-off look at: the rest_request fields, and which registered head an upgrade request goes to.
// Shared by https_server and the rest/websocket fuzz targets, so both see the same edge.
// Thread safety: pure functions.
#pragma once

#include "http/rest_message.hpp"
#include "net/websocket_handoff.hpp"

#include <string>
#include <string_view>

namespace twinhub::http {

// Method, target, Authorization, If-Match, x-ms-max-item-count, x-ms-continuation, Content-Type,
// Content-Encoding, every iothub-* header (name lower-cased, in order) and the body (moved out).
rest_request to_rest_request(net::upgrade_request&& req);

// True when the comma-separated header value lists `token` (case-insensitive, blanks trimmed).
bool lists_token(std::string_view value, std::string_view token);

// The handler an upgrade request is served by: the first of `served` (in the server's order) whose
// subprotocol the request's Sec-WebSocket-Protocol lists, on /$iothub/websocket only. nullptr when
// none applies; then `why` gets the text of the 404 (the path, or the subprotocols served).
const net::websocket_handler* select_websocket_handler(const net::upgrade_request& req, const net::websocket_handlers& served,
                                                  std::string& why);

}  // namespace twinhub::http
