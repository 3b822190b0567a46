// service_client (include/twinhub/service_client.hpp): the C2D sender and the feedback receiver on
// the SDK's shared AMQP connection (client/amqp_connection.hpp: TLS, Proton driver, CBS). Public
// calls post a start function to its I/O thread and wait for its one completion (or their timeout).
#include "twinhub/service_client.hpp"

#include "client/amqp_connection.hpp"
#include "client/hub_error.hpp"
#include "client/service_json.hpp"
#include "common/encoding.hpp"

#include <proton/delivery.h>
#include <proton/delivery.hpp>
#include <proton/disposition.h>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/receiver_options.hpp>
#include <proton/timestamp.hpp>
#include <proton/tracker.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <optional>

namespace twinhub {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// A feedback batch the hub locked for us is held locally at most this long before it is handed out;
// older ones are released (the hub's lock is 60 s), so the hub's copy is the one that counts.
constexpr auto feedback_hold = std::chrono::seconds(30);

// proton::tracker keeps its pn_delivery_t protected; the rejection's error condition needs the C API.
struct raw_tracker : proton::tracker {
    static pn_delivery_t* of(const proton::tracker& t) { return static_cast<const raw_tracker&>(t).pn_object(); }
};

std::string tag_key(const proton::binary& tag) { return std::string(tag.begin(), tag.end()); }

using client::body_bytes;

}  // namespace

struct service_client::impl final : client::amqp_connection {
    std::optional<proton::sender> c2d_tx;
    std::optional<proton::receiver> fb_rx;

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

    explicit impl(client::amqp_settings s) : amqp_connection(std::move(s)) {}
    ~impl() override { stop(); }

    // ---- the shared connection's hooks ----
    void on_authorized() override {
        if (!c2d_tx) c2d_tx = session_->open_sender("/messages/devicebound");
    }
    bool links_ready() override { return c2d_tx && c2d_tx->active(); }
    void on_ready() override { flush_outbox(); }
    void reset_links() override {
        c2d_tx.reset();
        fb_rx.reset();
        feedback.clear();
    }
    void on_teardown(const error& why) override {
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
    }
    void on_link_sendable(proton::sender& s) override {
        if (c2d_tx && s.name() == c2d_tx->name()) flush_outbox();
    }
    bool on_link_message(proton::delivery& d, proton::message& m) override {
        if (!fb_rx || d.receiver().name() != fb_rx->name()) return false;
        feedback.push_back(held_batch{d, body_bytes(m), steady::now()});
        if (auto w = std::move(feedback_waiter)) {
            feedback_waiter = nullptr;
            w(result<void>{});
        }
        return true;
    }
    bool on_link_closed(const std::string& name, const proton::error_condition& c) override {
        if (!fb_rx || name != fb_rx->name()) return false;  // the C2D sender: fatal
        fb_rx.reset();
        feedback.clear();
        if (auto w = std::move(feedback_waiter)) {
            feedback_waiter = nullptr;
            w(condition_error(c, "the hub closed the feedback link"));
        }
        return true;
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
            if (state_ != phase::ready) return done(connection_lost("the connection to the hub was lost"));
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
            if (state_ != phase::ready) return wrapped(connection_lost("the connection to the hub was lost"));
            if (!fb_rx) {
                fb_rx = session_->open_receiver("/messages/serviceBound/feedback",
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
    auto s = client::amqp_settings_from(connection_string, std::move(options), "service_client");
    if (!s) return s.error();
    return service_client(std::make_unique<impl>(std::move(*s)));
}

result<void> service_client::connect() {
    auto* m = impl_.get();
    return m->call<void>([m](std::function<void(result<void>)> done) { m->open(std::move(done)); }, m->settings().options.timeout,
                         "the hub did not complete the AMQP connection in time");
}

void service_client::close() { impl_->close_sync(); }

bool service_client::connected() const { return impl_->connected(); }

const std::string& service_client::host_name() const { return impl_->settings().host; }

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
        m->settings().options.timeout, "the hub did not settle the message in time");
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
        timeout + m->settings().options.timeout, "the hub did not answer the feedback receive in time");
}

}  // namespace twinhub
