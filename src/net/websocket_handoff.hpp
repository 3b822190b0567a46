// The seam between the HTTPS listener on port 443 and the heads served over WebSocket: an upgrade
// request for /$iothub/websocket with subprotocol "mqtt" (or "AMQPWSB10") is handed over, with its
// TLS stream, to the handler the MQTT (or AMQP) head registered. It lives in net/, below the heads,
// so that no head includes another: http hands over, mqtt and amqp take over, the server wires them.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace twinhub::net {

using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using upgrade_request = boost::beast::http::request<boost::beast::http::string_body>;

// Called on the connection's strand with ownership of the stream; the callee completes the
// WebSocket handshake (echoing its Sec-WebSocket-Protocol) and runs its session over it.
// Leftover bytes already read past the request are not possible: the listener stops reading at the
// end of the upgrade request.
using websocket_handler = std::function<void(tls_stream&& stream, upgrade_request&& req)>;

// The heads served over WebSocket, by subprotocol: {"mqtt", ...} (MQTT head), {"AMQPWSB10", ...}
// (AMQP head). The first subprotocol the client lists that is served here wins.
using websocket_handlers = std::vector<std::pair<std::string, websocket_handler>>;

}  // namespace twinhub::net
