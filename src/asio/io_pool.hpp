// A pool of io_contexts with one thread each, for connections that are served independently
// (the MQTT sessions). One shared io_context run by N threads hands every socket's completions to
// the one thread that waits in epoll, and wakes another thread for each posted handler: under load
// that thread saturates while the others idle (docs/benchmarks.md, MQTT head). With one context per
// thread each thread polls its own sockets, and a handler posted from inside its own context stays
// on that thread.
//
// Lifetime: start() runs the threads; stop() makes them return (pending handlers are not run) and
// joins them; the destructor calls stop(). Destroying the pool destroys the handlers still queued.
#pragma once

#include <cstddef>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace twinhub {

class io_pool {
public:
    explicit io_pool(std::size_t threads);
    ~io_pool();
    io_pool(const io_pool&) = delete;
    io_pool& operator=(const io_pool&) = delete;

    void start();
    void stop();
    // Round robin over the contexts; thread-safe.
    boost::asio::io_context& next();
    std::size_t size() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub
