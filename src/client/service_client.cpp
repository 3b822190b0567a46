// service_client (include/twinhub/service_client.hpp): one AMQP connection driven by Proton's
// sans-I/O connection_driver over the SDK's own TLS transport (the same CA and host-name checks as
// the REST and MQTT clients), on a private I/O thread. Proton objects live on that thread only;
// public calls post a start function to it and wait for its one completion (or their timeout).
#include "twinhub/service_client.hpp"

#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "client/hub_error.hpp"
#include "client/service_json.hpp"
#include "client/tls_context.hpp"
#include "client/transport.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"

#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/delivery.h>
#include <proton/delivery.hpp>
#include <proton/disposition.h>
#include <proton/error_condition.hpp>
#include <proton/io/connection_driver.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/scalar.hpp>
#include <proton/sender.hpp>
#include <proton/sender_options.hpp>
#include <proton/session.hpp>
#include <proton/timestamp.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <thread>

namespace twinhub {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::uint16_t default_amqp_port = 5671;
// A feedback batch the hub locked for us is held locally at most this long before it is handed out;
// older ones are released (the hub's lock is 60 s), so the hub's copy is the one that counts.
constexpr auto feedback_hold = std::chrono::seconds(30);

// proton::tracker keeps its pn_delivery_t protected; the rejection's error condition needs the C API.
struct raw_tracker : proton::tracker {
    static pn_delivery_t* of(const proton::tracker& t) { return static_cast<const raw_tracker&>(t).pn_object(); }
};

std::string tag_key(const proton::binary& tag) { return std::string(tag.begin(), tag.end()); }

std::string body_bytes(const proton::message& m) {
    const proton::value& v = m.body();
    switch (v.type()) {
    case proton::BINARY: {
        auto b = proton::get<proton::binary>(v);
        return std::string(b.begin(), b.end());
    }
    case proton::STRING: return proton::get<std::string>(v);
    case proton::SYMBOL: return proton::get<proton::symbol>(v);
    default: return {};
    }
}

int int_property(const proton::message& m, const std::string& key) {
    if (!m.properties().exists(key)) return -1;
    proton::scalar v = m.properties().get(key);
    try {
        switch (v.type()) {
        case proton::INT: return proton::get<std::int32_t>(v);
        case proton::LONG: return static_cast<int>(proton::get<std::int64_t>(v));
        case proton::UINT: return static_cast<int>(proton::get<std::uint32_t>(v));
        case proton::SHORT: return proton::get<std::int16_t>(v);
        case proton::STRING: return std::stoi(proton::get<std::string>(v));
        default: return -1;
        }
    } catch (...) {
        return -1;
    }
}

std::string string_property(const proton::message& m, const std::string& key) {
    if (!m.properties().exists(key)) return {};
    proton::scalar v = m.properties().get(key);
    if (v.type() == proton::STRING) return proton::get<std::string>(v);
    return {};
}

error connection_lost(std::string what) { return {errc::connection_failed, std::move(what)}; }

}  // namespace

struct service_client::impl final : proton::messaging_handler {
    // Declared first so that it is destroyed last (coroutine frames die in its destructor).
    asio::io_context ioc{1};

    std::string host;  // HostName without a port: dialled, the TLS name, the CBS audience
    std::uint16_t port = default_amqp_port;
    std::string key_name;
    std::string key;
    service_options options;
    std::shared_ptr<asio::ssl::context> tls;

    // ---- I/O-thread state ----
    enum class phase { idle, opening, ready, closing };
    phase state = phase::idle;
    std::uint64_t generation = 0;  // bumps when a connection is torn down
    std::shared_ptr<client::transport> transport;
    std::unique_ptr<proton::io::connection_driver> driver;
    std::optional<proton::session> session;
    std::optional<proton::sender> cbs_tx, c2d_tx;
    std::optional<proton::receiver> cbs_rx, fb_rx;
    std::map<std::string, bool> cbs_pending;  // put-token message ids -> is it the first one
    std::optional<error> failure;              // set inside handlers; acted on after dispatch
    std::vector<std::function<void(result<void>)>> connect_waiters;
    std::vector<std::function<void()>> close_waiters;

    struct outgoing {
        proton::message message;
        bool module_target = false;
        std::function<void(result<void>)> done;
    };
    std::deque<outgoing> outbox;  // waiting for link credit
    struct in_flight {
        bool module_target = false;
        std::function<void(result<void>)> done;
    };
    std::map<std::string, in_flight> sent;  // by delivery tag

