// A listening TCP socket that accepts until close(), whatever happens to single accepts. All three
// ports of the hub accept through it: HTTPS/WebSocket (443), MQTT/TLS (8883), AMQP/TLS (5671).
//
// An accept that fails never ends the loop (issue 12 item 7): a lost connection (ECONNABORTED, ...)
// is skipped; resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) and unknown errors make the
// listener wait (10 ms, doubling to 1 s while failures go on; connections meanwhile wait in the
// kernel's backlog) and accept again. The same holds when the connection handler throws, or the
// executor source does: that connection is closed, the loop goes on. One failure episode logs two
// lines (see accept_backoff.hpp): `net.accept_failed` (or `net.connection_setup_failed`) at warn
// with the listener, port and cause, and `net.accept_recovered` at info with the number of
// failures, of those suppressed, and how long it lasted, at the first connection served a second
// or more after the last failure.
//
// Lifetime: the io_context must outlive the listener. The destructor closes it; pending operations
// keep its internal state (and the handler with what it captured) alive until they complete.
// Thread safety: start() once, from one thread; close() and port() from any thread. The executor
// source and the connection handler run on the listener's strand, one call at a time.
#pragma once

#include "common/errc.hpp"
#include "net/accept_backoff.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace twinhub::net {

struct listener_options {
    std::string name;         // "https", "mqtt", "amqp": the `listener` field of the log lines
    std::string protocol;     // "HTTPS", "MQTT", "AMQP": in start()'s error messages
    std::string port_option;  // "--https-port": the option start()'s error messages point to
    std::string bind_address = "0.0.0.0";
    unsigned short port = 0;  // 0: any free port (tests); port() tells which
    accept_backoff::policy backoff{};
};

class tcp_listener {
public:
    // The executor the next accepted socket is bound to (a new strand, a per-thread context).
    using executor_source = std::function<boost::asio::any_io_executor()>;
    // Takes ownership of an accepted socket. If it throws, the socket (unless moved out) closes.
    using connection_handler = std::function<void(boost::asio::ip::tcp::socket&&)>;

    tcp_listener(boost::asio::io_context& ioc, listener_options opts, executor_source peer_executor,
                 connection_handler on_connection);
    ~tcp_listener();
    tcp_listener(const tcp_listener&) = delete;
    tcp_listener& operator=(const tcp_listener&) = delete;

    // Binds and listens (SO_REUSEADDR), logs `net.listening` and starts accepting. Fails with
    // invalid_argument when bind_address is not an IP address or the port cannot be bound; the
    // message names the address and port and the option to choose another.
    result<void> start();

    // Stops accepting and closes the socket: the port refuses connections from then on. A
    // connection accepted but not yet handed over is closed. Idempotent; does not wait.
    void close();

    // The bound port after start(), else the configured one.
    unsigned short port() const noexcept;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace twinhub::net
