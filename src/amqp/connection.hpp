// Internal to src/amqp: one AMQP connection. Bytes from the transport (TLS or WebSocket) go into
// Qpid Proton's connection driver; the driver calls back the handler below for every AMQP event;
// what the driver wants to send goes out through the transport, one write at a time.
//
// Threading: everything runs on the transport's executor (an io_pool context, or a strand). Other
// threads (the store's, the method router's) reach the connection only through post().
#pragma once

#include "amqp/address.hpp"
#include "amqp/server_state.hpp"
#include "common/fault_injection.hpp"
#include "methods/method_router.hpp"
#include "net/transport.hpp"

#include <proton/delivery.hpp>

#include "amqp/frame_filter.hpp"
#include "amqp/sasl_layer.hpp"
#include <proton/error_condition.hpp>
#include <proton/io/connection_driver.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/sender.hpp>
#include <proton/tracker.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace twinhub {
namespace service {
class c2d_service;
}
namespace amqp {

// Rejects and settles `d` with an AMQP error condition (the SDKs translate it into typed errors).
void reject_with(const proton::delivery& d, const char* condition, const std::string& description);
// The selector filter string of an Event Hubs receiver's source, if it has one.
std::optional<std::string> selector_filter(const proton::sender& s);
// "dev1" or "dev1/mod1", for logs and error texts.
std::string describe(const store::identity_key& id);
// Seconds since the Unix epoch (SAS token expiry checks).
std::int64_t unix_now();

class amqp_server::connection : public std::enable_shared_from_this<connection>, private proton::messaging_handler {
public:
    connection(std::unique_ptr<net::transport> t, std::shared_ptr<state> st);
    ~connection() override;

    void start();
    std::uint64_t number() const noexcept { return number_; }

    // ---- from any thread ----
    void deliver_desired(const store::identity_key& id, std::shared_ptr<const std::string> patch);
    // Closes the connection if it holds links or a grant of `id`.
    void revoke(const store::identity_key& id, std::string reason);
    // Keys of `id` (or, with no id, the policies) changed: re-verify the tokens put for it and close
    // the connection if one no longer verifies. Any thread.
    void recheck_credentials(std::optional<store::identity_key> id);
    void close(std::string condition, std::string reason);
    // Telemetry was committed to `partition`: Event Hubs readers of it send what they have credit for.
    void wake_readers(std::uint32_t partition);
    // A receiver with a higher epoch took this connection's Event Hubs reader `link` over: detach
    // it with amqp:link:stolen.
    void steal_reader(const std::string& link, std::int64_t by_epoch);
    // True when `id` has its method link pair open here; then queues `call` and returns true.
    bool deliver_method(const store::identity_key& id, methods::method_call call);

private:
    struct grant {
        std::int64_t expiry = 0;  // token se, Unix seconds
        std::string token;        // kept (never logged) to re-check it when keys or policies change
        bool x509 = false;        // granted for the TLS client certificate (x509_links.cpp), not a token
    };
    struct service_grant {
        std::string policy;
        std::uint32_t permissions = 0;
        std::int64_t expiry = 0;
        std::string token;     // kept (never logged) to re-check it when the policies change
        std::string resource;  // the audience's path, as the token was verified for it
    };
    struct receiver_info {
        link_address address;
        proton::receiver link;
    };

    template <class F>
    void post(F&& f);

    // I/O
    void read_more();
    void pump();
    void flush();
    void schedule_timer();
    void on_timer();
    void finish();
    void close_now(const std::string& condition, const std::string& reason);
    void finish_close();

    // proton::messaging_handler
    void on_connection_open(proton::connection& c) override;
    void on_connection_close(proton::connection& c) override;
    void on_transport_close(proton::transport& t) override;
    void on_transport_error(proton::transport& t) override;
    void on_session_open(proton::session& s) override;
    void on_receiver_open(proton::receiver& r) override;
    void on_sender_open(proton::sender& s) override;
    void on_receiver_close(proton::receiver& r) override;
    void on_sender_close(proton::sender& s) override;
    void on_receiver_detach(proton::receiver& r) override;
    void on_sender_detach(proton::sender& s) override;
    void on_message(proton::delivery& d, proton::message& m) override;
    void on_sendable(proton::sender& s) override;

    // links
    bool authorized(const link_address& a, std::string& why) const;
    // X.509 (x509_links.cpp): a device link of an identity with no grant yet, on a connection whose
    // TLS client presented a certificate, gets a grant when the certificate authenticates it (as
    // azure-iot-device-amqp uses x509: no SASL, no CBS put-token). False, with `why`, when the
    // certificate is refused; true when it was granted or there was nothing to try.
    bool grant_x509(const link_address& a, std::string& why);
    // True when the certificate still authenticates `id` (credentials re-check).
    bool x509_still_valid(const store::identity_key& id) const;
    void refuse(proton::link l, const char* condition, const std::string& why);
    void send(proton::sender s, proton::message m);
    void drain(proton::sender& s);
    void link_gone(const std::string& name, bool sender);
    void settle(proton::delivery d, const error* e);

    // Event Hubs-compatible endpoint (spec: iothub-amqp 5)
    struct eh_reader {
        proton::sender link;
        std::uint32_t partition = 0;
        std::uint64_t next = 0;  // the next sequence number to send
        eh_reader_key key;       // consumer group (lower case), partition
        std::uint64_t tag = 0;   // delivery tags of send_encoded
    };
    void eh_open(proton::sender& s, const link_address& a);
    // Closes `l` with amqp:link:redirect when it names IoT Hub's own "messages/events"; true then.
    bool eh_redirect(proton::link l, const link_address& a);
    void eh_forget(const std::string& link);
    void eh_forget_all();
    void eh_send(eh_reader& r);
    void management_request(proton::delivery& d, proton::message& m);
    // The first stream of the endpoint `entity` names (0: the built-in one); nullopt when unknown.
    std::optional<std::uint32_t> eh_entity(const std::string& entity) const;