    struct held_batch {
        proton::delivery delivery;
        std::string body;
        steady::time_point arrived;
    };
    std::deque<held_batch> feedback;
    std::function<void(result<void>)> feedback_waiter;  // told when a batch arrived or the link failed

    std::atomic<bool> connected_flag{false};
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    std::thread io_thread;

    impl() { io_thread = std::thread([this] { ioc.run(); }); }

    ~impl() override {
        if (!io_thread.joinable()) return;
        close_sync();
        work.reset();
        ioc.stop();
        io_thread.join();
    }

    // Runs `start(done)` on the I/O thread and waits for the first call of done, or `timeout`.
    template <class T, class Start>
    result<T> call(Start start, std::chrono::milliseconds timeout, std::string timeout_message) {
        if (std::this_thread::get_id() == io_thread.get_id())
            return error{errc::internal, "twinhub service_client: blocking call on its own I/O thread"};
        auto p = std::make_shared<std::promise<result<T>>>();
        auto fut = p->get_future();
        asio::post(ioc, [this, p, start = std::move(start), timeout, timeout_message = std::move(timeout_message)]() mutable {
            auto fired = std::make_shared<bool>(false);
            auto timer = std::make_shared<asio::steady_timer>(ioc, timeout);
            std::function<void(result<T>)> done = [p, fired, timer](result<T> r) {
                if (*fired) return;
                *fired = true;
                timer->cancel();
                p->set_value(std::move(r));
            };
            timer->async_wait([done, timeout_message](boost::system::error_code ec) {
                if (!ec) done(error{errc::gateway_timeout, timeout_message});
            });
            try {
                start(done);
            } catch (const std::exception& e) {
                done(error{errc::internal, std::string("twinhub service_client: ") + e.what()});
            }
        });
        return fut.get();
    }

    void close_sync() {
        auto p = std::make_shared<std::promise<void>>();
        auto fut = p->get_future();
        asio::post(ioc, [this, p] { begin_close([p] { p->set_value(); }); });
        fut.get();
    }

    // ---- connecting ----
    result<std::string> sas_token() const {
        auto expiry = auth::to_unix_seconds(now()) + options.sas_token_ttl.count();
        return auth::generate_sas_token(host, key, expiry, key_name);
    }

    void open(std::function<void(result<void>)> done) {
        if (state == phase::ready) return done(result<void>{});
        connect_waiters.push_back(std::move(done));
        if (state == phase::opening) return;
        if (state == phase::closing) return;  // begin_close finishes, then the waiters get an error
        state = phase::opening;
        auto gen = generation;
        transport = client::make_tls_transport(ioc.get_executor(), tls);
        asio::co_spawn(ioc, establish(transport, gen), asio::detached);
    }

