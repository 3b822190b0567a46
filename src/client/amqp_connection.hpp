// The AMQP plumbing that the SDK's service-side AMQP clients share (service_client,
// event_consumer): one connection driven by Proton's sans-I/O connection_driver over the SDK's own
// TLS transport, on a private I/O thread; SASL ANONYMOUS, then a CBS put-token on $cbs with a SAS
// token of the policy (audience: the hub host), renewed on the same link at 4/5 of its lifetime
// (spec iothub-amqp 2). A derived client opens its own links once the first token is accepted and
// says when they are up; this class tells the waiters of open() and fails everything on teardown.
//
// Thread safety: everything except call(), close_sync() and connected() runs on the I/O thread
// only (inside Proton's dispatch or a posted function). A derived class must call stop() first in
// its destructor, so that no hook runs on a half-destroyed object.
#pragma once

#include "client/event_decode.hpp"
#include "common/errc.hpp"
#include "twinhub/registry_manager.hpp"

#include <proton/error_condition.hpp>
#include <proton/io/connection_driver.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/sender.hpp>
#include <proton/session.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace twinhub::client {

class transport;

// What a service connection string and service_options resolve to.
struct amqp_settings {
    std::string host;  // HostName without a port: dialled, the TLS name, the CBS audience
    std::uint16_t port = 5671;
    std::string key_name;
    std::string key;
    service_options options;
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::string who;  // "service_client", "event_consumer": names the client in messages
};

// Parses a service connection string and checks the options (TLS, token lifetime). Fails with
// invalid_argument when it is not a service connection string or the options are unusable.
result<amqp_settings> amqp_settings_from(std::string_view connection_string, service_options options, std::string who);

class amqp_connection : public proton::messaging_handler {
public:
    explicit amqp_connection(amqp_settings s);
    ~amqp_connection() override;
    amqp_connection(const amqp_connection&) = delete;
    amqp_connection& operator=(const amqp_connection&) = delete;

    // Runs `start(done)` on the I/O thread and waits for the first call of done, or `timeout`
    // (then gateway_timeout with `timeout_message`). Refused on the I/O thread itself.
    template <class T, class Start>
    result<T> call(Start start, std::chrono::milliseconds timeout, std::string timeout_message);

    void close_sync();
    bool connected() const { return connected_flag_; }
    // (I/O thread) Connects unless ready; `done` gets the outcome. Waiters queue while a connect is
    // under way.
    void open(std::function<void(result<void>)> done);
    const amqp_settings& settings() const { return s_; }

    // Declared first so that it is destroyed last (coroutine frames die in its destructor).
    boost::asio::io_context ioc{1};

protected:
    enum class phase { idle, opening, ready, closing };

    // ---- hooks for the derived client (I/O thread) ----
    // The first put-token was accepted: open the client's links (inside dispatch).
    virtual void on_authorized() = 0;
    // While opening, after each dispatch: are the client's links up? True makes the connection ready.
    virtual bool links_ready() = 0;
    // The connection is ready and the open() waiters were told.
    virtual void on_ready() {}
    // The connection is going: drop every Proton handle the client holds (before the driver goes).
    virtual void reset_links() = 0;
    // The connection is gone: fail the client's own waiters with `why`.
    virtual void on_teardown(const error& why) = 0;
    // A message on a link that is not $cbs. Return false to reject it.
    virtual bool on_link_message(proton::delivery&, proton::message&) { return false; }
    // A link other than $cbs closed or failed. Return false to treat it as fatal for the connection.
    virtual bool on_link_closed(const std::string& name, const proton::error_condition& c) { return false; }
    virtual void on_link_sendable(proton::sender&) {}

    // ---- for the derived client (I/O thread) ----
    void begin_close(std::function<void()> done);
    // Runs the driver's events, writes what it produced, then acts on what the handlers decided.
    void pump();
    // Stops the I/O thread after closing; the derived destructor calls it first.
    void stop();
    // The error for a link or connection condition; a missing condition is a lost connection.
    error condition_error(const proton::error_condition& c, std::string_view what, bool module_target = false);
    static error connection_lost(std::string what) { return {errc::connection_failed, std::move(what)}; }

    phase state_ = phase::idle;
    std::optional<proton::session> session_;
    std::optional<error> failure_;  // set inside handlers; acted on after dispatch
    amqp_settings s_;

private:
    boost::asio::awaitable<void> establish(std::shared_ptr<transport> t, std::uint64_t gen);
    boost::asio::awaitable<void> read_loop(std::shared_ptr<transport> t, std::uint64_t gen);
    boost::asio::awaitable<void> tick_loop(std::uint64_t gen);
    boost::asio::awaitable<void> renewal_loop(std::uint64_t gen);
    void write_out();
    void teardown(error why);
    void put_token(bool first);

    void on_connection_open(proton::connection& c) override;
    void on_session_open(proton::session&) override {}
    void on_receiver_open(proton::receiver&) override {}
    void on_sender_open(proton::sender&) override {}
    void on_sendable(proton::sender& s) override;
    void on_message(proton::delivery& d, proton::message& m) override;
    void on_sender_error(proton::sender& s) override;
    void on_receiver_error(proton::receiver& r) override;
    void on_sender_close(proton::sender& s) override;
    void on_receiver_close(proton::receiver& r) override;
    void link_closed(const std::string& name, const proton::error_condition& c);
    void on_session_error(proton::session& s) override;
    void on_connection_error(proton::connection& c) override;
    void on_connection_close(proton::connection&) override {}
    void on_transport_error(proton::transport& t) override;
    void on_transport_close(proton::transport&) override;
    void on_error(const proton::error_condition& c) override;

    std::uint64_t generation_ = 0;  // bumps when a connection is torn down
    std::shared_ptr<transport> transport_;
    std::unique_ptr<proton::io::connection_driver> driver_;
    std::optional<proton::sender> cbs_tx_;
    std::optional<proton::receiver> cbs_rx_;
    std::map<std::string, bool> cbs_pending_;  // put-token message ids -> is it the first one
    bool authorized_ = false;                  // the first put-token of this connection succeeded
    std::vector<std::function<void(result<void>)>> connect_waiters_;
    std::vector<std::function<void()>> close_waiters_;
    std::atomic<bool> connected_flag_{false};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{ioc.get_executor()};
    std::thread io_thread_;
};

template <class T, class Start>
result<T> amqp_connection::call(Start start, std::chrono::milliseconds timeout, std::string timeout_message) {
    if (std::this_thread::get_id() == io_thread_.get_id())
        return error{errc::internal, "twinhub " + s_.who + ": blocking call on its own I/O thread"};
    auto p = std::make_shared<std::promise<result<T>>>();
    auto fut = p->get_future();
    boost::asio::post(
        ioc, [this, p, start = std::move(start), timeout, timeout_message = std::move(timeout_message)]() mutable {
            auto fired = std::make_shared<bool>(false);
            auto timer = std::make_shared<boost::asio::steady_timer>(ioc, timeout);
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
                done(error{errc::internal, "twinhub " + s_.who + ": " + e.what()});
            }
        });
    return fut.get();
}

}  // namespace twinhub::client
