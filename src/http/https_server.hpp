// The HTTPS listener on port 443 (spec 0.3, 1.3): TLS (the server's ssl::context), HTTP/1.1 with
// keep-alive, a request body limit and a deadline on every read; REST requests go to rest_api,
// WebSocket upgrades on /$iothub/websocket with subprotocol "mqtt" go to the MQTT head's
// net::websocket_handler (spec 5.11).
//
// Lifetime: the io_context, ssl::context and hub_service must outlive the https_server. stop() (and
// the destructor) closes the acceptor and every open connection; sessions still finishing a write
// hold only shared state, never the https_server itself.
// Thread safety: start(), stop() and port() from any one thread at a time; sessions run on their own
// strands of `ioc` (which may be run by several threads).
#pragma once

#include "common/errc.hpp"
#include "net/websocket_handoff.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace twinhub::service {
class hub_service;
class c2d_service;
class telemetry_service;
class file_upload_service;
}
namespace twinhub::jobs {
class job_service;
class configuration_service;
class import_export_service;
}
namespace twinhub::methods {
class method_router;
}
namespace twinhub::query {
class query_engine;
}

namespace twinhub::net {
class tcp_listener;
}

namespace twinhub::http {

struct https_options {
    std::vector<std::string> host_names;  // names a service token's sr may carry; empty: "localhost"
    std::string bind_address = "0.0.0.0";
    unsigned short port = 443;            // 0: any free port (tests), see https_server::port()
    std::size_t body_limit = 1024 * 1024; // larger request bodies get 413 MessageTooLarge
    std::chrono::seconds read_timeout{30};  // per TLS handshake, request read and idle keep-alive wait
    methods::method_router* methods = nullptr;  // serves direct methods when set (see rest_api)
    query::query_engine* queries = nullptr;     // serves POST /devices/query when set (see rest_api)
    service::c2d_service* c2d = nullptr;        // serves the C2D routes when set (see rest_api)
    service::telemetry_service* telemetry = nullptr;  // serves the consumer group routes when set
    jobs::job_service* jobs = nullptr;                // serves /jobs/v2 when set
    jobs::configuration_service* configurations = nullptr;  // serves /configurations when set
    // The operator's endpoints (http/ops_api.hpp): /health, /metrics, /console.
    std::string metrics_token;  // accepted as "Bearer <token>" on /metrics; empty: SAS tokens only
    std::string store_file;     // the store's file (WAL size metric)
    std::string data_dir;       // readiness checks its file system's free space
    std::string console_dir;    // the console's built files; empty: /console answers 404
    service::file_upload_service* files = nullptr;    // serves /devices/{id}/files when set
    jobs::import_export_service* import_export = nullptr;  // serves /jobs/create, /jobs[/{id}] when set
};

class https_server {
public:
    // on_websocket may be empty: upgrade requests then get 404. The first form serves only "mqtt".
    https_server(boost::asio::io_context& ioc, boost::asio::ssl::context& tls, service::hub_service& hub,
                 https_options opts, net::websocket_handler on_websocket);
    https_server(boost::asio::io_context& ioc, boost::asio::ssl::context& tls, service::hub_service& hub,
                 https_options opts, net::websocket_handlers on_websocket);
    ~https_server();

    https_server(const https_server&) = delete;
    https_server& operator=(const https_server&) = delete;

    // Binds and listens, then accepts until stop() (through net::tcp_listener: accept errors such
    // as EMFILE back off and never end the loop). Fails with invalid_argument for a bad bind address
    // or a port that cannot be bound (the message names the port and says how to choose another
    // with --https-port).
    result<void> start();

    // Closes the acceptor and all sessions. Idempotent.
    void stop();

    // The bound port after start() (useful with port 0), else the configured one.
    unsigned short port() const;

    struct state;

private:
    std::shared_ptr<state> state_;
    std::unique_ptr<net::tcp_listener> listener_;  // set by start()
};

}  // namespace twinhub::http
