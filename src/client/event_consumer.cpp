// event_consumer (include/twinhub/event_consumer.hpp): the $management link pair and one receiver
// per partition on the SDK's shared AMQP connection (client/amqp_connection.hpp). Connecting goes
// CBS -> READ com.microsoft:eventhub (partition ids) -> partition receivers -> a second READ as a
// barrier: the hub handles attaches in order, so a receiver it refused (unknown consumer group) is
// detached before that reply arrives, and connect() reports the refusal rather than success.
#include "twinhub/event_consumer.hpp"

#include "auth/connection_string.hpp"
#include "client/amqp_connection.hpp"
#include "client/event_decode.hpp"
#include "common/encoding.hpp"

#include <proton/link.h>
#include <proton/terminus.h>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/delivery.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender_options.hpp>
#include <proton/source_options.hpp>
#include <proton/target_options.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <optional>

namespace twinhub {

namespace asio = boost::asio;

namespace {

// The built-in endpoint's Event Hub name: the hub's name (the first label of its host name), as in
// the Event Hubs-compatible connection string. IoT Hub's own "messages/events" address answers
// with amqp:link:redirect, so it is not used.
std::string builtin_entity_of(const std::string& host) { return auth::event_hub_name(host); }
constexpr std::uint64_t selector_descriptor = 0x0000468C00000004ULL;  // apache.org:selector-filter:string

// proton::receiver keeps its pn_link_t protected; the selector filter is a described value, which
// the C++ source options cannot express.
struct raw_receiver : proton::receiver {
    static pn_link_t* of(const proton::receiver& r) { return static_cast<const raw_receiver&>(r).pn_object(); }
};

void set_selector(const proton::receiver& r, const std::string& selector) {
    pn_data_t* f = pn_terminus_filter(pn_link_source(raw_receiver::of(r)));
    pn_data_clear(f);
    pn_data_put_map(f);
    pn_data_enter(f);
    const std::string key = "apache.org:selector-filter:string";
    pn_data_put_symbol(f, pn_bytes(key.size(), key.data()));
    pn_data_put_described(f);
    pn_data_enter(f);
    pn_data_put_ulong(f, selector_descriptor);
    pn_data_put_string(f, pn_bytes(selector.size(), selector.data()));
    pn_data_exit(f);
    pn_data_exit(f);
}

std::string selector_for(const event_position& p) {
    using k = event_position::kind;
    switch (p.what) {
        case k::earliest: return "amqp.annotation.x-opt-offset > '-1'";
        case k::latest: return "amqp.annotation.x-opt-offset > '@latest'";
        case k::enqueued_time: {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.enqueued_time.time_since_epoch()).count();
            return "amqp.annotation.x-opt-enqueued-time > '" + std::to_string(ms) + "'";
        }
        case k::sequence_number:
            return std::string("amqp.annotation.x-opt-sequence-number ") + (p.inclusive ? ">=" : ">") + " '" +
                   std::to_string(p.sequence_number) + "'";
    }
    return {};
}

}  // namespace

struct event_consumer::impl final : client::amqp_connection {
    event_consumer_options opts;
    std::string reply_address = "twinhub-mgmt-" + random_hex(6);

    // ---- I/O-thread state ----
    std::optional<proton::sender> mgmt_tx;
    std::optional<proton::receiver> mgmt_rx;
    using reply_fn = std::function<void(result<proton::message>)>;
    std::map<std::string, reply_fn> mgmt_pending;  // by request message id
    std::deque<proton::message> mgmt_out;          // waiting for credit
    bool links_up = false;                         // the barrier READ came back

    event_hub_properties hub;
    struct reader {
        proton::receiver link;
        std::string partition;
    };
    std::map<std::string, reader> readers;                  // by link name
    std::map<std::string, std::int64_t> handed_out;         // partition -> last sequence number returned
    std::deque<std::pair<std::string, event_data>> buffer;  // (link name, event), arrival order

    struct waiter {
        std::shared_ptr<bool> live;
        std::function<void(result<std::optional<event_data>>)> done;
    };
    std::deque<waiter> waiters;

    impl(client::amqp_settings s, event_consumer_options o) : amqp_connection(std::move(s)), opts(std::move(o)) {}
    ~impl() override { stop(); }

    // ---- the shared connection's hooks ----
    void on_authorized() override {
        const std::string addr = builtin_entity_of(settings().host) + "/$management";
        mgmt_tx = session_->open_sender(addr);
        proton::source_options src;
        src.address(addr);
        proton::target_options tgt;
        tgt.address(reply_address);
        mgmt_rx = session_->open_receiver(addr, proton::receiver_options().source(src).target(tgt).credit_window(10));
        request_hub_info(true);
    }

    bool links_ready() override {
        if (!links_up) return false;
        for (auto& [_, r] : readers)
            if (!r.link.active()) return false;
        return true;
    }

    void reset_links() override {
        mgmt_tx.reset();
        mgmt_rx.reset();
        readers.clear();
        buffer.clear();
        mgmt_out.clear();
        links_up = false;
    }