    asio::awaitable<void> establish(std::shared_ptr<client::transport> t, std::uint64_t gen) {
        auto opened = co_await t->open(host, port, options.timeout);
        if (gen != generation) co_return;
        if (!opened) {
            teardown(opened.error());
            co_return;
        }
        driver = std::make_unique<proton::io::connection_driver>("twinhub-cpp-" + random_hex(8));
        proton::connection_options o;
        o.handler(*this);
        o.virtual_host(host);
        o.sasl_enabled(true);
        o.sasl_allowed_mechs("ANONYMOUS");
        o.max_frame_size(64 * 1024);
        o.idle_timeout(proton::duration(120'000));
        driver->connect(o);
        pump();
        if (gen != generation) co_return;
        asio::co_spawn(ioc, read_loop(t, gen), asio::detached);
        asio::co_spawn(ioc, tick_loop(gen), asio::detached);
        asio::co_spawn(ioc, renewal_loop(gen), asio::detached);
    }

    asio::awaitable<void> read_loop(std::shared_ptr<client::transport> t, std::uint64_t gen) {
        std::vector<char> buf(16 * 1024);
        for (;;) {
            auto [ec, n] = co_await t->read_some(asio::buffer(buf.data(), buf.size()));
            if (gen != generation || !driver) co_return;
            if (ec) {
                if (!failure) failure = connection_lost("the connection to the hub was lost: " + ec.message());
                driver->read_close();
                pump();
                co_return;
            }
            const char* p = buf.data();
            while (n > 0 && driver) {
                auto b = driver->read_buffer();
                if (b.size == 0) break;  // the driver stopped reading (closing)
                std::size_t k = std::min(b.size, n);
                std::memcpy(b.data, p, k);
                driver->read_done(k);
                p += k;
                n -= k;
            }
            pump();
        }
    }

    // Proton's idle-timeout bookkeeping: heartbeats out, and a dead peer detected.
    asio::awaitable<void> tick_loop(std::uint64_t gen) {
        asio::steady_timer timer(ioc);
        while (gen == generation && driver) {
            timer.expires_after(std::chrono::seconds(1));
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (gen != generation || !driver) co_return;
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch()).count();
            driver->tick(proton::timestamp(ms));
            pump();
        }
    }

    // Puts a fresh token on $cbs before the current one expires (spec iothub-amqp 2.3).
    asio::awaitable<void> renewal_loop(std::uint64_t gen) {
        asio::steady_timer timer(ioc);
        auto every = std::max<std::chrono::seconds>(std::chrono::seconds(1), options.sas_token_ttl * 4 / 5);
        for (;;) {
            timer.expires_after(every);
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (gen != generation || !driver) co_return;
            if (state != phase::ready || !cbs_tx) continue;
            put_token(false);
            pump();
        }
    }

    // Runs the driver's events, writes what it produced, then acts on what the handlers decided.
    void pump() {
        if (!driver) return;
        bool alive = driver->dispatch();
        for (;;) {
            auto wb = driver->write_buffer();
            if (wb.size == 0) break;
            transport->send(std::string(wb.data, wb.size));
            driver->write_done(wb.size);
        }
        if (failure) {
            auto e = std::move(*failure);
            failure.reset();
            return teardown(std::move(e));
        }
        if (state == phase::opening && c2d_tx && c2d_tx->active()) {
            state = phase::ready;
            connected_flag = true;
            auto w = std::move(connect_waiters);
            connect_waiters.clear();
            for (auto& f : w) f(result<void>{});
            flush_outbox();
            if (!driver) return;
            alive = driver->dispatch() || alive;
            for (auto wb = driver->write_buffer(); wb.size; wb = driver->write_buffer()) {
                transport->send(std::string(wb.data, wb.size));
                driver->write_done(wb.size);
            }
        }
        if (!alive) teardown(connection_lost("the hub closed the AMQP connection"));
    }

    // Ends the connection: every waiter gets `why`. Runs outside dispatch only.
    void teardown(error why) {
        ++generation;
        state = phase::idle;
        connected_flag = false;
        session.reset();
        cbs_tx.reset();
        c2d_tx.reset();
        cbs_rx.reset();
        fb_rx.reset();
        cbs_pending.clear();
        feedback.clear();
        if (transport) transport->close();
        driver.reset();  // after the handles into it
        transport.reset();
        auto waiters = std::move(connect_waiters);
        connect_waiters.clear();
        for (auto& f : waiters) f(why);
        auto out = std::move(outbox);
        outbox.clear();
        for (auto& o : out) o.done(why);
        auto fl = std::move(sent);
        sent.clear();
        error unsure = why;
        if (why.code == errc::connection_failed)
            unsure.message += " (before the hub settled the message: it may or may not have been queued)";
        for (auto& [_, s] : fl) s.done(unsure);
        if (auto w = std::move(feedback_waiter)) {
            feedback_waiter = nullptr;
            w(why);
        }
        auto cw = std::move(close_waiters);
        close_waiters.clear();
        for (auto& f : cw) f();
    }

    void begin_close(std::function<void()> done) {
        if (state == phase::idle || !driver) {
            if (state != phase::idle) teardown(connection_lost("the connection was closed by the application"));
            return done();
        }
        close_waiters.push_back(std::move(done));
        if (state == phase::closing) return;
        state = phase::closing;
        connected_flag = false;
        driver->connection().close();
        pump();
        // Wait briefly for the hub's close, then drop the socket regardless.
        auto gen = generation;
        auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(2));
        timer->async_wait([this, gen, timer](boost::system::error_code) {
            if (gen == generation) teardown(connection_lost("the connection was closed by the application"));
        });
    }

    // ---- CBS ----
    void put_token(bool first) {
        auto token = sas_token();
        if (!token) {
            if (!failure) failure = token.error();
            return;
        }
        proton::message m;
        const std::string id = random_hex(16);
        m.id(proton::message_id(id));
        m.to("$cbs");
        m.reply_to("cbs");
        m.properties().put("operation", std::string("put-token"));
        m.properties().put("type", std::string("servicebus.windows.net:sastoken"));
        m.properties().put("name", host);
        m.body(*token);  // an AMQP string value, not a data section (spec iothub-amqp 2.2)
        cbs_pending[id] = first;
        cbs_tx->send(m);
        std::fill(token->begin(), token->end(), '\0');
    }

