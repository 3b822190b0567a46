// The device/module MQTT endpoint (spec 5): MQTT 3.1.1 over TLS on --mqtt-port (8883) and over a
// WebSocket on the HTTPS port (/$iothub/websocket, subprotocol mqtt, handed over by src/http).
// It authenticates CONNECTs against the hub's identities (SAS), keeps one connection per identity,
// persists the subscriptions of clean-session 0 clients, serves twins (GET, reported PATCH, desired
// notifications after commit), appends telemetry durably before PUBACK, and disconnects identities
// that are disabled or deleted, and connections whose SAS token no longer verifies after a key or
// shared access policy change (a session authenticated with a key that is still valid stays).
//
// Lifetime: the io_context, TLS context and hub_service must outlive the mqtt_server. Sessions hold
// a shared reference to the server's internal state, so they may finish after stop(); stop() closes
// them all. The server registers a change_observer with the hub (hub_service has no
// remove_observer): after the server is destroyed that observer ignores every callback.
// Thread safety: start/stop/port/websocket_handler and send_method_request may be called from any
// thread; start() once, before the io_context runs or while it runs.
#pragma once

#include "common/errc.hpp"
#include "net/websocket_handoff.hpp"
#include "mqtt/method_seam.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace twinhub::net {
class tcp_listener;
}

namespace twinhub::service {
class hub_service;
class c2d_service;
}

namespace twinhub::mqtt {

struct mqtt_options {
    std::vector<std::string> host_names;  // accepted in the MQTT user name and the SAS sr
    std::string bind_address = "0.0.0.0";
    unsigned short port = 8883;  // 0: any free port (tests); port() tells which

    // Largest packet after CONNECT: 256 KiB of message plus room for topic and headers (spec 5.3).
    std::size_t max_packet_size = 256 * 1024 + 64 * 1024;
    std::size_t max_message_size = 256 * 1024;  // PUBLISH payload limit; larger closes the connection
    // Before authentication: the CONNECT (user name, SAS token) must fit in this many bytes, and the
    // TLS or WebSocket handshake plus the CONNECT must complete within connect_timeout.
    std::size_t max_connect_packet_size = 16 * 1024;
    std::chrono::milliseconds connect_timeout{10'000};
    // The hub disconnects after 1.5 x keep-alive without traffic, at most this long (spec 5.1).
    std::chrono::milliseconds max_keep_alive_timeout{1'767'000};
    // Close the connection when its SAS token expires (the real hub does; spec 2.4).
    bool disconnect_on_token_expiry = true;
    // Per connection: bytes queued for writing behind the write in flight (beyond: close, the peer
    // is not reading), and store operations in flight (beyond: stop reading until some complete).
    std::size_t max_write_queue_bytes = 4 * 1024 * 1024;
    std::size_t max_inflight_operations = 128;
    std::size_t max_subscriptions = 10;
    std::size_t read_buffer_size = 4096;
    // Telemetry carrying AzIoTHub_FaultOperationType breaks the connection as Azure's e2e tests ask
    // (common/fault_injection.hpp); off by default (twinhubd --fault-injection).
    bool fault_injection = false;
    // The io_context a new MQTT/TLS connection runs on (e.g. twinhub::io_pool::next, one context
    // per thread); unset: the server's io_context. Every context it returns must be run by exactly
    // one thread: the connection then uses the context's executor itself, without a strand. MQTT
    // over WebSocket stays where the HTTPS head accepted it.
    std::function<boost::asio::io_context&()> session_context;
};

class mqtt_server {
public:
    mqtt_server(boost::asio::io_context& ioc, boost::asio::ssl::context& tls, service::hub_service& hub,
                mqtt_options opts);
    ~mqtt_server();
    mqtt_server(const mqtt_server&) = delete;
    mqtt_server& operator=(const mqtt_server&) = delete;

    // Binds and listens on bind_address:port and accepts until stop() (net::tcp_listener: accept
    // errors back off and never end the loop). On failure returns an error whose
    // message names the address and port and says to choose another with --mqtt-port.
    result<void> start();
    // Closes the listener and every session (MQTT over WebSocket included). Idempotent.
    void stop();
    // The bound port (after start()), else the configured one.
    unsigned short port() const;

    // For the HTTPS listener: runs MQTT over an upgraded /$iothub/websocket connection.
    net::websocket_handler websocket_handler();

    // ---- direct-method seam (see method_seam.hpp) ----
    // Set before devices connect; nullptr drops method responses.
    void set_method_response_handler(method_response_handler* h);
    // Cloud-to-device delivery: sessions subscribed to devices/{d}/messages/devicebound/# (a
    // module's to devices/{d}/modules/{m}/inputs/#) receive the identity's queued messages, QoS 1;
    // PUBACK completes one. `c2d` must outlive the server; set before serving (nullptr: none).
    void set_c2d_service(service::c2d_service* c2d);
    // Queues `req` for the connected identity `id` and returns the number of the connection it was
    // queued on (see method_response_handler::on_methods_gone). Fails with device_not_online when the
    // identity is not connected or not subscribed to $iothub/methods/POST/#.
    result<std::uint64_t> send_method_request(const store::identity_key& id, method_request req);

    // Sessions (authenticated or not) currently open; for tests and benchmarks.
    std::size_t session_count() const;

    struct state;
    class observer;

private:
    std::shared_ptr<state> state_;
    std::unique_ptr<net::tcp_listener> listener_;  // set by start()
    observer* observer_ = nullptr;        // owned by a static list; see the lifetime note above
};

}  // namespace twinhub::mqtt
