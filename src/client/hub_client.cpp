#include "twinhub/hub_client.hpp"
#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"

#include "auth/connection_string.hpp"

#include "auth/sas_token.hpp"
#include "client/hub_client_impl.hpp"
#include "client/hub_error.hpp"
#include "client/tls_context.hpp"
#include "client/topics.hpp"
#include "client/transport.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "twin/merge_patch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace twinhub {

namespace asio = boost::asio;
using asio::awaitable;
using steady = std::chrono::steady_clock;
using client::identity_settings;

namespace {

// Waits for a callback, or for `timeout`: nullopt then.
template <class T>
struct waiter {
    asio::steady_timer timer;
    std::optional<T> value;
    explicit waiter(asio::any_io_executor ex) : timer(std::move(ex)) {}
};

template <class T, class Start>
awaitable<std::optional<T>> await_callback(Start start, steady::duration timeout) {
    auto w = std::make_shared<waiter<T>>(co_await asio::this_coro::executor);
    w->timer.expires_after(timeout);
    start([w](T v) {
        if (w->value) return;
        w->value = std::move(v);
        w->timer.cancel();
    });
    if (!w->value) {
        boost::system::error_code ec;
        co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return std::move(w->value);
}

// An MQTT twin answer, or status -1 when the connection was lost first.
struct twin_answer {
    int status = -1;
    std::optional<std::int64_t> version;
    std::string body;
};

error lost() { return {errc::connection_failed, "the connection to the hub was lost before the answer arrived"}; }

}  // namespace

struct hub_client::impl {
    // Declared first so that it is destroyed last (coroutine frames die in its destructor).
    asio::io_context ioc{1};
    asio::io_context cb_ioc{1};

    identity_settings id;
    client_options options;
    std::shared_ptr<asio::ssl::context> tls;

    // ---- I/O-thread state ----
    std::shared_ptr<client::transport> transport;
    mqtt::decoder decoder;
    bool active = false;     // the application wants a connection (between connect and disconnect)
    bool is_connected = false;
    bool ever_connected = false;
    bool reconnecting = false;
    std::uint64_t generation = 0;  // bumps on every new or closed connection
    std::uint16_t next_pid = 0;
    std::uint64_t next_rid = 0;
    std::map<std::uint16_t, std::function<void(bool)>> pending_acks;  // PUBACK/SUBACK: ok?
    std::map<std::string, std::function<void(twin_answer)>> pending_twin;
    std::vector<std::function<void(bool)>> connect_waiters;  // true: connected, false: gave up
    bool methods_wanted = false;
    bool c2d_wanted = false;  // on_message / on_input_message set a handler: subscribed on every connect
    std::optional<boost::json::object> desired_cache;  // desired properties without $-keys
    std::int64_t desired_version = 0;
    steady::time_point last_read;

    // ---- shared with application threads, guarded by mutex ----
    mutable std::mutex mutex;
    std::condition_variable patch_cv;
    std::deque<boost::json::object> patch_queue;
    desired_patch_handler desired_handler;
    std::map<std::string, method_handler> method_handlers;
    c2d_handler c2d_h;
    connection_handler conn_handler;
    std::atomic<bool> connected_flag{false};

    asio::executor_work_guard<asio::io_context::executor_type> io_work{ioc.get_executor()};
    asio::executor_work_guard<asio::io_context::executor_type> cb_work{cb_ioc.get_executor()};
    std::thread io_thread;
    std::thread cb_thread;

    impl(identity_settings s, client_options o, std::shared_ptr<asio::ssl::context> t)
        : id(std::move(s)), options(std::move(o)), tls(std::move(t)) {
        io_thread = std::thread([this] { ioc.run(); });
        cb_thread = std::thread([this] { cb_ioc.run(); });
    }

    ~impl() {
        shutdown();
    }

    void shutdown() {
        if (!io_thread.joinable()) return;
        run_sync<void>([this]() -> awaitable<result<void>> { co_return co_await do_disconnect(); });
        io_work.reset();
        ioc.stop();
        io_thread.join();
        cb_work.reset();
        cb_ioc.stop();
        cb_thread.join();
    }