    // ---- proton events (inside dispatch) ----
    void on_connection_open(proton::connection& c) override {
        session = c.open_session();
        cbs_tx = session->open_sender("$cbs");
        cbs_rx = session->open_receiver("$cbs", proton::receiver_options().credit_window(10));
    }

    void on_session_open(proton::session&) override {}
    void on_receiver_open(proton::receiver&) override {}
    void on_sender_open(proton::sender&) override {}

    void on_sendable(proton::sender& s) override {
        if (cbs_tx && s.name() == cbs_tx->name()) {
            if (state == phase::opening && cbs_pending.empty() && !c2d_tx) put_token(true);
            return;
        }
        if (c2d_tx && s.name() == c2d_tx->name()) flush_outbox();
    }

    void on_message(proton::delivery& d, proton::message& m) override {
        const std::string link = d.receiver().name();
        if (cbs_rx && link == cbs_rx->name()) {
            d.accept();
            std::string cid;
            if (m.correlation_id().type() == proton::STRING) cid = proton::get<std::string>(m.correlation_id());
            auto it = cbs_pending.find(cid);
            if (it == cbs_pending.end()) return;
            const bool first = it->second;
            cbs_pending.erase(it);
            const int status = int_property(m, "status-code");
            if (status != 200) {
                std::string why = string_property(m, "status-description");
                if (!failure)
                    failure = error{errc::unauthorized, "the hub refused the SAS token (CBS status " + std::to_string(status) +
                                                            (why.empty() ? std::string(")") : "): " + why)};
                return;
            }
            if (first && !c2d_tx) c2d_tx = session->open_sender("/messages/devicebound");
            return;
        }
        if (fb_rx && link == fb_rx->name()) {
            feedback.push_back(held_batch{d, body_bytes(m), steady::now()});
            if (auto w = std::move(feedback_waiter)) {
                feedback_waiter = nullptr;
                w(result<void>{});
            }
            return;
        }
        d.reject();
    }

    void on_tracker_accept(proton::tracker& t) override { settle(t, std::nullopt); }
    void on_tracker_reject(proton::tracker& t) override {
        pn_condition_t* c = pn_disposition_condition(pn_delivery_remote(raw_tracker::of(t)));
        const char* name = c ? pn_condition_get_name(c) : nullptr;
        const char* desc = c ? pn_condition_get_description(c) : nullptr;
        settle(t, std::pair<std::string, std::string>{name ? name : "", desc ? desc : ""});
    }
    void on_tracker_release(proton::tracker& t) override {
        settle(t, std::pair<std::string, std::string>{"released", "the hub released the message without queuing it"});
    }
    void on_tracker_settle(proton::tracker& t) override {
        settle(t, std::pair<std::string, std::string>{"settled", "the hub settled the message without an outcome"});
    }

    void settle(proton::tracker& t, std::optional<std::pair<std::string, std::string>> rejected) {
        auto it = sent.find(tag_key(t.tag()));
        if (it == sent.end()) return;
        auto s = std::move(it->second);
        sent.erase(it);
        if (!rejected) return s.done(result<void>{});
        const auto& [condition, description] = *rejected;
        errc code = condition == "released" || condition == "settled"
                        ? errc::internal
                        : client::errc_from_amqp_condition(condition, description, s.module_target);
        std::string msg = description.empty() ? "the hub rejected the message (" + condition + ")" : description;
        s.done(error{code, std::move(msg)});
    }

    error condition_error(const proton::error_condition& c, std::string_view what, bool module_target = false) {
        if (!c) return connection_lost(std::string(what));
        errc code = client::errc_from_amqp_condition(c.name(), c.description(), module_target);
        std::string msg = c.description().empty() ? std::string(what) + " (" + c.name() + ")" : c.description();
        return {code, std::move(msg)};
    }

    void on_sender_error(proton::sender& s) override { link_error(s.name(), s.error()); }
    void on_receiver_error(proton::receiver& r) override { link_error(r.name(), r.error()); }
    void on_sender_close(proton::sender& s) override { link_error(s.name(), s.error()); }
    void on_receiver_close(proton::receiver& r) override { link_error(r.name(), r.error()); }

