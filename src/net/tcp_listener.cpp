// The accept loop of every listener: one pending accept or one backoff wait at a time, on a strand.
#include "net/tcp_listener.hpp"

#include "common/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <exception>

namespace twinhub::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct tcp_listener::impl : std::enable_shared_from_this<impl> {
    impl(asio::io_context& io, listener_options o, executor_source es, connection_handler h)
        : ioc(io), opts(std::move(o)), peer_executor(std::move(es)), on_connection(std::move(h)),
          acceptor(asio::make_strand(io)), retry(acceptor.get_executor()), backoff(opts.backoff), bound_port(opts.port) {}

    asio::io_context& ioc;
    const listener_options opts;
    executor_source peer_executor;
    connection_handler on_connection;
    tcp::acceptor acceptor;  // on a strand of ioc; so is retry
    asio::steady_timer retry;
    accept_backoff backoff;  // strand only
    std::atomic<bool> closed{false};
    std::atomic<unsigned short> bound_port;

    void do_accept() {
        if (closed) return;
        try {
            acceptor.async_accept(peer_executor(), [self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
                self->on_accept(ec, std::move(s));
            });
        } catch (const std::exception& e) {
            failed("net.accept_failed", e.what());
        } catch (...) {
            failed("net.accept_failed", "unknown exception");
        }
    }

    void on_accept(boost::system::error_code ec, tcp::socket socket) {
        if (closed) return;  // a socket accepted meanwhile closes here
        if (ec) {
            if (classify_accept_error(ec) == accept_error_kind::connection_lost && !backoff.lost_connection()) {
                log::debug("net.accept_lost", {{"listener", opts.name}, {"port", port()}, {"error", ec.message()}});
                return do_accept();
            }
            return failed("net.accept_failed", ec.message());
        }
        try {
            on_connection(std::move(socket));
        } catch (const std::exception& e) {
            return failed("net.connection_setup_failed", e.what());
        } catch (...) {
            return failed("net.connection_setup_failed", "unknown exception");
        }
        if (auto r = backoff.served(accept_backoff::clock::now())) {
            log::info("net.accept_recovered", {{"listener", opts.name},
                                               {"port", port()},
                                               {"failures", r->failures},
                                               {"suppressed", r->failures - 1},
                                               {"after_ms", static_cast<std::int64_t>(r->lasted.count())},
                                               {"last_error", r->last_cause}});
        }
        do_accept();
    }

    void failed(std::string_view event, const std::string& cause) {
        const auto step = backoff.failed(cause, accept_backoff::clock::now());
        if (step.report) {
            log::warn(event, {{"listener", opts.name},
                              {"port", port()},
                              {"error", cause},
                              {"retry_ms", static_cast<std::int64_t>(step.delay.count())}});
        }
        try {
            retry.expires_after(step.delay);
            retry.async_wait([self = shared_from_this()](boost::system::error_code) { self->do_accept(); });
        } catch (...) {
            // Not even a timer wait could be set up (out of memory): keep the loop alive through the
            // queue, without the pause, rather than stop accepting for good.
            asio::post(acceptor.get_executor(), [self = shared_from_this()] { self->do_accept(); });
        }
    }

    unsigned short port() const noexcept { return bound_port.load(std::memory_order_relaxed); }
};

tcp_listener::tcp_listener(asio::io_context& ioc, listener_options opts, executor_source peer_executor,
                           connection_handler on_connection)
    : impl_(std::make_shared<impl>(ioc, std::move(opts), std::move(peer_executor), std::move(on_connection))) {}

tcp_listener::~tcp_listener() { close(); }

result<void> tcp_listener::start() {
    auto& st = *impl_;
    const auto& o = st.opts;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(o.bind_address, ec);
    if (ec)
        return error{errc::invalid_argument, "The " + o.protocol + " bind address '" + o.bind_address +
                                                 "' is not an IP address."};
    const tcp::endpoint ep{addr, o.port};
    auto fail = [&](std::string_view step) -> result<void> {
        boost::system::error_code ignored;
        st.acceptor.close(ignored);
        const std::string hint = ec == asio::error::access_denied    ? " Ports below 1024 need root or CAP_NET_BIND_SERVICE;"
                                 : ec == asio::error::address_in_use ? " Another program is using it;"
                                                                     : "";
        return error{errc::invalid_argument, "Cannot " + std::string(step) + " " + o.protocol + " port " +
                                                 std::to_string(o.port) + " on " + o.bind_address + ": " + ec.message() +
                                                 "." + hint + " choose another port with " + o.port_option + "."};
    };
    st.acceptor.open(ep.protocol(), ec);
    if (ec) return fail("open");
    st.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    st.acceptor.bind(ep, ec);
    if (ec) return fail("bind");
    st.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    auto local = st.acceptor.local_endpoint(ec);
    st.bound_port = ec ? o.port : local.port();
    log::info("net.listening", {{"listener", o.name}, {"address", o.bind_address}, {"port", st.port()}});
    asio::post(st.acceptor.get_executor(), [self = impl_] { self->do_accept(); });
    return {};
}

void tcp_listener::close() {
    if (impl_->closed.exchange(true)) return;
    auto close_now = [self = impl_] {
        boost::system::error_code ignored;
        self->acceptor.close(ignored);
        self->retry.cancel();
    };
    // A stopped context runs nothing posted to it: close here (no handler of it is running).
    if (impl_->ioc.stopped()) close_now();
    else asio::post(impl_->acceptor.get_executor(), std::move(close_now));
}

unsigned short tcp_listener::port() const noexcept { return impl_->port(); }

}  // namespace twinhub::net