    // Runs a coroutine on the I/O thread and waits for its result.
    template <class T, class F>
    result<T> run_sync(F f) {
        if (std::this_thread::get_id() == io_thread.get_id())
            return error{errc::internal, "twinhub client: blocking call on the client's own I/O thread"};
        std::promise<result<T>> p;
        auto fut = p.get_future();
        asio::co_spawn(ioc, [&p, f = std::move(f)]() mutable -> awaitable<void> {
            try {
                p.set_value(co_await f());
            } catch (const std::exception& e) {
                p.set_value(error{errc::internal, std::string("twinhub client: ") + e.what()});
            }
        }, asio::detached);
        return fut.get();
    }

    std::chrono::milliseconds op_timeout() const { return options.operation_timeout; }

    // ---- sending ----
    void send(const mqtt::packet& p) {
        if (transport) transport->send(mqtt::to_bytes(p));
    }
    std::uint16_t pid() {
        if (++next_pid == 0) next_pid = 1;
        return next_pid;
    }
    std::string rid() { return std::to_string(++next_rid); }

    std::uint16_t port() const {
        if (options.port) return options.port;
        return options.transport == transport_kind::mqtt_ws ? 443 : 8883;
    }

    result<std::string> password() const {
        if (!id.sas_token.empty()) return id.sas_token;
        auto resource = percent_encode(auth::identity_resource(id.host_name, id.device_id, id.module_id));
        auto expiry = auth::to_unix_seconds(now()) + options.sas_token_ttl.count();
        return auth::generate_sas_token(resource, id.key, expiry, id.key_name);
    }

    // ---- waiting for the connection ----
    awaitable<result<void>> wait_connected(steady::duration timeout) {
        if (is_connected) co_return result<void>{};
        if (!active) co_return error{errc::connection_failed, "not connected to the hub (call connect() first)"};
        auto ok = co_await await_callback<bool>([this](auto cb) { connect_waiters.push_back(std::move(cb)); }, timeout);
        if (!ok) co_return error{errc::gateway_timeout, "the connection to the hub was not re-established in time"};
        if (!*ok) co_return error{errc::connection_failed, "disconnected from the hub"};
        co_return result<void>{};
    }

    void release_waiters(bool connected) {
        auto w = std::move(connect_waiters);
        connect_waiters.clear();
        for (auto& f : w) f(connected);
    }

    void fail_pending() {
        auto acks = std::move(pending_acks);
        pending_acks.clear();
        for (auto& [k, f] : acks) f(false);
        auto twins = std::move(pending_twin);
        pending_twin.clear();
        for (auto& [k, f] : twins) f(twin_answer{});
    }

    void notify_connection(bool connected, error why) {
        connected_flag = connected;
        std::lock_guard lock(mutex);
        if (!conn_handler) return;
        asio::post(cb_ioc, [h = conn_handler, connected, why] { h(connected, why); });
    }

