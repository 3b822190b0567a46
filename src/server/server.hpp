// twinhubd's composition root: owns the store, the hub service, the TLS context, the I/O threads
// and the protocol listeners, and tears them down in reverse order.
// Thread safety: create and run from the main thread; request_stop may be called from any thread.
#pragma once

#include "server/config.hpp"

#include <memory>

namespace twinhub::server {

class server {
public:
    // Prepares the data directory, opens the store and the service, binds the listeners. Throws
    // std::runtime_error with a message a user can act on (e.g. a port that cannot be bound).
    explicit server(const config& c);
    ~server();

    // Serves until SIGINT or SIGTERM (or request_stop), then shuts down cleanly.
    void run();
    void request_stop();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::server