    // Cloud-to-device (spec: iothub-amqp 3.1, 3.2, 4.4; c2d_links.cpp)
    struct c2d_link {
        proton::sender link;
        store::identity_key id;  // device receive links
        bool feedback = false;   // the service's /messages/serviceBound/feedback link
        std::uint64_t subscription = 0;
        bool files = false;      // the service's /messages/serviceBound/filenotifications link
    };
    struct c2d_unsettled {
        std::string link;
        store::identity_key id;
        std::string lock;  // message lock token, or feedback batch lock token, or notification lock
        bool feedback = false;
        bool files = false;
    };
    void c2d_open(proton::sender& s, const link_address& a);
    void files_open(proton::sender& s, const proton::sender_options& o);
    void c2d_pump(const std::string& link);
    void c2d_link_gone(const std::string& link);
    void c2d_release_all();
    void c2d_outcome(proton::tracker& t, int outcome);  // 0 accepted, 1 rejected, 2 released/other
    void service_send(proton::delivery& d, proton::message& m);
    void on_tracker_accept(proton::tracker& t) override;
    void on_tracker_reject(proton::tracker& t) override;
    void on_tracker_release(proton::tracker& t) override;
    void on_tracker_settle(proton::tracker& t) override;

    // requests
    void put_token(proton::delivery& d, proton::message& m);
    // Checks `token` for `audience_text` as CBS put-token does and records the grant; returns the
    // CBS status (200 or 400/401) and sets `description`.
    int apply_token(const std::string& audience_text, const std::string& token, std::string& description);
    void telemetry(const store::identity_key& id, proton::delivery& d, proton::message& m);
    // Fault injection (fault_links.cpp): true when the delivery was a fault request or refused by one.
    bool fault_requested(const store::identity_key& id, proton::delivery& d,
                         const std::vector<std::pair<std::string, std::string>>& app);
    void inject_fault(const store::identity_key& id, const std::string& link, const fault::request& f);
    void twin_request(const store::identity_key& id, proton::delivery& d, proton::message& m);
    void twin_reply(const store::identity_key& id, const proton::message& request, int status, std::string body,
                    std::optional<std::int64_t> version = {});
    void method_response(const store::identity_key& id, proton::message& m);
    void methods_ready(const store::identity_key& id);
    void methods_gone(const store::identity_key& id);

    std::unique_ptr<net::transport> transport_;
    std::shared_ptr<state> st_;
    const std::uint64_t number_;
    const std::string log_id_;
    proton::io::connection_driver driver_;
    boost::asio::steady_timer timer_;
    std::vector<char> read_buf_;
    std::vector<char> write_buf_;
    sasl_layer sasl_;        // answers a SASL layer itself (MSSBCBS, ANONYMOUS); see sasl_layer.hpp
    std::string sasl_in_;    // what sasl_ passes on, for filter_
    std::string sasl_out_;   // SASL frames for the client, written before Proton's output
    frame_filter filter_;
    std::string filtered_;
    // Deliveries waiting for the store (telemetry); only this strand touches them.
    std::map<std::uint64_t, proton::delivery> pending_;
    std::uint64_t next_pending_ = 0;
    bool writing_ = false;
    bool reading_ = false;
    bool finished_ = false;    // the transport is closed; proton objects are no longer touched
    bool opened_ = false;      // the AMQP open arrived
    bool authenticated_ = false;
    std::chrono::steady_clock::time_point connect_deadline_;
    std::chrono::steady_clock::time_point refuse_telemetry_until_{};  // fault injection
    std::string refuse_condition_, refuse_why_;
    bool closing_ = false;  // our close is sent; the socket goes at the peer's close or the deadline
    std::chrono::steady_clock::time_point close_deadline_;
    bool connection_closed_ = false;
    proton::error_condition close_condition_;

    std::map<store::identity_key, grant> grants_;
    std::optional<service_grant> service_;
    std::map<std::string, receiver_info> receivers_;  // by link name
    std::map<std::string, link_address> senders_;     // by link name
    std::optional<proton::sender> cbs_sender_;
    std::map<store::identity_key, proton::sender> twin_senders_;
    std::set<store::identity_key> desired_subscribed_;
    std::map<store::identity_key, proton::sender> method_senders_;
    std::map<std::string, std::deque<proton::message>> outbox_;  // by sender link name
    std::set<store::identity_key> claimed_;
    std::map<std::string, eh_reader> eh_readers_;         // by link name
    std::map<std::string, proton::sender> mgmt_senders_;  // by link name
    std::atomic<bool> wake_pending_{false};
    std::map<std::string, c2d_link> c2d_links_;            // by link name
    std::map<std::string, c2d_unsettled> c2d_unsettled_;  // by link name + '/' + delivery tag

    // deliver_method() reads this from other threads.
    mutable std::mutex methods_mu_;
    std::set<store::identity_key> methods_ready_;
};

template <class F>
void amqp_server::connection::post(F&& f) {
    boost::asio::post(transport_->executor(), [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
        if (self->finished_) return;
        f();
        self->pump();
    });
}

}  // namespace amqp
}  // namespace twinhub