    // ---- one connection attempt ----
    awaitable<result<void>> establish(bool resubscribe) {
        auto t = options.transport == transport_kind::mqtt_ws ? client::make_websocket_transport(ioc.get_executor(), tls)
                                                             : client::make_tls_transport(ioc.get_executor(), tls);
        const std::string& dial = id.dial_host;
        auto opened = co_await t->open(dial, port(), op_timeout());
        if (!opened) co_return opened.error();

        auto pw = password();
        if (!pw) co_return pw.error();
        mqtt::connect c;
        c.clean_session = false;
        c.keep_alive = static_cast<std::uint16_t>(options.keep_alive.count());
        c.client_id = id.module_id.empty() ? id.device_id : id.device_id + "/" + id.module_id;
        c.username = client::mqtt_username(id.host_name, id.device_id, id.module_id, options.model_id);
        c.password = std::move(*pw);
        t->send(mqtt::to_bytes(c));

        // Read until CONNACK, with the operation timeout.
        mqtt::decoder dec;
        std::optional<mqtt::connack> ack;
        {
            asio::steady_timer deadline(ioc);
            deadline.expires_after(op_timeout());
            bool timed_out = false;
            deadline.async_wait([&timed_out, t](boost::system::error_code ec) {
                if (!ec) {
                    timed_out = true;
                    t->close();
                }
            });
            char buf[4096];
            while (!ack) {
                auto [ec, n] = co_await t->read_some(asio::buffer(buf));
                if (ec) {
                    deadline.cancel();
                    if (timed_out) co_return error{errc::gateway_timeout, "the hub did not answer CONNECT in time"};
                    t->close();
                    co_return error{errc::connection_failed, "the hub closed the connection during CONNECT: " + ec.message()};
                }
                dec.feed(buf, n);
                auto p = dec.next();
                if (!p) {
                    t->close();
                    co_return error{errc::connection_failed, "malformed answer to CONNECT: " + p.error().message};
                }
                if (!*p) continue;
                if (auto* a = std::get_if<mqtt::connack>(&**p)) {
                    ack = *a;
                } else {
                    t->close();
                    co_return error{errc::connection_failed, "the hub did not answer CONNECT with CONNACK"};
                }
            }
            deadline.cancel();
        }
        if (ack->return_code != mqtt::connect_return_code::accepted) {
            t->close();
            co_return error{errc::unauthorized,
                            "the hub refused the connection of '" + c.client_id + "' (CONNACK " +
                                std::to_string(static_cast<int>(ack->return_code)) +
                                ": not authorized; check the key, that the identity exists and is enabled)"};
        }

        transport = t;
        decoder = std::move(dec);
        ++generation;
        is_connected = true;
        ever_connected = true;
        last_read = steady::now();
        auto gen = generation;
        asio::co_spawn(ioc, read_loop(t, gen), asio::detached);
        asio::co_spawn(ioc, keep_alive_loop(gen), asio::detached);
        if (id.sas_token.empty()) asio::co_spawn(ioc, renewal_timer(gen), asio::detached);

        if (resubscribe) {
            std::vector<mqtt::subscription> subs{{std::string(iothub::twin_response_filter), mqtt::qos::at_most_once},
                                                 {std::string(iothub::desired_patch_filter), mqtt::qos::at_most_once}};
            if (methods_wanted) subs.push_back({std::string(iothub::methods_filter), mqtt::qos::at_most_once});
            if (c2d_wanted)
                subs.push_back({iothub::c2d_filter(identity_key{id.device_id, id.module_id}), mqtt::qos::at_least_once});
            auto r = co_await subscribe(std::move(subs));
            if (!r) co_return r.error();
        }
        auto r = co_await resync();
        if (!r) co_return r.error();
        notify_connection(true, {errc::ok, ""});
        release_waiters(true);
        // After the connection is reported up, so an app that sees the missed patch also sees
        // connected() == true.
        if (r->has_value()) deliver_patch(std::move(**r));
        co_return result<void>{};
    }

    awaitable<result<void>> subscribe(std::vector<mqtt::subscription> subs) {
        mqtt::subscribe s;
        s.packet_id = pid();
        s.subscriptions = std::move(subs);
        auto id_ = s.packet_id;
        auto ok = co_await await_callback<bool>(
            [&](auto cb) {
                pending_acks[id_] = std::move(cb);
                send(s);
            },
            op_timeout());
        if (!ok) {
            pending_acks.erase(id_);
            co_return error{errc::gateway_timeout, "the hub did not answer SUBSCRIBE in time"};
        }
        if (!*ok) co_return error{errc::connection_failed, "the hub refused or dropped the subscription"};
        co_return result<void>{};
    }

    // GETs the twin; the first time it becomes the baseline, later a changed desired.$version
    // yields a synthesised patch.
    // Returns the synthesised patch for the caller to deliver once the connection is reported up.
    awaitable<result<std::optional<boost::json::object>>> resync() {
        using out = std::optional<boost::json::object>;
        auto t = co_await twin_request(true, {});
        if (!t) co_return t.error();
        auto v = boost::json::parse(t->body);
        const auto* o = v.if_object();
        const auto* d = o ? o->if_contains("desired") : nullptr;
        if (!d || !d->is_object()) co_return out{};
        const auto& desired = d->as_object();
        std::int64_t version = 0;
        if (const auto* ver = desired.if_contains("$version"); ver && ver->is_int64()) version = ver->as_int64();
        auto fresh = twin::without_read_only_keys(desired);
        if (!desired_cache) {
            desired_cache = std::move(fresh);
            desired_version = version;
            co_return out{};
        }
        if (version != desired_version) {
            auto patch = twin::diff(*desired_cache, fresh);
            desired_cache = std::move(fresh);
            desired_version = version;
            patch["$version"] = version;
            co_return out{std::move(patch)};
        }
        co_return out{};
    }