    void link_error(const std::string& name, const proton::error_condition& c) {
        if (fb_rx && name == fb_rx->name()) {
            fb_rx.reset();
            feedback.clear();
            if (auto w = std::move(feedback_waiter)) {
                feedback_waiter = nullptr;
                w(condition_error(c, "the hub closed the feedback link"));
            }
            return;
        }
        // $cbs or the C2D sender: the connection is of no use without them.
        if (state == phase::closing) return;
        if (!failure) failure = condition_error(c, "the hub closed the link '" + name + "'");
    }

    void on_session_error(proton::session& s) override {
        if (!failure && state != phase::closing) failure = condition_error(s.error(), "the hub ended the AMQP session");
    }
    void on_connection_error(proton::connection& c) override {
        if (!failure && state != phase::closing) failure = condition_error(c.error(), "the hub closed the AMQP connection");
    }
    void on_connection_close(proton::connection&) override {}
    void on_transport_error(proton::transport& t) override {
        if (!failure && state != phase::closing) {
            auto c = t.error();
            failure = c.name() == "amqp:unauthorized-access"
                          ? error{errc::unauthorized, c.description()}
                          : connection_lost("AMQP connection to " + host + ":" + std::to_string(port) + " failed: " + c.what());
        }
    }
    void on_transport_close(proton::transport&) override {
        if (!failure) failure = connection_lost("the AMQP connection was closed");
    }
    void on_error(const proton::error_condition& c) override {
        if (!failure && state != phase::closing) failure = condition_error(c, "AMQP error");
    }

    // ---- C2D ----
    void flush_outbox() {
        while (c2d_tx && c2d_tx->active() && c2d_tx->credit() > 0 && !outbox.empty()) {
            auto o = std::move(outbox.front());
            outbox.pop_front();
            proton::tracker t = c2d_tx->send(o.message);
            sent[tag_key(t.tag())] = in_flight{o.module_target, std::move(o.done)};
        }
    }

    void send(proton::message m, bool module_target, std::function<void(result<void>)> done) {
        open([this, m = std::move(m), module_target, done](result<void> r) mutable {
            if (!r) return done(r.error());
            if (state != phase::ready) return done(connection_lost("the connection to the hub was lost"));
            outbox.push_back(outgoing{std::move(m), module_target, std::move(done)});
            flush_outbox();
            pump();
        });
    }

    // ---- feedback ----
    // `live` turns false when the caller stopped waiting: a batch is then kept for the next call.
    void receive_feedback(std::chrono::milliseconds timeout,
                          std::function<void(result<std::vector<feedback_record>>)> done) {
        auto live = std::make_shared<bool>(true);
        auto timer = std::make_shared<asio::steady_timer>(ioc, timeout);
        timer->async_wait([this, live, done, timer](boost::system::error_code) {
            if (!*live) return;
            *live = false;
            feedback_waiter = nullptr;
            done(std::vector<feedback_record>{});
        });
        auto wrapped = [live, timer, done](result<std::vector<feedback_record>> r) {
            if (!*live) return;
            *live = false;
            timer->cancel();
            done(std::move(r));
        };
        open([this, live, wrapped](result<void> r) {
            if (!*live) return;
            if (!r) return wrapped(r.error());
            if (state != phase::ready) return wrapped(connection_lost("the connection to the hub was lost"));
            if (!fb_rx) {
                fb_rx = session->open_receiver("/messages/serviceBound/feedback",
                                               proton::receiver_options().auto_accept(false).credit_window(0));
            }
            take_feedback(live, wrapped);
        });
    }

    void take_feedback(std::shared_ptr<bool> live, std::function<void(result<std::vector<feedback_record>>)> done) {
        if (!*live) return;
        while (!feedback.empty() && steady::now() - feedback.front().arrived > feedback_hold) {
            feedback.front().delivery.release();
            feedback.pop_front();
        }
        if (!feedback.empty()) {
            auto b = std::move(feedback.front());
            feedback.pop_front();
            auto records = client::feedback_from_json(b.body);
            if (!records) b.delivery.reject();
            else b.delivery.accept();
            pump();
            if (!records) return done(records.error());
            return done(std::move(*records));
        }
        if (!fb_rx) return done(connection_lost("the feedback link is not open"));
        if (fb_rx->credit() == 0) fb_rx->add_credit(1);
        pump();
        feedback_waiter = [this, live, done](result<void> r) {
            if (!r) return done(r.error());
            // Called inside dispatch: settle and hand out after it.
            asio::post(ioc, [this, live, done] { take_feedback(live, done); });
        };
    }
};

