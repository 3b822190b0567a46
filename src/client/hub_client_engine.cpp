// hub_client::impl: the connection life cycle (connect, subscribe, resync, keep-alive, SAS renewal, reconnect).
#include "client/hub_client_engine.hpp"

namespace twinhub {

hub_client::impl::impl(identity_settings s, client_options o, std::shared_ptr<asio::ssl::context> t)
    : id(std::move(s)), options(std::move(o)), tls(std::move(t)) {
    io_thread = std::thread([this] { ioc.run(); });
    cb_thread = std::thread([this] { cb_ioc.run(); });
}

hub_client::impl::~impl() {
    shutdown();
}

void hub_client::impl::shutdown() {
    if (!io_thread.joinable()) return;
    run_sync<void>([this]() -> awaitable<result<void>> { co_return co_await do_disconnect(); });
    io_work.reset();
    ioc.stop();
    io_thread.join();
    cb_work.reset();
    cb_ioc.stop();
    cb_thread.join();
}

void hub_client::impl::send(const mqtt::packet& p) {
    if (transport) transport->send(mqtt::to_bytes(p));
}

std::uint16_t hub_client::impl::pid() {
    if (++next_pid == 0) next_pid = 1;
    return next_pid;
}

std::uint16_t hub_client::impl::port() const {
    if (options.port) return options.port;
    return options.transport == transport_kind::mqtt_ws ? 443 : 8883;
}

result<std::string> hub_client::impl::password() const {
    if (!id.sas_token.empty()) return id.sas_token;
    auto resource = percent_encode(auth::identity_resource(id.host_name, id.device_id, id.module_id));
    auto expiry = auth::to_unix_seconds(now()) + options.sas_token_ttl.count();
    return auth::generate_sas_token(resource, id.key, expiry, id.key_name);
}

awaitable<result<void>> hub_client::impl::wait_connected(steady::duration timeout) {
    if (is_connected) co_return result<void>{};
    if (!active) co_return error{errc::connection_failed, "not connected to the hub (call connect() first)"};
    auto ok = co_await await_callback<bool>([this](auto cb) { connect_waiters.push_back(std::move(cb)); }, timeout);
    if (!ok) co_return error{errc::gateway_timeout, "the connection to the hub was not re-established in time"};
    if (!*ok) co_return error{errc::connection_failed, "disconnected from the hub"};
    co_return result<void>{};
}

void hub_client::impl::release_waiters(bool connected) {
    auto w = std::move(connect_waiters);
    connect_waiters.clear();
    for (auto& f : w) f(connected);
}

void hub_client::impl::fail_pending() {
    auto acks = std::move(pending_acks);
    pending_acks.clear();
    for (auto& [k, f] : acks) f(false);
    auto twins = std::move(pending_twin);
    pending_twin.clear();
    for (auto& [k, f] : twins) f(twin_answer{});
}

void hub_client::impl::notify_connection(bool connected, error why) {
    connected_flag = connected;
    std::lock_guard lock(mutex);
    if (!conn_handler) return;
    asio::post(cb_ioc, [h = conn_handler, connected, why] { h(connected, why); });
}

awaitable<result<void>> hub_client::impl::establish(bool resubscribe) {
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

awaitable<result<void>> hub_client::impl::subscribe(std::vector<mqtt::subscription> subs) {
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

awaitable<result<std::optional<boost::json::object>>> hub_client::impl::resync() {
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

awaitable<result<twin_answer>> hub_client::impl::twin_request(bool get, std::string body) {
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

awaitable<void> hub_client::impl::keep_alive_loop(std::uint64_t gen) {
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

awaitable<void> hub_client::impl::renewal_timer(std::uint64_t gen) {
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

void hub_client::impl::connection_lost(const error& why) {
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

awaitable<void> hub_client::impl::reconnect_loop() {
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

awaitable<result<void>> hub_client::impl::do_connect() {
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

awaitable<result<void>> hub_client::impl::do_disconnect() {
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

}  // namespace twinhub