    void on_teardown(const error& why) override {
        auto pending = std::move(mgmt_pending);
        mgmt_pending.clear();
        for (auto& [_, f] : pending) f(why);
        auto w = std::move(waiters);
        waiters.clear();
        for (auto& x : w)
            if (*x.live) x.done(why);
    }

    void on_link_sendable(proton::sender& s) override {
        if (mgmt_tx && s.name() == mgmt_tx->name()) flush_mgmt();
    }

    bool on_link_message(proton::delivery& d, proton::message& m) override {
        const std::string name = d.receiver().name();
        if (mgmt_rx && name == mgmt_rx->name()) {
            std::string cid;
            if (m.correlation_id().type() == proton::STRING) cid = proton::get<std::string>(m.correlation_id());
            auto it = mgmt_pending.find(cid);
            if (it == mgmt_pending.end()) return true;
            auto f = std::move(it->second);
            mgmt_pending.erase(it);
            f(m);
            return true;
        }
        auto it = readers.find(name);
        if (it == readers.end()) return false;
        buffer.emplace_back(name, client::decode_event(m, it->second.partition));
        asio::post(ioc, [this] { serve(); });  // hand out after dispatch
        return true;
    }

    bool on_link_closed(const std::string& name, const proton::error_condition& c) override {
        auto it = readers.find(name);
        if (it == readers.end()) return false;  // $management: fatal
        if (!failure_) {
            error e = condition_error(c, "the hub closed the receiver of partition " + it->second.partition);
            // Here amqp:not-found names the consumer group or Event Hub, not a device.
            if (c.name() == "amqp:not-found" || c.name() == "com.microsoft:argument-out-of-range")
                e.code = errc::not_found;
            failure_ = std::move(e);
        }
        return true;
    }

    // ---- $management ----
    void flush_mgmt() {
        while (mgmt_tx && mgmt_tx->active() && mgmt_tx->credit() > 0 && !mgmt_out.empty()) {
            mgmt_tx->send(mgmt_out.front());
            mgmt_out.pop_front();
        }
    }

    void request(std::string type, std::string partition, reply_fn done) {
        if (!mgmt_tx) return done(connection_lost("the $management link is not open"));
        proton::message m;
        const std::string id = random_hex(16);
        m.id(proton::message_id(id));
        m.reply_to(reply_address);
        m.properties().put("operation", std::string("READ"));
        m.properties().put("name", hub.name.empty() ? builtin_entity_of(settings().host) : hub.name);
        m.properties().put("type", std::move(type));
        if (!partition.empty()) m.properties().put("partition", std::move(partition));
        mgmt_pending[id] = std::move(done);
        mgmt_out.push_back(std::move(m));
        flush_mgmt();
    }

    // Checks a READ reply's status; the body on success.
    static result<proton::value> reply_body(const result<proton::message>& r) {
        if (!r) return r.error();
        const int status = client::int_property(*r, "status-code");
        if (status < 200 || status > 299) {
            std::string why = client::string_property(*r, "status-description");
            errc code = status == 401   ? errc::unauthorized
                        : status == 404 ? errc::not_found
                        : status == 400 ? errc::invalid_argument
                                        : errc::internal;
            return error{code, why.empty()
                                   ? "the hub answered the $management READ with status " + std::to_string(status)
                                   : why};
        }
        return r->body();
    }

    // During connect (`connecting`), the reply goes on to attach the receivers.
    void request_hub_info(bool connecting, std::function<void(result<event_hub_properties>)> done = {}) {
        request("com.microsoft:eventhub", {}, [this, connecting, done](result<proton::message> r) {
            auto body = reply_body(r);
            auto props = body ? client::decode_hub_properties(*body) : result<event_hub_properties>(body.error());
            if (connecting) {
                if (!props) {
                    if (!failure_) failure_ = props.error();
                } else {
                    hub = *props;
                    attach_readers();
                }
            }
            if (done) done(props);
        });
    }

    void attach_readers() {
        std::vector<std::string> wanted = opts.partitions.empty() ? hub.partition_ids : opts.partitions;
        for (const auto& p : wanted) {
            if (std::find(hub.partition_ids.begin(), hub.partition_ids.end(), p) == hub.partition_ids.end()) {
                if (!failure_) failure_ = error{errc::not_found, "the hub has no partition '" + p + "'"};
                return;
            }
        }
        for (const auto& p : wanted) {
            const std::string addr = hub.name + "/ConsumerGroups/" + opts.consumer_group + "/Partitions/" + p;
            proton::source_options src;
            src.address(addr);
            proton::receiver r = session_->open_receiver(
                addr, proton::receiver_options().source(src).credit_window(0).auto_accept(true));
            event_position pos = opts.start;
            if (auto it = opts.partition_start.find(p); it != opts.partition_start.end()) pos = it->second;
            if (auto it = handed_out.find(p); it != handed_out.end())
                pos = event_position::from_sequence_number(it->second);
            set_selector(r, selector_for(pos));
            r.add_credit(static_cast<int>(opts.prefetch));
            readers.emplace(r.name(), reader{r, p});
        }
        // The barrier: answered after the hub has handled (or refused) every attach above.
        request("com.microsoft:eventhub", {}, [this](result<proton::message> r) {
            if (auto b = reply_body(r); !b) {
                if (!failure_) failure_ = b.error();
                return;
            }
            links_up = true;
        });
    }