    // One twin request: GET (patch == nullptr) or reported PATCH.
    awaitable<result<twin_answer>> twin_request(bool get, std::string body) {
        auto r = rid();
        mqtt::publish p;
        p.topic = get ? iothub::twin_get_topic(r) : iothub::twin_patch_topic(r);
        p.payload = get ? std::string(" ") : std::move(body);
        auto ans = co_await await_callback<twin_answer>(
            [&](auto cb) {
                pending_twin[r] = std::move(cb);
                send(p);
            },
            op_timeout());
        if (!ans) {
            pending_twin.erase(r);
            co_return error{errc::gateway_timeout, "the hub did not answer the twin request in time"};
        }
        if (ans->status < 0) co_return lost();
        if (ans->status >= 300) co_return client::parse_twin_error(ans->status, ans->body);
        co_return std::move(*ans);
    }

    // ---- reading ----
    awaitable<void> read_loop(std::shared_ptr<client::transport> t, std::uint64_t gen) {
        char buf[16384];
        error why{errc::connection_failed, "the hub closed the connection"};
        for (;;) {
            auto [ec, n] = co_await t->read_some(asio::buffer(buf));
            if (ec) {
                why.message = "connection lost: " + ec.message();
                break;
            }
            if (gen != generation) co_return;
            last_read = steady::now();
            decoder.feed(buf, n);
            bool bad = false;
            for (;;) {
                auto p = decoder.next();
                if (!p) {
                    why.message = "malformed packet from the hub: " + p.error().message;
                    bad = true;
                    break;
                }
                if (!*p) break;
                handle(std::move(**p));
            }
            if (bad) break;
        }
        t->close();
        if (gen == generation) connection_lost(why);
    }

    void handle(mqtt::packet&& p) {
        if (auto* pub = std::get_if<mqtt::publish>(&p)) {
            if (auto c2d = client::parse_c2d_topic(pub->topic, id.device_id, id.module_id)) {
                c2d->body = std::move(pub->payload);
                return deliver_c2d(std::move(*c2d), pub->qos == mqtt::qos::at_least_once, pub->packet_id);
            }
            if (pub->qos == mqtt::qos::at_least_once) send(mqtt::puback{pub->packet_id});
            on_publish(std::move(*pub));
        } else if (auto* a = std::get_if<mqtt::puback>(&p)) {
            complete_ack(a->packet_id, true);
        } else if (auto* u = std::get_if<mqtt::unsuback>(&p)) {
            complete_ack(u->packet_id, true);
        } else if (auto* s = std::get_if<mqtt::suback>(&p)) {
            bool ok = true;
            for (auto rc : s->return_codes) ok = ok && rc != mqtt::suback_return_code::failure;
            complete_ack(s->packet_id, ok);
        }
    }

    void complete_ack(std::uint16_t id_, bool ok) {
        auto it = pending_acks.find(id_);
        if (it == pending_acks.end()) return;
        auto f = std::move(it->second);
        pending_acks.erase(it);
        f(ok);
    }

