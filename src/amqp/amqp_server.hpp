// The AMQP 1.0 endpoint of the hub (docs: ../shared/spec/iothub-amqp.md): AMQP over TLS on
// --amqp-port (5671) and over a WebSocket on the HTTPS port (/$iothub/websocket, subprotocol
// AMQPWSB10, handed over by src/http). Built on Apache Qpid Proton's connection driver, which owns
// the AMQP codec and state machines; the bytes travel over the same TLS and WebSocket transports as
// MQTT. Clients authenticate with CBS put-token (device, module and policy SAS tokens), as the
// official SDKs do; a link is opened only for an identity (or a service permission) that a token on
// this connection grants, and a grant ends at the token's expiry or when the identity is disabled,
// deleted or re-keyed.
//
// Device and module links: telemetry (appended durably before `accepted`), twin (GET, reported
// PATCH, desired notifications after commit) and direct methods (requests from the method router).
//
// Lifetime: the io_context, TLS context and hub_service must outlive the server; connections hold a
// shared reference to its internal state and stop() closes them all. Like mqtt_server, it registers
// a change_observer with the hub that ignores callbacks once the server is gone.
// Thread safety: start/stop/port/websocket_handler and the method channel may be used from any
// thread.
#pragma once

#include "common/errc.hpp"
#include "net/websocket_handoff.hpp"
#include "methods/method_router.hpp"

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
class telemetry_service;
class file_upload_service;
}

namespace twinhub::amqp {

struct amqp_options {
    std::vector<std::string> host_names;  // accepted in token audiences
    // The built-in endpoint's Event Hub name (EntityPath of the Event Hubs-compatible connection
    // string); IoT Hub's own "messages/events" is accepted too.
    std::string event_hub_name = "twinhub";
    std::string bind_address = "0.0.0.0";
    unsigned short port = 5671;  // 0: any free port (tests); port() tells which
    // The AMQP port named in amqp:link:redirect answers (0: `port`); set when port is 0.
    unsigned short redirect_port = 0;
    std::size_t max_telemetry_size = 256 * 1024;  // Azure's D2C message limit
    // Telemetry carrying AzIoTHub_FaultOperationType breaks the connection, a session or a link as
    // Azure's e2e tests ask (common/fault_injection.hpp, fault_links.cpp); off by default.
    bool fault_injection = false;
    // Before a put-token succeeds, the TLS or WebSocket handshake and the AMQP open must complete
    // within this long.
    std::chrono::milliseconds connect_timeout{30'000};
    std::chrono::milliseconds idle_timeout{240'000};  // advertised in our open frame
    // Telemetry and twin requests in flight per link (the credit the hub grants).
    int link_credit = 100;
    // As mqtt_options::session_context: the io_context of a new AMQP/TLS connection.
    std::function<boost::asio::io_context&()> session_context;
};

class amqp_server {
public:
    amqp_server(boost::asio::io_context& ioc, boost::asio::ssl::context& tls, service::hub_service& hub,
                amqp_options opts);
    ~amqp_server();
    amqp_server(const amqp_server&) = delete;
    amqp_server& operator=(const amqp_server&) = delete;

    // Binds and listens on bind_address:port and accepts until stop() (net::tcp_listener: accept
    // errors back off and never end the loop). On failure the error names the address and port and
    // says to choose another with --amqp-port.
    result<void> start();
    // Closes the listener and every connection. Idempotent.
    void stop();
    unsigned short port() const;

    // For the HTTPS listener: runs AMQP over a WebSocket upgrade (subprotocol AMQPWSB10).
    net::websocket_handler websocket_handler();

    // The direct-method channel of this head: deliver() hands a request to the identity's AMQP
    // method link. Responses, readiness and closed links are reported to `router`, which must
    // outlive the server. Set before devices connect.
    methods::method_channel& method_channel();
    void set_method_router(methods::method_router* router);
    // Cloud-to-device messaging: the service's /messages/devicebound and feedback links and the
    // devices' receive links go to `c2d`, which must outlive the server. Set before serving; without
    // it those links are refused.
    void set_c2d_service(service::c2d_service* c2d);
    // The built-in endpoint's consumer groups; without it only $Default exists.
    void set_telemetry_service(service::telemetry_service* t);
    // Serves /messages/serviceBound/filenotifications (file_links.cpp); without it the link is refused.
    void set_file_upload_service(service::file_upload_service* f);

    struct state;
    class connection;
    class observer;

private:
    std::shared_ptr<state> state_;
    std::unique_ptr<net::tcp_listener> listener_;  // set by start()
    std::unique_ptr<methods::method_channel> channel_;
    observer* observer_ = nullptr;
};

}  // namespace twinhub::amqp