    // ---- receiving ----
    void receive(std::chrono::milliseconds timeout, std::function<void(result<std::optional<event_data>>)> done) {
        auto live = std::make_shared<bool>(true);
        auto timer = std::make_shared<asio::steady_timer>(ioc, timeout);
        auto wrapped = [live, timer, done](result<std::optional<event_data>> r) {
            if (!*live) return;
            *live = false;
            timer->cancel();
            done(std::move(r));
        };
        timer->async_wait([live, done, timer](boost::system::error_code) {
            if (!*live) return;
            *live = false;
            done(std::optional<event_data>{});
        });
        open([this, live, wrapped](result<void> r) {
            if (!*live) return;
            if (!r) return wrapped(r.error());
            waiters.push_back(waiter{live, wrapped});
            serve();
        });
    }

    // Hands buffered events to live waiters, granting one credit back per event.
    void serve() {
        while (!waiters.empty() && !*waiters.front().live) waiters.pop_front();
        bool granted = false;
        while (!buffer.empty() && !waiters.empty()) {
            auto [link, ev] = std::move(buffer.front());
            buffer.pop_front();
            auto w = std::move(waiters.front());
            waiters.pop_front();
            handed_out[ev.partition] = ev.sequence_number;
            if (auto it = readers.find(link); it != readers.end() && it->second.link.active()) {
                it->second.link.add_credit(1);
                granted = true;
            }
            w.done(std::optional<event_data>(std::move(ev)));
            while (!waiters.empty() && !*waiters.front().live) waiters.pop_front();
        }
        if (granted) pump();
    }
};

event_consumer::event_consumer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
event_consumer::event_consumer(event_consumer&&) noexcept = default;
event_consumer& event_consumer::operator=(event_consumer&&) noexcept = default;
event_consumer::~event_consumer() = default;

result<event_consumer> event_consumer::from_connection_string(std::string_view connection_string,
                                                              event_consumer_options options) {
    if (options.consumer_group.empty()) return error{errc::invalid_argument, "the consumer group is empty"};
    if (options.consumer_group.find('/') != std::string::npos)
        return error{errc::invalid_argument, "the consumer group '" + options.consumer_group + "' contains '/'"};
    if (options.prefetch < 1 || options.prefetch > 10000)
        return error{errc::invalid_argument, "prefetch must be between 1 and 10000"};
    auto s = client::amqp_settings_from(connection_string, options.service, "event_consumer");
    if (!s) return s.error();
    return event_consumer(std::make_unique<impl>(std::move(*s), std::move(options)));
}

result<void> event_consumer::connect() {
    auto* m = impl_.get();
    return m->call<void>([m](std::function<void(result<void>)> done) { m->open(std::move(done)); },
                         m->settings().options.timeout, "the hub did not complete the AMQP connection in time");
}

void event_consumer::close() {
    impl_->close_sync();
}

bool event_consumer::connected() const {
    return impl_->connected();
}

const std::string& event_consumer::host_name() const {
    return impl_->settings().host;
}

result<event_hub_properties> event_consumer::hub_properties() {
    if (auto c = connect(); !c) return c.error();
    auto* m = impl_.get();
    return m->call<event_hub_properties>(
        [m](std::function<void(result<event_hub_properties>)> done) { m->request_hub_info(false, std::move(done)); },
        m->settings().options.timeout, "the hub did not answer the $management READ in time");
}

result<std::vector<std::string>> event_consumer::partition_ids() {
    auto h = hub_properties();
    if (!h) return h.error();
    return std::move(h->partition_ids);
}

result<partition_properties> event_consumer::partition_info(std::string_view partition) {
    if (partition.empty()) return error{errc::invalid_argument, "a partition id is needed"};
    if (auto c = connect(); !c) return c.error();
    auto* m = impl_.get();
    return m->call<partition_properties>(
        [m, p = std::string(partition)](std::function<void(result<partition_properties>)> done) {
            m->request("com.microsoft:partition", p, [done](result<proton::message> r) {
                auto body = impl::reply_body(r);
                if (!body) return done(body.error());
                done(client::decode_partition_properties(*body));
            });
        },
        m->settings().options.timeout, "the hub did not answer the $management READ in time");
}

result<std::optional<event_data>> event_consumer::receive(std::chrono::milliseconds timeout) {
    auto* m = impl_.get();
    if (auto c = connect(); !c) return c.error();
    using out = std::optional<event_data>;
    // The generic deadline only backs up receive's own (which answers "none" at `timeout`).
    return m->call<out>([m, timeout](std::function<void(result<out>)> done) { m->receive(timeout, std::move(done)); },
                        timeout + m->settings().options.timeout, "the hub did not answer the receive in time");
}

}  // namespace twinhub
