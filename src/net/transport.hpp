// A byte stream under one MQTT session or AMQP connection: TLS on the head's own port (8883, 5671)
// or a WebSocket on the HTTPS port (spec 5.11). The session is written once against this interface; each transport owns
// its stream and completes its own handshake (TLS server handshake, or the WebSocket upgrade
// answer echoing `Sec-WebSocket-Protocol: mqtt`).
// Thread safety: none. Every call, and every completion, happens on executor(), which is the
// connection's strand. At most one read and one write are outstanding at a time.
#pragma once

#include "net/websocket_handoff.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace twinhub::net {

class transport {
public:
    using io_handler = std::function<void(boost::system::error_code, std::size_t)>;
    using handshake_handler = std::function<void(boost::system::error_code)>;

    virtual ~transport() = default;

    // The connection's strand; the session runs all its work there.
    virtual boost::asio::any_io_executor executor() = 0;
    // TLS handshake or WebSocket accept. Called once, first.
    virtual void async_handshake(handshake_handler h) = 0;
    // Reads at least one byte of the MQTT byte stream (a WebSocket frame boundary means nothing).
    virtual void async_read_some(boost::asio::mutable_buffer b, io_handler h) = 0;
    // Writes all of `b` (one WebSocket binary message).
    virtual void async_write(boost::asio::const_buffer b, io_handler h) = 0;
    // Writes what it can of `b` now, without waiting; returns how much. The rest, if any, must be
    // passed next, unchanged, to async_write. Sets `ec` (and returns what was written before) on
    // failure. Only when no write is in flight. Default: nothing (everything goes by async_write).
    virtual std::size_t try_write(boost::asio::const_buffer, boost::system::error_code&) { return 0; }
    // Closes the socket now; outstanding operations complete with an error. Idempotent.
    virtual void close() = 0;
    // "tls" or "wss", for logs.
    virtual const char* name() const noexcept = 0;
    // The peer address ("1.2.3.4:5678"), for logs; empty when unknown.
    virtual std::string remote() const = 0;
    // The client certificate chain the TLS peer presented (DER, leaf first; peer_certificates.hpp);
    // empty when none. After the handshake.
    virtual std::vector<std::string> peer_certificates() const { return {}; }
};

// MQTT over TLS driven directly through OpenSSL on the non-blocking socket (Asio only waits for
// readiness): no per-connection record buffers beyond OpenSSL's own, which are released while the
// connection is idle. This is what the 8883 listener uses (10,000 idle connections fit in a few
// hundred MB).
std::unique_ptr<transport> make_openssl_transport(boost::asio::ip::tcp::socket&& socket, boost::asio::ssl::context& tls);

// A WebSocket on a TLS stream handed over by the HTTPS listener with its upgrade request; the
// handshake answer echoes `subprotocol` ("mqtt", or "AMQPWSB10" for the AMQP head).
std::unique_ptr<transport> make_websocket_transport(tls_stream&& stream, upgrade_request&& req,
                                                    const char* subprotocol = "mqtt");

}  // namespace twinhub::net
