// The engine behind hub_client: the definition of hub_client::impl (one I/O thread running an
// io_context with all connection state, coroutines for connect, read, keep-alive, SAS renewal and
// reconnect, and a second thread that runs application handlers). Private to src/client:
// hub_client.cpp holds the public API, hub_client_engine.cpp the connection life cycle,
// hub_client_inbound.cpp the handling of packets from the hub.
// Thread safety: public entry points post to the I/O thread; only it touches connection state.
// Handler slots and the patch queue are guarded by mutex.
#pragma once

#include "twinhub/hub_client.hpp"
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

inline error lost() { return {errc::connection_failed, "the connection to the hub was lost before the answer arrived"}; }


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

    impl(identity_settings s, client_options o, std::shared_ptr<asio::ssl::context> t);

    ~impl();

    void shutdown();

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
    void send(const mqtt::packet& p);
    std::uint16_t pid();
    std::string rid() { return std::to_string(++next_rid); }

    std::uint16_t port() const;

    result<std::string> password() const;

    // ---- waiting for the connection ----
    awaitable<result<void>> wait_connected(steady::duration timeout);

    void release_waiters(bool connected);

    void fail_pending();

    void notify_connection(bool connected, error why);

    // ---- one connection attempt ----
    awaitable<result<void>> establish(bool resubscribe);

    awaitable<result<void>> subscribe(std::vector<mqtt::subscription> subs);

    // GETs the twin; the first time it becomes the baseline, later a changed desired.$version
    // yields a synthesised patch.
    // Returns the synthesised patch for the caller to deliver once the connection is reported up.
    awaitable<result<std::optional<boost::json::object>>> resync();

    // One twin request: GET (patch == nullptr) or reported PATCH.
    awaitable<result<twin_answer>> twin_request(bool get, std::string body);

    // ---- reading ----
    awaitable<void> read_loop(std::shared_ptr<client::transport> t, std::uint64_t gen);

    void handle(mqtt::packet&& p);

    void complete_ack(std::uint16_t id_, bool ok);

    void on_publish(mqtt::publish&& pub);

    // A C2D message: the handler runs on the callback thread; its PUBACK (which completes the
    // message in the hub) goes out after it returned, on the connection it arrived on. A handler
    // that throws, or a connection lost meanwhile, leaves the message unacknowledged: the hub
    // delivers it again on a later connection.
    void deliver_c2d(received_c2d_message m, bool qos1, std::uint16_t packet_id);

    awaitable<result<void>> unsubscribe(std::string filter);

    void deliver_patch(boost::json::object patch);

    // ---- liveness, renewal, reconnect ----
    awaitable<void> keep_alive_loop(std::uint64_t gen);

    awaitable<void> renewal_timer(std::uint64_t gen);

    void connection_lost(const error& why);

    awaitable<void> reconnect_loop();

    awaitable<result<void>> do_connect();

    awaitable<result<void>> do_disconnect();
};

}  // namespace twinhub
