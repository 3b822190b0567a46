#include "amqp/amqp_server.hpp"

#include "amqp/connection.hpp"
#include "common/log.hpp"
#include "net/tcp_listener.hpp"
#include "service/hub_service.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/serialize.hpp>

#include <csignal>

namespace twinhub::amqp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// ---- registry ----

void amqp_server::state::claim(const store::identity_key& id, const std::shared_ptr<connection>& c) {
    std::lock_guard l(mu_);
    by_identity_[id] = c;
}

void amqp_server::state::release(const store::identity_key& id, const connection* c) {
    std::lock_guard l(mu_);
    auto it = by_identity_.find(id);
    if (it == by_identity_.end()) return;
    auto cur = it->second.lock();
    if (!cur || cur.get() == c) by_identity_.erase(it);
}

std::shared_ptr<amqp_server::connection> amqp_server::state::find(const store::identity_key& id) const {
    std::lock_guard l(mu_);
    auto it = by_identity_.find(id);
    return it == by_identity_.end() ? nullptr : it->second.lock();
}

void amqp_server::state::add_open(const std::shared_ptr<connection>& c) {
    std::lock_guard l(mu_);
    open_[c.get()] = c;
}

void amqp_server::state::remove_open(const connection* c) {
    std::lock_guard l(mu_);
    open_.erase(c);
    readers_.erase(c);
}

void amqp_server::state::add_reader(const std::shared_ptr<connection>& c) {
    std::lock_guard l(mu_);
    readers_[c.get()] = c;
}

std::vector<std::shared_ptr<amqp_server::connection>> amqp_server::state::readers() const {
    std::lock_guard l(mu_);
    std::vector<std::shared_ptr<connection>> v;
    for (auto& [_, w] : readers_)
        if (auto c = w.lock()) v.push_back(std::move(c));
    return v;
}

std::vector<std::shared_ptr<amqp_server::connection>> amqp_server::state::open_connections() const {
    std::lock_guard l(mu_);
    std::vector<std::shared_ptr<connection>> v;
    for (auto& [_, w] : open_)
        if (auto c = w.lock()) v.push_back(std::move(c));
    return v;
}

// ---- hub observer ----

// hub_service cannot remove observers: this one outlives the server in a static list and forgets
// the server on destruction (as the MQTT head's does).
class amqp_server::observer final : public service::change_observer {
public:
    explicit observer(std::weak_ptr<state> st) : st_(std::move(st)) {}
    void detach() {
        std::lock_guard l(mu_);
        st_.reset();
    }
    void on_desired_change(const store::identity_key& id, const twin::desired_change& change) override {
        auto st = lock();
        if (!st) return;
        if (auto c = st->find(id)) c->deliver_desired(id, std::make_shared<const std::string>(boost::json::serialize(change.patch)));
    }
    void on_events_appended(std::uint32_t partition) override {
        auto st = lock();
        if (!st) return;
        for (auto& c : st->readers()) c->wake_readers(partition);
    }
    void on_identity_revoked(const store::identity_key& id) override {
        auto st = lock();
        if (!st) return;
        // The identity may hold a grant on a connection where no link is open yet.
        for (auto& c : st->open_connections()) c->revoke(id, "identity disabled or deleted");
    }

    void on_credentials_changed(const store::identity_key& id) override {
        auto st = lock();
        if (!st) return;
        for (auto& c : st->open_connections()) c->recheck_credentials(id);
    }
    void on_policies_changed() override {
        auto st = lock();
        if (!st) return;
        for (auto& c : st->open_connections()) c->recheck_credentials(std::nullopt);
    }
    // Every grant is re-checked; x509 ones against the verified CA certificates now.
    void on_certificates_changed() override { on_policies_changed(); }

private:
    std::shared_ptr<state> lock() {
        std::lock_guard l(mu_);
        return st_.lock();
    }
    std::mutex mu_;
    std::weak_ptr<state> st_;
};

namespace {
std::mutex observers_mu;
std::vector<std::unique_ptr<amqp_server::observer>>& observers() {
    static std::vector<std::unique_ptr<amqp_server::observer>> v;
    return v;
}

// The method router's channel into this head.
class channel final : public methods::method_channel {
public:
    explicit channel(std::shared_ptr<amqp_server::state> st) : st_(std::move(st)) {}
    result<std::uint64_t> deliver(const store::identity_key& id, methods::method_call call) override {
        auto c = st_->find(id);
        if (!c || !c->deliver_method(id, std::move(call)))
            return error{errc::device_not_online,
                         "The operation failed because the requested device isn't online or hasn't "
                         "registered the direct method callback."};
        return c->number();
    }

private:
    std::shared_ptr<amqp_server::state> st_;
};
}  // namespace

amqp_server::amqp_server(asio::io_context& ioc, asio::ssl::context& tls, service::hub_service& hub, amqp_options opts)
    : state_(std::make_shared<state>(ioc, tls, hub, std::move(opts))), channel_(std::make_unique<channel>(state_)) {
    std::signal(SIGPIPE, SIG_IGN);
    auto obs = std::make_unique<observer>(state_);
    observer* raw = obs.get();
    {
        std::lock_guard l(observers_mu);
        observers().push_back(std::move(obs));
    }
    hub.add_observer(raw);
    observer_ = raw;
}

amqp_server::~amqp_server() {
    stop();
    observer_->detach();
}

result<void> amqp_server::start() {
    const auto& o = state_->opts;
    net::listener_options lo;
    lo.name = "amqp";
    lo.protocol = "AMQP";
    lo.port_option = "--amqp-port";
    lo.bind_address = o.bind_address;
    lo.port = o.port;
    // A session context has one thread, which serializes the connection's handlers already; the
    // server's own context may have several, so its connections get a strand.
    auto executor = [st = state_]() -> asio::any_io_executor {
        if (st->opts.session_context) return st->opts.session_context().get_executor();
        return asio::make_strand(st->ioc);
    };
    auto on_socket = [st = state_](tcp::socket&& sock) {
        if (st->stopped) return;  // the socket closes here
        std::make_shared<connection>(net::make_openssl_transport(std::move(sock), st->tls), st)->start();
    };
    auto lst = std::make_unique<net::tcp_listener>(state_->ioc, std::move(lo), std::move(executor), std::move(on_socket));
    if (auto r = lst->start(); !r) return r;
    listener_ = std::move(lst);
    return {};
}

void amqp_server::stop() {
    if (state_->stopped.exchange(true)) return;
    if (listener_) listener_->close();
    for (auto& c : state_->open_connections()) c->close("amqp:connection:forced", "The hub is stopping.");
}

unsigned short amqp_server::port() const { return listener_ ? listener_->port() : state_->opts.port; }

net::websocket_handler amqp_server::websocket_handler() {
    return [st = state_](net::tls_stream&& stream, net::upgrade_request&& req) {
        if (st->stopped) return;
        std::make_shared<connection>(net::make_websocket_transport(std::move(stream), std::move(req), "AMQPWSB10"), st)
            ->start();
    };
}

methods::method_channel& amqp_server::method_channel() { return *channel_; }

void amqp_server::set_method_router(methods::method_router* router) { state_->router.store(router); }
void amqp_server::set_c2d_service(service::c2d_service* c2d) { state_->c2d.store(c2d); }
void amqp_server::set_telemetry_service(service::telemetry_service* t) { state_->telemetry.store(t); }
void amqp_server::set_file_upload_service(service::file_upload_service* f) { state_->files.store(f); }

}  // namespace twinhub::amqp
