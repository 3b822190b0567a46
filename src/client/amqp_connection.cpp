// amqp_connection (amqp_connection.hpp): Proton's connection_driver fed from the SDK's TLS
// transport on one I/O thread, CBS authentication and renewal, and the connection's lifetime.
#include "client/amqp_connection.hpp"

#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "client/hub_error.hpp"
#include "client/tls_context.hpp"
#include "client/transport.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"

#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/delivery.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/receiver_options.hpp>
#include <proton/scalar.hpp>
#include <proton/timestamp.hpp>
#include <proton/transport.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstring>

namespace twinhub::client {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

result<amqp_settings> amqp_settings_from(std::string_view connection_string, service_options options, std::string who) {
    auto cs = auth::parse_connection_string(connection_string);
    if (!cs) return cs.error();
    if (cs->kind != auth::connection_string_kind::service)
        return error{errc::invalid_argument,
                     "a service connection string (HostName, SharedAccessKeyName, SharedAccessKey) is needed; "
                     "this one names a device"};
    if (!base64_decode(cs->key))
        return error{errc::invalid_argument, "SharedAccessKey of the connection string is not base64"};
    if (options.sas_token_ttl.count() <= 0) return error{errc::invalid_argument, "sas_token_ttl must be positive"};
    auto tls = make_tls_context(options.tls);
    if (!tls) return tls.error();
    amqp_settings s;
    s.host = cs->host_name;
    // A REST port in HostName ("host:8443") is not the AMQP port.
    if (auto colon = s.host.rfind(':'); colon != std::string::npos && s.host.find(']') == std::string::npos)
        s.host.resize(colon);
    s.port = options.amqp_port ? options.amqp_port : 5671;
    s.key_name = cs->key_name;
    s.key = cs->key;
    s.tls = std::move(*tls);
    s.options = std::move(options);
    s.who = std::move(who);
    return s;
}

amqp_connection::amqp_connection(amqp_settings s) : s_(std::move(s)) {
    io_thread_ = std::thread([this] { ioc.run(); });
}

amqp_connection::~amqp_connection() {
    stop();
}

void amqp_connection::stop() {
    if (!io_thread_.joinable()) return;
    close_sync();
    work_.reset();
    ioc.stop();
    io_thread_.join();
}

void amqp_connection::close_sync() {
    auto p = std::make_shared<std::promise<void>>();
    auto fut = p->get_future();
    asio::post(ioc, [this, p] { begin_close([p] { p->set_value(); }); });
    fut.get();
}

// ---- connecting ----

void amqp_connection::open(std::function<void(result<void>)> done) {
    if (state_ == phase::ready) return done(result<void>{});
    connect_waiters_.push_back(std::move(done));
    if (state_ == phase::opening) return;
    if (state_ == phase::closing) return;  // begin_close finishes, then the waiters get an error
    state_ = phase::opening;
    auto gen = generation_;
    transport_ = make_tls_transport(ioc.get_executor(), s_.tls);
    asio::co_spawn(ioc, establish(transport_, gen), asio::detached);
}

asio::awaitable<void> amqp_connection::establish(std::shared_ptr<transport> t, std::uint64_t gen) {
    auto opened = co_await t->open(s_.host, s_.port, s_.options.timeout);
    if (gen != generation_) co_return;
    if (!opened) {
        teardown(opened.error());
        co_return;
    }
    driver_ = std::make_unique<proton::io::connection_driver>("twinhub-cpp-" + random_hex(8));
    proton::connection_options o;
    o.handler(*this);
    o.virtual_host(s_.host);
    o.sasl_enabled(true);
    o.sasl_allowed_mechs("ANONYMOUS");
    o.max_frame_size(64 * 1024);
    o.idle_timeout(proton::duration(120'000));
    driver_->connect(o);
    pump();
    if (gen != generation_) co_return;
    asio::co_spawn(ioc, read_loop(t, gen), asio::detached);
    asio::co_spawn(ioc, tick_loop(gen), asio::detached);
    asio::co_spawn(ioc, renewal_loop(gen), asio::detached);
}

asio::awaitable<void> amqp_connection::read_loop(std::shared_ptr<transport> t, std::uint64_t gen) {
    std::vector<char> buf(16 * 1024);
    for (;;) {
        auto [ec, n] = co_await t->read_some(asio::buffer(buf.data(), buf.size()));
        if (gen != generation_ || !driver_) co_return;
        if (ec) {
            if (!failure_) failure_ = connection_lost("the connection to the hub was lost: " + ec.message());
            driver_->read_close();
            pump();
            co_return;
        }
        const char* p = buf.data();
        while (n > 0 && driver_) {
            auto b = driver_->read_buffer();
            if (b.size == 0) break;  // the driver stopped reading (closing)
            std::size_t k = std::min(b.size, n);
            std::memcpy(b.data, p, k);
            driver_->read_done(k);
            p += k;
            n -= k;
        }
        pump();
    }
}

// Proton's idle-timeout bookkeeping: heartbeats out, and a dead peer detected.
asio::awaitable<void> amqp_connection::tick_loop(std::uint64_t gen) {
    asio::steady_timer timer(ioc);
    while (gen == generation_ && driver_) {
        timer.expires_after(std::chrono::seconds(1));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (gen != generation_ || !driver_) co_return;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch()).count();
        driver_->tick(proton::timestamp(ms));
        pump();
    }
}

// Puts a fresh token on $cbs before the current one expires (spec iothub-amqp 2.3).
asio::awaitable<void> amqp_connection::renewal_loop(std::uint64_t gen) {
    asio::steady_timer timer(ioc);
    auto every = std::max<std::chrono::seconds>(std::chrono::seconds(1), s_.options.sas_token_ttl * 4 / 5);
    for (;;) {
        timer.expires_after(every);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (gen != generation_ || !driver_) co_return;
        if (state_ != phase::ready || !cbs_tx_) continue;
        put_token(false);
        pump();
    }
}

void amqp_connection::write_out() {
    for (auto wb = driver_->write_buffer(); wb.size; wb = driver_->write_buffer()) {
        transport_->send(std::string(wb.data, wb.size));
        driver_->write_done(wb.size);
    }
}

void amqp_connection::pump() {
    if (!driver_) return;
    bool alive = driver_->dispatch();
    write_out();
    if (failure_) {
        auto e = std::move(*failure_);
        failure_.reset();
        return teardown(std::move(e));
    }
    if (state_ == phase::opening && authorized_ && links_ready()) {
        state_ = phase::ready;
        connected_flag_ = true;
        auto w = std::move(connect_waiters_);
        connect_waiters_.clear();
        for (auto& f : w) f(result<void>{});
        on_ready();
        if (!driver_) return;
        alive = driver_->dispatch() || alive;
        write_out();
    }
    if (!alive) teardown(connection_lost("the hub closed the AMQP connection"));
}

// Ends the connection: every waiter gets `why`. Runs outside dispatch only.
void amqp_connection::teardown(error why) {
    ++generation_;
    state_ = phase::idle;
    connected_flag_ = false;
    authorized_ = false;
    reset_links();
    session_.reset();
    cbs_tx_.reset();
    cbs_rx_.reset();
    cbs_pending_.clear();
    if (transport_) transport_->close();
    driver_.reset();  // after the handles into it
    transport_.reset();
    auto waiters = std::move(connect_waiters_);
    connect_waiters_.clear();
    for (auto& f : waiters) f(why);
    on_teardown(why);
    auto cw = std::move(close_waiters_);
    close_waiters_.clear();
    for (auto& f : cw) f();
}

void amqp_connection::begin_close(std::function<void()> done) {
    if (state_ == phase::idle || !driver_) {
        if (state_ != phase::idle) teardown(connection_lost("the connection was closed by the application"));
        return done();
    }
    close_waiters_.push_back(std::move(done));
    if (state_ == phase::closing) return;
    state_ = phase::closing;
    connected_flag_ = false;
    driver_->connection().close();
    pump();
    // Wait briefly for the hub's close, then drop the socket regardless.
    auto gen = generation_;
    auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(2));
    timer->async_wait([this, gen, timer](boost::system::error_code) {
        if (gen == generation_) teardown(connection_lost("the connection was closed by the application"));
    });
}

// ---- CBS ----

void amqp_connection::put_token(bool first) {
    auto expiry = auth::to_unix_seconds(now()) + s_.options.sas_token_ttl.count();
    auto token = auth::generate_sas_token(s_.host, s_.key, expiry, s_.key_name);
    if (!token) {
        if (!failure_) failure_ = token.error();
        return;
    }
    proton::message m;
    const std::string id = random_hex(16);
    m.id(proton::message_id(id));
    m.to("$cbs");
    m.reply_to("cbs");
    m.properties().put("operation", std::string("put-token"));
    m.properties().put("type", std::string("servicebus.windows.net:sastoken"));
    m.properties().put("name", s_.host);
    m.body(*token);  // an AMQP string value, not a data section (spec iothub-amqp 2.2)
    cbs_pending_[id] = first;
    cbs_tx_->send(m);
    std::fill(token->begin(), token->end(), '\0');
}

// ---- proton events (inside dispatch) ----

void amqp_connection::on_connection_open(proton::connection& c) {
    session_ = c.open_session();
    cbs_tx_ = session_->open_sender("$cbs");
    cbs_rx_ = session_->open_receiver("$cbs", proton::receiver_options().credit_window(10));
}

void amqp_connection::on_sendable(proton::sender& s) {
    if (cbs_tx_ && s.name() == cbs_tx_->name()) {
        if (state_ == phase::opening && cbs_pending_.empty() && !authorized_) put_token(true);
        return;
    }
    on_link_sendable(s);
}

void amqp_connection::on_message(proton::delivery& d, proton::message& m) {
    if (cbs_rx_ && d.receiver().name() == cbs_rx_->name()) {
        d.accept();
        std::string cid;
        if (m.correlation_id().type() == proton::STRING) cid = proton::get<std::string>(m.correlation_id());
        auto it = cbs_pending_.find(cid);
        if (it == cbs_pending_.end()) return;
        const bool first = it->second;
        cbs_pending_.erase(it);
        const int status = int_property(m, "status-code");
        if (status != 200) {
            std::string why = string_property(m, "status-description");
            if (!failure_)
                failure_ =
                    error{errc::unauthorized, "the hub refused the SAS token (CBS status " + std::to_string(status) +
                                                  (why.empty() ? std::string(")") : "): " + why)};
            return;
        }
        if (first && !authorized_) {
            authorized_ = true;
            on_authorized();
        }
        return;
    }
    if (!on_link_message(d, m)) d.reject();
}

error amqp_connection::condition_error(const proton::error_condition& c, std::string_view what, bool module_target) {
    if (!c) return connection_lost(std::string(what));
    errc code = errc_from_amqp_condition(c.name(), c.description(), module_target);
    std::string msg = c.description().empty() ? std::string(what) + " (" + c.name() + ")" : c.description();
    return {code, std::move(msg)};
}

void amqp_connection::on_sender_error(proton::sender& s) {
    link_closed(s.name(), s.error());
}
void amqp_connection::on_receiver_error(proton::receiver& r) {
    link_closed(r.name(), r.error());
}
void amqp_connection::on_sender_close(proton::sender& s) {
    link_closed(s.name(), s.error());
}
void amqp_connection::on_receiver_close(proton::receiver& r) {
    link_closed(r.name(), r.error());
}

void amqp_connection::link_closed(const std::string& name, const proton::error_condition& c) {
    if (state_ == phase::closing) return;
    const bool cbs = (cbs_tx_ && name == cbs_tx_->name()) || (cbs_rx_ && name == cbs_rx_->name());
    if (!cbs && on_link_closed(name, c)) return;
    // $cbs, or a link the client cannot do without: the connection is of no use.
    if (!failure_) failure_ = condition_error(c, "the hub closed the link '" + name + "'");
}

void amqp_connection::on_session_error(proton::session& s) {
    if (!failure_ && state_ != phase::closing) failure_ = condition_error(s.error(), "the hub ended the AMQP session");
}
void amqp_connection::on_connection_error(proton::connection& c) {
    if (!failure_ && state_ != phase::closing)
        failure_ = condition_error(c.error(), "the hub closed the AMQP connection");
}
void amqp_connection::on_transport_error(proton::transport& t) {
    if (!failure_ && state_ != phase::closing) {
        auto c = t.error();
        failure_ = c.name() == "amqp:unauthorized-access"
                       ? error{errc::unauthorized, c.description()}
                       : connection_lost("AMQP connection to " + s_.host + ":" + std::to_string(s_.port) +
                                         " failed: " + c.what());
    }
}
void amqp_connection::on_transport_close(proton::transport&) {
    if (!failure_) failure_ = connection_lost("the AMQP connection was closed");
}
void amqp_connection::on_error(const proton::error_condition& c) {
    if (!failure_ && state_ != phase::closing) failure_ = condition_error(c, "AMQP error");
}

}  // namespace twinhub::client