    void on_publish(mqtt::publish&& pub) {
        if (auto res = iothub::parse_twin_response_topic(pub.topic)) {
            auto it = pending_twin.find(res->rid);
            if (it == pending_twin.end()) return;
            auto f = std::move(it->second);
            pending_twin.erase(it);
            f(twin_answer{res->status, res->version, std::move(pub.payload)});
            return;
        }
        if (auto ver = iothub::parse_desired_patch_topic(pub.topic)) {
            boost::system::error_code ec;
            auto v = boost::json::parse(pub.payload, ec);
            if (ec || !v.is_object()) return;
            auto& patch = v.as_object();
            std::int64_t version = *ver;
            if (const auto* pv = patch.if_contains("$version"); pv && pv->is_int64()) version = pv->as_int64();
            if (desired_cache && version != 0 && version <= desired_version) return;  // already seen (resync)
            if (!desired_cache) desired_cache.emplace();
            twin::merge_patch(*desired_cache, twin::without_read_only_keys(patch));
            if (version) desired_version = version;
            if (!patch.contains("$version")) patch["$version"] = version;
            deliver_patch(std::move(patch));
            return;
        }
        if (auto m = iothub::parse_method_topic(pub.topic)) {
            method_request req;
            req.method_name = m->method_name;
            req.request_id = m->rid;
            boost::system::error_code ec;
            if (!pub.payload.empty()) req.payload = boost::json::parse(pub.payload, ec);
            if (ec) req.payload = boost::json::string(pub.payload);
            method_handler h;
            {
                std::lock_guard lock(mutex);
                auto it = method_handlers.find(req.method_name);
                if (it == method_handlers.end()) it = method_handlers.find("");
                if (it != method_handlers.end()) h = it->second;
            }
            asio::post(cb_ioc, [this, h, req = std::move(req)] {
                method_response res;
                if (!h) {
                    res.status = 501;
                    res.payload = boost::json::object{{"message", "no handler for method '" + req.method_name + "'"}};
                } else {
                    try {
                        res = h(req);
                    } catch (const std::exception& e) {
                        res.status = 500;
                        res.payload = boost::json::object{{"message", e.what()}};
                    }
                }
                asio::post(ioc, [this, rid = req.request_id, res = std::move(res)] {
                    mqtt::publish out;
                    out.topic = iothub::method_response_topic(res.status, rid);
                    out.payload = boost::json::serialize(res.payload);
                    send(out);
                });
            });
        }
    }

    // A C2D message: the handler runs on the callback thread; its PUBACK (which completes the
    // message in the hub) goes out after it returned, on the connection it arrived on. A handler
    // that throws, or a connection lost meanwhile, leaves the message unacknowledged: the hub
    // delivers it again on a later connection.
    void deliver_c2d(received_c2d_message m, bool qos1, std::uint16_t packet_id) {
        const auto gen = generation;
        asio::post(cb_ioc, [this, gen, qos1, packet_id, m = std::move(m)] {
            c2d_handler h;
            {
                std::lock_guard lock(mutex);
                h = c2d_h;
            }
            if (!h) return;  // unsubscribing: the hub keeps the message
            try {
                h(m);
            } catch (...) {
                return;
            }
            if (!qos1) return;
            asio::post(ioc, [this, gen, packet_id] {
                if (gen == generation && is_connected) send(mqtt::puback{packet_id});
            });
        });
    }

    awaitable<result<void>> unsubscribe(std::string filter) {
        mqtt::unsubscribe u;
        u.packet_id = pid();
        u.filters.push_back(std::move(filter));
        auto id_ = u.packet_id;
        auto ok = co_await await_callback<bool>(
            [&](auto cb) {
                pending_acks[id_] = std::move(cb);
                send(u);
            },
            op_timeout());
        if (!ok) {
            pending_acks.erase(id_);
            co_return error{errc::gateway_timeout, "the hub did not answer UNSUBSCRIBE in time"};
        }
        if (!*ok) co_return lost();
        co_return result<void>{};
    }

    void deliver_patch(boost::json::object patch) {
        std::lock_guard lock(mutex);
        if (desired_handler) {
            asio::post(cb_ioc, [h = desired_handler, patch = std::move(patch)] { h(patch); });
            return;
        }
        patch_queue.push_back(std::move(patch));
        while (patch_queue.size() > 1000) patch_queue.pop_front();
        patch_cv.notify_all();
    }

    // ---- liveness, renewal, reconnect ----
    awaitable<void> keep_alive_loop(std::uint64_t gen) {
        if (options.keep_alive.count() <= 0) co_return;
        auto interval = std::max<steady::duration>(std::chrono::seconds(1), options.keep_alive / 2);
        asio::steady_timer timer(ioc);
        for (;;) {
            timer.expires_after(interval);
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (gen != generation || !is_connected) co_return;
            if (steady::now() - last_read > options.keep_alive * 3 / 2 + std::chrono::seconds(1)) {
                transport->close();  // read_loop reports the loss
                co_return;
            }
            send(mqtt::pingreq{});
        }
    }

