#include "mqtt/mqtt_server.hpp"

#include "common/log.hpp"
#include "net/tcp_listener.hpp"
#include "mqtt/server_state.hpp"
#include "mqtt/session.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/serialize.hpp>

#include <csignal>

namespace twinhub::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// ---- registry ----

std::shared_ptr<session> mqtt_server::state::claim(const store::identity_key& id, const std::shared_ptr<session>& s) {
    std::lock_guard lock(mu_);
    auto& slot = by_identity_[id];
    auto old = slot.lock();
    slot = s;
    return old;
}

bool mqtt_server::state::release(const store::identity_key& id, const session* s) {
    std::lock_guard lock(mu_);
    auto it = by_identity_.find(id);
    if (it == by_identity_.end()) return false;
    auto cur = it->second.lock();
    if (cur && cur.get() != s) return false;
    by_identity_.erase(it);
    return cur.get() == s;
}

std::shared_ptr<session> mqtt_server::state::find(const store::identity_key& id) const {
    std::lock_guard lock(mu_);
    auto it = by_identity_.find(id);
    return it == by_identity_.end() ? nullptr : it->second.lock();
}

void mqtt_server::state::add_open(const std::shared_ptr<session>& s) {
    std::lock_guard lock(mu_);
    open_[s.get()] = s;
}

void mqtt_server::state::remove_open(const session* s) {
    std::lock_guard lock(mu_);
    open_.erase(s);
}

std::vector<std::shared_ptr<session>> mqtt_server::state::open_sessions() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<session>> v;
    v.reserve(open_.size());
    for (auto& [_, w] : open_)
        if (auto s = w.lock()) v.push_back(std::move(s));
    return v;
}

std::size_t mqtt_server::state::open_count() const {
    std::lock_guard lock(mu_);
    return open_.size();
}

// The hub's observer. hub_service cannot remove observers, so this small object outlives the
// server: it is kept in a static list (reachable, not leaked) and forgets the server on destruction.
class mqtt_server::observer final : public service::change_observer {
public:
    explicit observer(std::weak_ptr<mqtt_server::state> st) : st_(std::move(st)) {}

    void detach() {
        std::lock_guard lock(mu_);
        st_.reset();
    }

    // Runs on the store thread, in $version order per identity; posting to the session's strand
    // keeps that order.
    void on_desired_change(const store::identity_key& id, const twin::desired_change& change) override {
        auto st = lock();
        if (!st) return;
        auto s = st->find(id);
        if (!s) return;
        s->deliver_desired(std::make_shared<const std::string>(boost::json::serialize(change.patch)), change.version);
    }

    void on_identity_revoked(const store::identity_key& id) override {
        auto st = lock();
        if (!st) return;
        if (auto s = st->find(id)) s->close("identity disabled or deleted");
    }

    // O(1): only the identity's registered session can hold a token signed with its keys (a
    // session it replaced is closing already).
    void on_credentials_changed(const store::identity_key& id) override {
        auto st = lock();
        if (!st) return;
        st->credentials_epoch.fetch_add(1);
        if (auto s = st->find(id)) s->recheck_credentials();
    }

    // Rare (an operator's change): visits every open session, re-checks those with a policy token.
    void on_policies_changed() override {
        auto st = lock();
        if (!st) return;
        st->credentials_epoch.fetch_add(1);
        for (auto& s : st->open_sessions())
            if (s->uses_policy_token()) s->recheck_credentials();
    }

    // Rare as well: re-checks the sessions that authenticated with a client certificate.
    void on_certificates_changed() override {
        auto st = lock();
        if (!st) return;
        for (auto& s : st->open_sessions())
            if (s->uses_certificate()) s->recheck_credentials();
    }

private:
    std::shared_ptr<mqtt_server::state> lock() {
        std::lock_guard lock(mu_);
        return st_.lock();
    }
    std::mutex mu_;
    std::weak_ptr<mqtt_server::state> st_;
};

namespace {
std::mutex observers_mu;
std::vector<std::unique_ptr<mqtt_server::observer>>& observers() {
    static std::vector<std::unique_ptr<mqtt_server::observer>> v;
    return v;
}
}  // namespace

mqtt_server::mqtt_server(asio::io_context& ioc, asio::ssl::context& tls, service::hub_service& hub, mqtt_options opts)
    : state_(std::make_shared<state>(ioc, tls, hub, std::move(opts))) {
    // The 8883 transport lets OpenSSL write to the socket with write(2), which raises SIGPIPE when
    // the peer has gone; a server must get EPIPE instead of dying (Asio's own sends use MSG_NOSIGNAL).
    std::signal(SIGPIPE, SIG_IGN);
    auto obs = std::make_unique<observer>(state_);
    observer* raw = obs.get();
    {
        std::lock_guard lock(observers_mu);
        observers().push_back(std::move(obs));
    }
    hub.add_observer(raw);
    observer_ = raw;
}

mqtt_server::~mqtt_server() {
    stop();
    observer_->detach();
}

result<void> mqtt_server::start() {
    const auto& o = state_->opts;
    net::listener_options lo;
    lo.name = "mqtt";
    lo.protocol = "MQTT";
    lo.port_option = "--mqtt-port";
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
        std::make_shared<session>(net::make_openssl_transport(std::move(sock), st->tls), st)->start();
    };
    auto lst = std::make_unique<net::tcp_listener>(state_->ioc, std::move(lo), std::move(executor), std::move(on_socket));
    if (auto r = lst->start(); !r) return r;
    listener_ = std::move(lst);
    return {};
}

void mqtt_server::stop() {
    if (state_->stopped.exchange(true)) return;
    if (listener_) listener_->close();
    for (auto& s : state_->open_sessions()) s->close("server stopping");
}

unsigned short mqtt_server::port() const {
    return listener_ ? listener_->port() : state_->opts.port;
}

net::websocket_handler mqtt_server::websocket_handler() {
    return [st = state_](net::tls_stream&& stream, net::upgrade_request&& req) {
        if (st->stopped) return;
        std::make_shared<session>(net::make_websocket_transport(std::move(stream), std::move(req)), st)->start();
    };
}

void mqtt_server::set_method_response_handler(method_response_handler* h) { state_->methods.store(h); }
void mqtt_server::set_c2d_service(service::c2d_service* c2d) { state_->c2d.store(c2d); }

result<std::uint64_t> mqtt_server::send_method_request(const store::identity_key& id, method_request req) {
    auto s = state_->find(id);
    if (!s || !s->methods_subscribed())
        return error{errc::device_not_online, "The operation failed because the requested device isn't online or hasn't "
                                              "registered the direct method callback."};
    s->deliver_method(std::move(req));
    return s->connection_number();
}

std::size_t mqtt_server::session_count() const { return state_->open_count(); }

}  // namespace twinhub::mqtt