service_client::service_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
service_client::service_client(service_client&&) noexcept = default;
service_client& service_client::operator=(service_client&&) noexcept = default;
service_client::~service_client() = default;

result<service_client> service_client::from_connection_string(std::string_view connection_string,
                                                              service_options options) {
    auto cs = auth::parse_connection_string(connection_string);
    if (!cs) return cs.error();
    if (cs->kind != auth::connection_string_kind::service)
        return error{errc::invalid_argument,
                     "a service connection string (HostName, SharedAccessKeyName, SharedAccessKey) is needed; "
                     "this one names a device"};
    if (!base64_decode(cs->key))
        return error{errc::invalid_argument, "SharedAccessKey of the connection string is not base64"};
    if (options.sas_token_ttl.count() <= 0) return error{errc::invalid_argument, "sas_token_ttl must be positive"};
    auto tls = client::make_tls_context(options.tls);
    if (!tls) return tls.error();
    auto p = std::make_unique<impl>();
    p->host = cs->host_name;
    // A REST port in HostName ("host:8443") is not the AMQP port.
    if (auto colon = p->host.rfind(':'); colon != std::string::npos && p->host.find(']') == std::string::npos)
        p->host.resize(colon);
    p->port = options.amqp_port ? options.amqp_port : default_amqp_port;
    p->key_name = cs->key_name;
    p->key = cs->key;
    p->tls = std::move(*tls);
    p->options = std::move(options);
    return service_client(std::move(p));
}

result<void> service_client::connect() {
    auto* m = impl_.get();
    return m->call<void>([m](std::function<void(result<void>)> done) { m->open(std::move(done)); }, m->options.timeout,
                         "the hub did not complete the AMQP connection in time");
}

void service_client::close() { impl_->close_sync(); }

bool service_client::connected() const { return impl_->connected_flag; }

const std::string& service_client::host_name() const { return impl_->host; }

result<void> service_client::send(std::string_view device_id, const c2d_message& message) {
    return send(device_id, {}, message);
}

result<void> service_client::send(std::string_view device_id, std::string_view module_id, const c2d_message& message) {
    if (device_id.empty()) return error{errc::invalid_argument, "a device id is needed"};
    std::string to = "/devices/" + percent_encode(device_id);
    if (!module_id.empty()) to += "/modules/" + percent_encode(module_id);
    to += "/messages/devicebound";
    auto* m = impl_.get();
    const bool module_target = !module_id.empty();
    return m->call<void>(
        [m, to, module_target, message](std::function<void(result<void>)> done) {
            proton::message pm;
            pm.to(to);
            pm.body(proton::binary(message.body.begin(), message.body.end()));
            pm.inferred(true);  // one data section
            if (!message.message_id.empty()) pm.id(proton::message_id(message.message_id));
            if (!message.correlation_id.empty()) pm.correlation_id(proton::message_id(message.correlation_id));
            if (!message.content_type.empty()) pm.content_type(message.content_type);
            if (!message.content_encoding.empty()) pm.content_encoding(message.content_encoding);
            if (message.expiry_time) {
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(message.expiry_time->time_since_epoch());
                pm.expiry_time(proton::timestamp(ms.count()));
            }
            for (const auto& [k, v] : message.properties) pm.properties().put(k, v);
            if (message.ack != c2d_ack::none) pm.properties().put("iothub-ack", std::string(to_string(message.ack)));
            m->send(std::move(pm), module_target, std::move(done));
        },
        m->options.timeout, "the hub did not settle the message in time");
}

result<std::vector<feedback_record>> service_client::receive_feedback(std::chrono::milliseconds timeout) {
    auto* m = impl_.get();
    using out = std::vector<feedback_record>;
    // The wait for a batch is `timeout`; connecting first may take up to options.timeout on top.
    auto connected = connect();
    if (!connected) return connected.error();
    // The generic deadline only backs up receive_feedback's own (which answers "none" at `timeout`).
    return m->call<out>(
        [m, timeout](std::function<void(result<out>)> done) { m->receive_feedback(timeout, std::move(done)); },
        timeout + m->options.timeout, "the hub did not answer the feedback receive in time");
}

}  // namespace twinhub