    awaitable<void> renewal_timer(std::uint64_t gen) {
        auto wait = options.sas_token_ttl - options.sas_renewal_margin;
        if (wait < std::chrono::seconds(1)) wait = std::chrono::seconds(1);
        asio::steady_timer timer(ioc);
        timer.expires_after(wait);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (gen != generation || !is_connected || !active) co_return;
        // Renew like the Node SDK: DISCONNECT, then CONNECT again with clean session 0 and a new
        // token, without re-subscribing (the hub keeps the session).
        ++generation;
        is_connected = false;
        auto old = transport;
        old->send(mqtt::to_bytes(mqtt::disconnect{}));
        asio::steady_timer grace(ioc);
        grace.expires_after(std::chrono::milliseconds(50));
        co_await grace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        old->close();
        fail_pending();
        auto r = co_await establish(false);
        if (!r) {
            connection_lost(r.error());
        }
    }

    void connection_lost(const error& why) {
        is_connected = false;
        ++generation;
        if (transport) transport->close();
        fail_pending();
        notify_connection(false, why);
        if (!active) {
            release_waiters(false);
            return;
        }
        if (!options.auto_reconnect) {
            active = false;
            release_waiters(false);
            return;
        }
        if (!reconnecting) asio::co_spawn(ioc, reconnect_loop(), asio::detached);
    }

    awaitable<void> reconnect_loop() {
        reconnecting = true;
        auto backoff = options.reconnect_min_backoff;
        std::mt19937 rng(std::random_device{}());
        asio::steady_timer timer(ioc);
        while (active && !is_connected) {
            std::uniform_int_distribution<long> jitter(0, backoff.count() / 4 + 1);
            timer.expires_after(backoff + std::chrono::milliseconds(jitter(rng)));
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (!active || is_connected) break;
            auto r = co_await establish(true);
            if (r) break;
            if (is_connected) {  // connected but the subscription or resync failed: drop and retry
                is_connected = false;
                ++generation;
                if (transport) transport->close();
                fail_pending();
            }
            backoff = std::min(backoff * 2, options.reconnect_max_backoff);
        }
        reconnecting = false;
    }

    awaitable<result<void>> do_connect() {
        if (is_connected) co_return result<void>{};
        if (active) co_return co_await wait_connected(op_timeout());
        active = true;
        auto r = co_await establish(true);
        if (!r) {
            if (is_connected) {
                is_connected = false;
                ++generation;
                if (transport) transport->close();
                fail_pending();
            }
            active = false;
            release_waiters(false);
        }
        co_return r;
    }

