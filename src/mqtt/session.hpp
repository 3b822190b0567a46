// One MQTT connection, TLS or WebSocket (spec 5): the Beast/Asio session model. A session lives in
// a shared_ptr; every handler binds shared_from_this() and runs on the connection's strand (a real
// strand, or the one thread of an io_pool context: either way serial), which alone touches the
// session's state. Reads have a deadline (handshake + CONNECT before
// authentication, then 1.5 x keep-alive and the SAS expiry); one write is in flight with a bounded
// queue behind it (packets queued meanwhile are coalesced into the next write).
//
// Store completions (reported patch, telemetry append, session record) arrive on the store
// thread and are posted back to the strand; so are desired notifications, credential re-checks and
// closes requested by other threads.
//
// The session keeps the SAS token its CONNECT authenticated with (in memory only, never logged),
// so that a key or policy change can be checked against it: the connection stays open exactly
// while that token still verifies (issue 12; spec 6 infers that the real hub keeps it until the
// token expires, which would let a leaked key outlive its rotation).
// Thread safety: start(), close(), deliver_*(), recheck_credentials(), methods_subscribed() and
// uses_policy_token() may be called from any thread; everything else is private to the strand.
#pragma once

#include "auth/authenticator.hpp"
#include "common/time.hpp"
#include "mqtt/server_state.hpp"
#include "net/transport.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/packet.hpp"

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>
#include <string>

namespace twinhub::mqtt {

class session : public std::enable_shared_from_this<session> {
public:
    session(std::unique_ptr<net::transport> t, std::shared_ptr<mqtt_server::state> st);
    ~session();

    // Registers the session as open and starts the handshake.
    void start();
    // Closes the connection (posted to the strand); `reason` is logged.
    void close(std::string reason);

    // A committed desired change (device patch JSON with $version), sent if subscribed.
    void deliver_desired(std::shared_ptr<const std::string> payload, std::int64_t version);
    // A direct-method request, sent if still subscribed to methods when it reaches the strand.
    void deliver_method(method_request req);
    bool methods_subscribed() const noexcept { return methods_subscribed_.load(std::memory_order_relaxed); }
    // The identity's credentials or the hub's policies changed: checks the CONNECT token again
    // against the current ones (on the strand) and closes the connection, as disabling does, when
    // it no longer verifies. A session that is not connected (yet) ignores it.
    void recheck_credentials();
    // True once a CONNECT was accepted with a shared access policy token (skn).
    bool uses_policy_token() const noexcept { return policy_token_.load(); }
    // True once a CONNECT was accepted with the TLS client certificate (X.509).
    bool uses_certificate() const noexcept { return certificate_auth_.load(); }
    std::uint64_t connection_number() const noexcept { return conn_number_; }

private:
    using clock = std::chrono::steady_clock;

    void on_handshake(boost::system::error_code ec);
    void do_read();
    void on_read(boost::system::error_code ec, std::size_t n);
    void process_input();
    void handle(packet&& p);
    void handle_connect(connect&& c);
    // Answers CONNACK with the code the error map gives `e` (to_connack) and closes.
    void refuse_connect(const error& e);
    // Checks `token` against the identity's current credentials and the hub's policies; `at` is the
    // time its expiry is judged at. Fails with unauthorized (or the identity's lookup error).
    result<auth::device_authorization> authenticate(const store::identity_key& id, std::string_view token,
                                                    time_point at) const;
    // The same for the TLS client certificate (x509_chain_; empty: refused).
    result<auth::device_authorization> authenticate_x509(const store::identity_key& id, time_point at) const;
    // The CONNECT's credentials (token or certificate) checked again for identity_.
    result<auth::device_authorization> reauthenticate(time_point at) const;
    void handle_publish(publish&& p);
    void handle_subscribe(subscribe&& s);
    void handle_unsubscribe(unsubscribe&& u);
    void twin_get(const std::string& rid);
    void replay_desired_backlog();
    void twin_patch(const std::string& rid, const publish& p);
    void telemetry(const std::string& bag, publish&& p);
    // True when the message was a fault injection request (acknowledged, not stored).
    bool fault_requested(const std::vector<std::pair<std::string, std::string>>& app, const publish& p);
    void send_twin_error(const std::string& rid, const error& e);
    void persist_subscriptions(std::function<void()> then);
    void apply_subscription_flags();
    void operation_started();
    void operation_finished();
    void touch();
    void notify_methods(bool was_subscribed);

