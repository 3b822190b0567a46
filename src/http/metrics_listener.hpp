// The plain-HTTP metrics listener (--metrics-port, bound to --metrics-bind, 127.0.0.1 by default):
// GET /metrics in Prometheus text format without authentication, for a scraper on the same host or
// network namespace. Anything else answers 404. One request at a time per connection, keep-alive,
// a 10 s read deadline, requests over 16 KB refused.
//
// Lifetime: the io_context and hub_service (and method router) must outlive it; stop() closes the
// acceptor and lets open connections finish. Thread safety: start/stop from one thread.
#pragma once

#include "common/errc.hpp"

#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}
namespace twinhub::service {
class hub_service;
}
namespace twinhub::methods {
class method_router;
}
namespace twinhub::net {
class tcp_listener;
}

namespace twinhub::http {

struct metrics_listener_options {
    std::string bind_address = "127.0.0.1";
    unsigned short port = 0;
    std::string store_file;
    methods::method_router* methods = nullptr;
};

class metrics_listener {
public:
    metrics_listener(boost::asio::io_context& ioc, service::hub_service& hub, metrics_listener_options opts);
    ~metrics_listener();
    result<void> start();
    void stop();
    unsigned short port() const;

    struct state;

private:
    std::shared_ptr<state> state_;
    std::unique_ptr<net::tcp_listener> listener_;
};

}  // namespace twinhub::http