    awaitable<result<void>> do_disconnect() {
        active = false;
        bool was = is_connected;
        is_connected = false;
        ++generation;
        if (transport) {
            auto t = transport;
            if (was) {
                t->send(mqtt::to_bytes(mqtt::disconnect{}));
                asio::steady_timer grace(ioc);
                grace.expires_after(std::chrono::milliseconds(20));
                boost::system::error_code ec;
                co_await grace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            }
            t->close();
        }
        fail_pending();
        release_waiters(false);
        if (was) notify_connection(false, {errc::ok, "disconnected by the application"});
        co_return result<void>{};
    }
};

// ---- public API ----

hub_client::hub_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
hub_client::hub_client(hub_client&&) noexcept = default;
hub_client& hub_client::operator=(hub_client&&) noexcept = default;
hub_client::~hub_client() = default;

result<void> hub_client::connect() {
    auto* m = impl_.get();
    return m->run_sync<void>([m]() -> awaitable<result<void>> { co_return co_await m->do_connect(); });
}

void hub_client::disconnect() {
    auto* m = impl_.get();
    (void)m->run_sync<void>([m]() -> awaitable<result<void>> { co_return co_await m->do_disconnect(); });
}

bool hub_client::connected() const { return impl_->connected_flag; }

result<boost::json::object> hub_client::get_twin() {
    auto* m = impl_.get();
    return m->run_sync<boost::json::object>([m]() -> awaitable<result<boost::json::object>> {
        auto c = co_await m->wait_connected(m->op_timeout());
        if (!c) co_return c.error();
        auto a = co_await m->twin_request(true, {});
        if (!a) co_return a.error();
        boost::system::error_code ec;
        auto v = boost::json::parse(a->body, ec);
        if (ec || !v.is_object()) co_return error{errc::format_error, "the hub's twin answer is not a JSON object"};
        co_return std::move(v.as_object());
    });
}

result<std::int64_t> hub_client::patch_twin_reported_properties(const boost::json::object& patch) {
    auto* m = impl_.get();
    std::string body = boost::json::serialize(patch);
    return m->run_sync<std::int64_t>([m, body]() -> awaitable<result<std::int64_t>> {
        auto c = co_await m->wait_connected(m->op_timeout());
        if (!c) co_return c.error();
        auto a = co_await m->twin_request(false, body);
        if (!a) co_return a.error();
        co_return a->version.value_or(0);
    });
}

result<std::optional<boost::json::object>> hub_client::receive_twin_desired_properties_patch(
    std::chrono::milliseconds timeout) {
    auto& m = *impl_;
    std::unique_lock lock(m.mutex);
    if (!m.patch_cv.wait_for(lock, timeout, [&] { return !m.patch_queue.empty(); }))
        return std::optional<boost::json::object>{};
    auto p = std::move(m.patch_queue.front());
    m.patch_queue.pop_front();
    return std::optional<boost::json::object>{std::move(p)};
}

void hub_client::on_twin_desired_properties_patch(desired_patch_handler handler) {
    auto& m = *impl_;
    std::lock_guard lock(m.mutex);
    m.desired_handler = std::move(handler);
    if (!m.desired_handler) return;
    while (!m.patch_queue.empty()) {
        asio::post(m.cb_ioc, [h = m.desired_handler, p = std::move(m.patch_queue.front())] { h(p); });
        m.patch_queue.pop_front();
    }
}

result<void> hub_client::send_message(const message& msg) {
    auto* m = impl_.get();
    std::string topic = client::telemetry_topic(m->id.device_id, m->id.module_id, msg);
    std::string body = msg.body;
    return m->run_sync<void>([m, topic, body]() -> awaitable<result<void>> {
        auto c = co_await m->wait_connected(m->op_timeout());
        if (!c) co_return c.error();
        mqtt::publish p;
        p.qos = mqtt::qos::at_least_once;
        p.packet_id = m->pid();
        p.topic = topic;
        p.payload = body;
        auto id = p.packet_id;
        auto ok = co_await await_callback<bool>(
            [&](auto cb) {
                m->pending_acks[id] = std::move(cb);
                m->send(p);
            },
            m->op_timeout());
        if (!ok) {
            m->pending_acks.erase(id);
            co_return error{errc::gateway_timeout, "the hub did not acknowledge the message in time"};
        }
        if (!*ok) co_return lost();
        co_return result<void>{};
    });
}

void hub_client::on_method(std::string method_name, method_handler handler) {
    auto* m = impl_.get();
    {
        std::lock_guard lock(m->mutex);
        if (handler) m->method_handlers[method_name] = std::move(handler);
        else m->method_handlers.erase(method_name);
    }
    (void)m->run_sync<void>([m]() -> awaitable<result<void>> {
        if (m->methods_wanted) co_return result<void>{};
        m->methods_wanted = true;
        if (!m->is_connected) co_return result<void>{};  // subscribed at the next connect
        std::vector<mqtt::subscription> subs;
        subs.push_back(mqtt::subscription{std::string(iothub::methods_filter), mqtt::qos::at_most_once});
        co_return co_await m->subscribe(std::move(subs));
    });
}

result<void> hub_client::set_c2d_handler(c2d_handler handler) {
    auto* m = impl_.get();
    const bool want = static_cast<bool>(handler);
    {
        std::lock_guard lock(m->mutex);
        m->c2d_h = std::move(handler);
    }
    return m->run_sync<void>([m, want]() -> awaitable<result<void>> {
        if (m->c2d_wanted == want) co_return result<void>{};
        m->c2d_wanted = want;
        if (!m->is_connected) co_return result<void>{};  // (un)subscribed at the next connect
        auto filter = iothub::c2d_filter(identity_key{m->id.device_id, m->id.module_id});
        if (!want) co_return co_await m->unsubscribe(std::move(filter));
        std::vector<mqtt::subscription> subs;
        subs.push_back(mqtt::subscription{std::move(filter), mqtt::qos::at_least_once});
        auto r = co_await m->subscribe(std::move(subs));
        if (!r) m->c2d_wanted = false;
        co_return r;
    });
}

result<void> device_client::on_message(c2d_handler handler) { return set_c2d_handler(std::move(handler)); }
result<void> module_client::on_input_message(c2d_handler handler) { return set_c2d_handler(std::move(handler)); }

void hub_client::on_connection_state_change(connection_handler handler) {
    std::lock_guard lock(impl_->mutex);
    impl_->conn_handler = std::move(handler);
}

const std::string& hub_client::device_id() const { return impl_->id.device_id; }
const std::string& hub_client::module_id() const { return impl_->id.module_id; }

namespace client {

result<std::unique_ptr<hub_client::impl>> make_hub_client_impl(identity_settings id, client_options options) {
    auto tls = make_tls_context(options.tls);
    if (!tls) return tls.error();
    return std::make_unique<hub_client::impl>(std::move(id), std::move(options), std::move(*tls));
}

}  // namespace client
}  // namespace twinhub