    // Queues `p` (a packet, or one packet struct: no variant copy) and flushes.
    template <class P>
    void send(const P& p);
    void log_send(const packet& p) const;
    void flush();
    void on_write(boost::system::error_code ec);

    void arm_timer();
    void on_timer(boost::system::error_code ec, std::uint64_t generation);
    clock::time_point deadline() const;

    void close_now(std::string_view reason);
    template <class F>
    void post(F&& f);

    // Cloud-to-device delivery (session_c2d.cpp; spec 5.6).
    void c2d_update_subscription();  // after subs_ changed: subscribe to / leave the identity's queue
    void c2d_pump();                 // sends what the queue has, up to max_c2d_inflight unacknowledged
    void c2d_puback(packet_id pid);  // completes the message
    void c2d_end();                  // on close: in-flight messages go back to the queue
    void post_fn(std::function<void()> f);
    static constexpr std::size_t max_c2d_inflight = 16;

    std::unique_ptr<net::transport> transport_;
    std::shared_ptr<mqtt_server::state> st_;
    std::uint64_t conn_number_;
    std::string conn_id_;
    boost::asio::steady_timer timer_;
    std::uint64_t timer_generation_ = 0;
    decoder decoder_;
    std::unique_ptr<char[]> read_buffer_;

    // Connection state (strand only).
    bool started_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;  // refusing: flush what is queued, then close; ignore input
    bool closed_ = false;
    bool connected_ = false;   // CONNECT accepted
    bool registered_ = false;  // holds the identity's slot in the registry
    std::size_t inflight_ = 0;
    std::string pending_;   // encoded packets waiting for the write in flight
    std::string in_write_;  // the bytes of the write in flight
    clock::time_point started_at_;
    clock::time_point last_rx_;
    clock::duration keep_alive_limit_{};
    std::optional<clock::time_point> token_deadline_;
    clock::time_point last_touch_{};
    clock::time_point refuse_telemetry_until_{};  // fault injection: InvokeThrottling and the like
    std::string refuse_telemetry_why_;

    store::identity_key identity_;
    std::string client_id_;
    std::string token_;              // the accepted CONNECT password; never logged
    std::vector<std::string> x509_chain_;  // the client certificates (DER) when CONNECT had no password
    time_point authenticated_at_{};  // re-checks judge the token's expiry as of the CONNECT (the timer owns expiry)
    std::atomic<bool> policy_token_{false};
    std::atomic<bool> certificate_auth_{false};
    bool persistent_ = false;                  // clean-session 0
    std::map<std::string, std::uint8_t> subs_;  // filter -> granted QoS
    bool twin_responses_subscribed_ = false;
    bool desired_subscribed_ = false;
    std::atomic<bool> methods_subscribed_{false};
    std::uint64_t c2d_subscription_ = 0;            // 0: not subscribed to the C2D queue
    std::uint8_t c2d_qos_ = 1;                      // the granted QoS of the C2D filter
    std::map<packet_id, std::string> c2d_inflight_;  // packet id -> lock token
    packet_id next_packet_id_ = 0;

    // Desired patches committed after this connection's last twin GET but before it subscribed to
    // desired notifications (the window between an SDK's GET and its lazy SUBSCRIBE). They are
    // replayed, in $version order, when the subscription arrives, so no patch falls in the gap.
    std::optional<std::int64_t> desired_version_seen_;  // desired $version of the last GET response
    std::vector<std::pair<std::int64_t, std::shared_ptr<const std::string>>> desired_backlog_;
    bool desired_backlog_overflow_ = false;
    static constexpr std::size_t max_desired_backlog = 64;
};

}  // namespace twinhub::mqtt
