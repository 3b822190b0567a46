// Byte transports for the device client's MQTT connection: MQTT over TLS (8883) and MQTT over a
// WebSocket over TLS (443, /$iothub/websocket, subprotocol "mqtt"; spec 5.11). Each object is one
// connection attempt; a new connection uses a new object. Writes are queued (one in flight).
// Thread safety: none; used only on the client's I/O thread.
#pragma once

#include "common/errc.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

namespace twinhub::client {

class transport {
public:
    virtual ~transport() = default;
    // Connects, handshakes TLS (verifying `host`) and, for WebSocket, upgrades. Fails with
    // connection_failed and a message saying which step failed.
    virtual boost::asio::awaitable<result<void>> open(std::string host, std::uint16_t port,
                                                      std::chrono::milliseconds timeout) = 0;
    virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
        boost::asio::mutable_buffer b) = 0;
    // Closes the socket at once; pending reads and writes complete with an error.
    virtual void close() = 0;

    // Queues bytes; a writer coroutine drains the queue in order.
    void send(std::string bytes);
    bool closed() const { return closed_; }

protected:
    virtual boost::asio::awaitable<boost::system::error_code> write(const std::string& bytes) = 0;
    bool closed_ = false;

private:
    boost::asio::awaitable<void> drain(std::shared_ptr<transport> self);
    std::deque<std::string> queue_;
    bool writing_ = false;

public:
    std::weak_ptr<transport> self_;  // set by make_*_transport
    boost::asio::any_io_executor co_spawn_executor_;
};

std::shared_ptr<transport> make_tls_transport(boost::asio::any_io_executor ex,
                                              std::shared_ptr<boost::asio::ssl::context> tls);
std::shared_ptr<transport> make_websocket_transport(boost::asio::any_io_executor ex,
                                                    std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace twinhub::client
