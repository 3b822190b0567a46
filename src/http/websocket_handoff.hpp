// The seam between the HTTPS listener on port 443 and the MQTT head: an upgrade request for
// /$iothub/websocket with subprotocol "mqtt" is handed over, with its TLS stream, to the handler the
// MQTT head registered. Included only by the http and mqtt modules and the server.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <functional>

namespace twinhub::http {

using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using upgrade_request = boost::beast::http::request<boost::beast::http::string_body>;

// Called on the connection's strand with ownership of the stream; the callee completes the
// WebSocket handshake (echoing Sec-WebSocket-Protocol: mqtt) and runs the MQTT session over it.
// Leftover bytes already read past the request are not possible: the listener stops reading at the
// end of the upgrade request.
using websocket_handler = std::function<void(tls_stream&& stream, upgrade_request&& req)>;

}  // namespace twinhub::http