// ---- device_client and module_client (here, where impl is complete) ----
namespace twinhub {
namespace {

result<std::unique_ptr<hub_client::impl>> make_impl(std::string_view connection_string, client_options options,
                                                    auth::connection_string_kind want) {
    auto cs = auth::parse_connection_string(connection_string);
    if (!cs) return cs.error();
    if (cs->kind != want) {
        const char* need = want == auth::connection_string_kind::module
                               ? "a module connection string (HostName, DeviceId, ModuleId, SharedAccessKey)"
                               : "a device connection string (HostName, DeviceId, SharedAccessKey)";
        return error{errc::invalid_argument, std::string(need) + " is needed; this one is a " +
                                                 (cs->kind == auth::connection_string_kind::service  ? "service"
                                                  : cs->kind == auth::connection_string_kind::device ? "device"
                                                                                                     : "module") +
                                                 " connection string"};
    }
    if (cs->x509) return error{errc::invalid_argument, "x509=true connection strings are not supported by this SDK yet"};
    client::identity_settings s;
    s.host_name = cs->host_name;
    // A port in HostName ("host:8884", as Node's MQTT client allows) is dialled, not signed.
    if (auto colon = s.host_name.rfind(':'); colon != std::string::npos) {
        if (options.port == 0) {
            try {
                options.port = static_cast<std::uint16_t>(std::stoul(s.host_name.substr(colon + 1)));
            } catch (...) {
                return error{errc::invalid_argument, "HostName has an invalid port"};
            }
        }
        s.host_name.resize(colon);
    }
    s.dial_host = !options.gateway_host_name.empty() ? options.gateway_host_name
                  : !cs->gateway_host_name.empty()   ? cs->gateway_host_name
                                                     : s.host_name;
    s.device_id = cs->device_id;
    s.module_id = cs->module_id;
    s.key = cs->key;
    s.key_name = cs->key_name;
    s.sas_token = cs->shared_access_signature;
    if (options.sas_token_ttl.count() <= 0) return error{errc::invalid_argument, "sas_token_ttl must be positive"};
    return client::make_hub_client_impl(std::move(s), std::move(options));
}

}  // namespace

result<device_client> device_client::create_from_connection_string(std::string_view connection_string,
                                                                   client_options options) {
    auto p = make_impl(connection_string, std::move(options), auth::connection_string_kind::device);
    if (!p) return p.error();
    return device_client(std::move(*p));
}

result<module_client> module_client::create_from_connection_string(std::string_view connection_string,
                                                                   client_options options) {
    auto p = make_impl(connection_string, std::move(options), auth::connection_string_kind::module);
    if (!p) return p.error();
    return module_client(std::move(*p));
}

}  // namespace twinhub
