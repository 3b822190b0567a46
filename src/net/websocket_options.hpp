// How a server-side WebSocket carrying MQTT or AMQP is configured (spec 5.11): no Beast idle
// timeout or pings (the protocol's keep-alive is the session's deadline), a 10 s handshake limit,
// binary messages, a 512 KiB message limit, and the upgrade answer echoing `subprotocol`. A
// template over the next layer so that the websocket fuzz target runs the same settings over an
// in-memory stream. Thread safety: as the stream's.
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <cstddef>

namespace twinhub::net {

inline constexpr std::size_t websocket_message_max = 512 * 1024;

template <class NextLayer>
void configure_server_websocket(boost::beast::websocket::stream<NextLayer>& ws, const char* subprotocol) {
    namespace websocket = boost::beast::websocket;
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = websocket::stream_base::none();  // MQTT keep-alive is the session's deadline
    t.keep_alive_pings = false;
    ws.set_option(t);
    ws.set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
        res.set(boost::beast::http::field::sec_websocket_protocol, subprotocol);
        res.set(boost::beast::http::field::server, "twinhub");
    }));
    ws.binary(true);
    ws.read_message_max(websocket_message_max);
}

}  // namespace twinhub::net
