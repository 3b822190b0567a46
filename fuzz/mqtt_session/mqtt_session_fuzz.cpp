// Fuzzes the MQTT session state machine: a real mqtt::session (src/mqtt/session.cpp) on the hub's
// memory store, over an in-memory transport that feeds it a script decoded from the input:
// CONNECTs with valid and invalid credentials for several identities, SUBSCRIBE/UNSUBSCRIBE to
// twin, method and C2D filters (the identity's own and others'), PUBLISHes to twin GET, reported
// PATCH, telemetry and method-response topics at QoS 0/1, PUBACK, PINGREQ, DISCONNECT and garbage,
// each packet split at a fuzzed point across reads; and, between packets, service-side events:
// desired patches, C2D messages and direct-method requests for the connected identity and for
// others, key rotations. One input is one connection; the io_context runs on this thread and the
// store's completions are awaited with a barrier commit, so each run is deterministic.
//
// Properties: no crash or sanitizer report; the first packet the server writes is a CONNACK; after
// a refused CONNACK nothing else is written; a session connected as identity A never writes
// anything of another identity B (no C2D topic of B, no twin or C2D payload carrying B's marker),
// never reports a method response or telemetry as B's, and never changes B's twin.
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "mqtt/server_state.hpp"
#include "mqtt/session.hpp"
#include "net/transport.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "service/c2d_service.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "support/input_reader.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

using namespace twinhub;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr const char* host = "hub.fuzz.local";
constexpr std::size_t reset_every = 500;

[[noreturn]] void violated(const std::string& what) {
    std::fprintf(stderr, "mqtt_session_fuzz property violated: %s\n", what.c_str());
    std::abort();
}

struct identity {
    store::identity_key key;
    std::string marker;  // in its desired properties and C2D bodies; must never reach another identity
};
const std::array<identity, 3> identities{{{{"dev1", ""}, "MARK-dev1-ONLY"},
                                          {{"dev1", "mod1"}, "MARK-mod1-ONLY"},
                                          {{"dev2", ""}, "MARK-dev2-ONLY"}}};

std::string client_id_of(const store::identity_key& k) { return k.is_module() ? k.device_id + "/" + k.module_id : k.device_id; }

// A step of the script: bytes the client sends, or a service-side event run before the next read.
using step = std::variant<std::string, std::function<void()>>;

// The in-memory transport: reads take the script's chunks in order (a chunk larger than the read
// buffer is delivered over several reads); when the script is exhausted the read stays pending
// until finish() ends the stream. Writes are appended to `written`.
class script_transport final : public net::transport {
public:
    script_transport(asio::io_context& ioc, std::deque<step> script, std::string& written)
        : ioc_(ioc), script_(std::move(script)), written_(written) {}

    asio::any_io_executor executor() override { return ioc_.get_executor(); }
    void async_handshake(handshake_handler h) override {
        asio::post(ioc_, [h = std::move(h)] { h({}); });
    }
    void async_read_some(asio::mutable_buffer b, io_handler h) override {
        pending_read_ = std::move(h);
        buffer_ = b;
        asio::post(ioc_, [this] { serve_read(); });
    }
    void async_write(asio::const_buffer b, io_handler h) override {
        if (closed_) {
            asio::post(ioc_, [h = std::move(h)] { h(asio::error::broken_pipe, 0); });
            return;
        }
        written_.append(static_cast<const char*>(b.data()), b.size());
        asio::post(ioc_, [h = std::move(h), n = b.size()] { h({}, n); });
    }
    void close() override {
        closed_ = true;
        complete_read(asio::error::operation_aborted, 0);
    }
    const char* name() const noexcept override { return "fuzz"; }
    std::string remote() const override { return {}; }

    bool idle() const { return script_.empty() && offset_ == 0; }
    bool closed() const { return closed_; }
    // The client goes away: a pending read completes with end of stream.
    void finish() {
        finished_ = true;
        serve_read();
    }

private:
    void serve_read() {
        if (!pending_read_) return;
        if (closed_) return complete_read(asio::error::operation_aborted, 0);
        while (!script_.empty() && std::holds_alternative<std::function<void()>>(script_.front())) {
            auto f = std::get<std::function<void()>>(std::move(script_.front()));
            script_.pop_front();
            f();
            if (closed_ || !pending_read_) return;
        }
        if (script_.empty()) {
            if (finished_) complete_read(asio::error::eof, 0);
            return;
        }
        auto& chunk = std::get<std::string>(script_.front());
        const std::size_t n = std::min(buffer_.size(), chunk.size() - offset_);
        std::memcpy(buffer_.data(), chunk.data() + offset_, n);
        offset_ += n;
        if (offset_ == chunk.size()) {
            script_.pop_front();
            offset_ = 0;
        }
        complete_read({}, n);
    }
    void complete_read(boost::system::error_code ec, std::size_t n) {
        if (!pending_read_) return;
        auto h = std::move(pending_read_);
        pending_read_ = nullptr;
        asio::post(ioc_, [h = std::move(h), ec, n] { h(ec, n); });
    }

    asio::io_context& ioc_;
    std::deque<step> script_;
    std::string& written_;
    std::size_t offset_ = 0;
    io_handler pending_read_;
    asio::mutable_buffer buffer_;
    bool closed_ = false;
    bool finished_ = false;
};

// What the MQTT server's own observer does (src/mqtt/mqtt_server.cpp), for this fuzz's state.
class forwarding_observer final : public service::change_observer {
public:
    std::shared_ptr<mqtt::mqtt_server::state> st;
    void on_desired_change(const store::identity_key& id, const twin::desired_change& change) override {
        if (auto s = st->find(id))
            s->deliver_desired(std::make_shared<const std::string>(json::serialize(change.patch)), change.version);
    }
    void on_identity_revoked(const store::identity_key& id) override {
        if (auto s = st->find(id)) s->close("identity disabled or deleted");
    }
    void on_credentials_changed(const store::identity_key& id) override {
        st->credentials_epoch.fetch_add(1);
        if (auto s = st->find(id)) s->recheck_credentials();
    }
    void on_policies_changed() override { st->credentials_epoch.fetch_add(1); }
};

struct recording_methods final : mqtt::method_response_handler {
    std::vector<store::identity_key> responders;
    void on_method_response(const store::identity_key& id, const std::string&, int, const std::string&) override {
        responders.push_back(id);
    }
};

struct world {
    asio::io_context ioc{1};
    asio::ssl::context tls{asio::ssl::context::tls_server};
    forwarding_observer observer;
    recording_methods methods;
    std::unique_ptr<store::store> store = store::make_memory_store();
    std::unique_ptr<service::hub_service> hub;
    std::unique_ptr<service::c2d_service> c2d;
    std::shared_ptr<mqtt::mqtt_server::state> st;
    std::array<std::uint64_t, store::max_event_partitions> event_cursor{};
    int c2d_counter = 0;

    world() {
        auto h = service::hub_service::open(*store, service::hub_options{});
        if (!h) std::abort();
        hub = std::move(*h);
        service::c2d_options co;
        co.sweep_interval = std::chrono::milliseconds(0);
        auto c = service::c2d_service::open(*store, *hub, co);
        if (!c) std::abort();
        c2d = std::move(*c);
        mqtt::mqtt_options o;
        o.host_names = {host};
        o.connect_timeout = std::chrono::hours(1);  // deadlines are not what this target explores
        st = std::make_shared<mqtt::mqtt_server::state>(ioc, tls, *hub, o);
        st->c2d.store(c2d.get());
        st->methods.store(&methods);
        observer.st = st;
        hub->add_observer(&observer);
        for (const auto& id : identities) {
            if (id.key.is_module()) {
                registry::module_identity m;
                m.device_id = id.key.device_id;
                m.module_id = id.key.module_id;
                hub->create_module(m, [](auto) {});
            } else {
                registry::device_identity d;
                d.device_id = id.key.device_id;
                hub->create_device(d, [](auto) {});
            }
            barrier();
            patch_desired(id.key, id.marker);
        }
        barrier();
    }
    ~world() {
        for (auto& s : st->open_sessions()) s->close("reset");
        settle();
        c2d.reset();
        hub.reset();
        store->close();
    }

    // Every store write queued so far has completed (completions run in commit order).
    void barrier() {
        if (!store->commit_sync(store::write_batch{})) std::abort();
    }
    // Runs the io_context and the store until neither has anything left to do.
    void settle() {
        int quiet = 0;
        while (quiet < 2) {
            barrier();
            quiet = ioc.poll() == 0 ? quiet + 1 : 0;
        }
        ioc.restart();
    }

    void patch_desired(const store::identity_key& id, const std::string& value) {
        json::object desired;
        desired["owner"] = value;
        json::object props;
        props["desired"] = std::move(desired);
        json::object body;
        body["properties"] = std::move(props);
        hub->patch_twin(id, json::value(std::move(body)), "", [](auto) {});
    }
    void send_c2d(const identity& id) {
        service::c2d_outgoing m;
        m.body = id.marker + "-c2d-" + std::to_string(++c2d_counter);
        c2d->send(id.key, std::move(m), [](auto) {});
    }
    std::optional<std::int64_t> reported_version(const store::identity_key& id) const {
        auto t = hub->get_device_twin_view(id);
        if (!t) return std::nullopt;
        const auto* r = t->if_contains("reported");
        if (!r || !r->is_object()) return std::nullopt;
        const auto* v = r->as_object().if_contains("$version");
        if (!v || !v->is_int64()) return std::nullopt;
        return v->as_int64();
    }
    // Sources of the telemetry appended since the last call.
    std::vector<store::identity_key> new_event_sources() {
        std::vector<store::identity_key> out;
        for (std::uint32_t p = 0; p < store::max_event_partitions; ++p) {
            auto events = store->read_events(p, event_cursor[p], 100000);
            if (!events) continue;
            for (auto& e : *events) {
                out.push_back(e.source);
                event_cursor[p] = e.sequence_number + 1;
            }
        }
        return out;
    }
};

std::unique_ptr<world> g_world;
std::size_t g_inputs = 0;

std::string or_empty(result<std::string> r) { return r ? std::move(*r) : std::string(); }

std::string token_for(world& w, const store::identity_key& id, unsigned how) {
    auto creds = w.hub->credentials(id);
    std::string primary = creds ? creds->authentication.symmetric_key.primary_key : "AAAA";
    std::string secondary = creds ? creds->authentication.symmetric_key.secondary_key : "AAAA";
    const auto resource = percent_encode(auth::identity_resource(host, id.device_id, id.module_id));
    const auto se = auth::to_unix_seconds(now()) + 3600;
    switch (how) {
    case 0:
    case 1: return or_empty(auth::generate_sas_token(resource, primary, se));
    case 2: return or_empty(auth::generate_sas_token(resource, secondary, se));
    case 3: return or_empty(auth::generate_sas_token(resource, primary, auth::to_unix_seconds(now()) - 5));
    case 4: {  // the device policy's key with skn
        for (const auto& p : w.hub->policies())
            if (p.key_name == "device") return or_empty(auth::generate_sas_token(resource, p.primary_key, se, "device"));
        return "";
    }
    case 5: {  // signed for this resource with another identity's key
        auto other = w.hub->credentials(identities[2].key);
        return or_empty(auth::generate_sas_token(resource, other ? other->authentication.symmetric_key.primary_key : "AAAA", se));
    }
    default: return "SharedAccessSignature sr=" + resource + "&sig=bad&se=" + std::to_string(se);
    }
}

// The topics a client may publish to, for identity `self`.
std::string publish_topic(fuzz::input_reader& in, const identity& self, const identity& other) {
    const std::string rid = std::to_string(in.range<int>(0, 99));
    auto events_of = [](const store::identity_key& k) {
        return k.is_module() ? "devices/" + k.device_id + "/modules/" + k.module_id + "/messages/events/"
                             : "devices/" + k.device_id + "/messages/events/";
    };
    switch (in.range<unsigned>(0, 8)) {
    case 0: return "$iothub/twin/GET/?$rid=" + rid;
    case 1: return "$iothub/twin/PATCH/properties/reported/?$rid=" + rid;
    case 2: return events_of(self.key);
    case 3: return events_of(self.key) + "%24.ct=application%2Fjson&%24.ce=utf-8&k=" + in.str(12);
    case 4: return events_of(other.key);
    case 5: return "$iothub/methods/res/" + std::to_string(in.range<int>(100, 599)) + "/?$rid=" + rid;
    case 6: return "$iothub/methods/res/200/?$rid=" + in.str(8);
    case 7: return "$iothub/twin/PATCH/properties/reported/?$rid=" + rid + "&$version=" + rid;
    default: return in.str(48);
    }
}

std::string subscribe_filter(fuzz::input_reader& in, const identity& self, const identity& other) {
    auto c2d_of = [](const store::identity_key& k) {
        return k.is_module() ? "devices/" + k.device_id + "/modules/" + k.module_id + "/inputs/#"
                             : "devices/" + k.device_id + "/messages/devicebound/#";
    };
    switch (in.range<unsigned>(0, 7)) {
    case 0: return "$iothub/twin/res/#";
    case 1: return "$iothub/twin/PATCH/properties/desired/#";
    case 2: return "$iothub/methods/POST/#";
    case 3: return c2d_of(self.key);
    case 4: return c2d_of(other.key);
    case 5: return "#";
    case 6: return "devices/" + self.key.device_id + "/messages/devicebound/%24.to=x";
    default: return in.str(40);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::set_level(log::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (!g_world || ++g_inputs % reset_every == 0) {
        g_world.reset();
        g_world = std::make_unique<world>();
    }
    world& w = *g_world;
    fuzz::input_reader in(data, size);

    // Who this connection claims to be, and who "someone else" is.
    const identity& self = identities[in.range<std::size_t>(0, identities.size() - 1)];
    const identity& other = identities[(&self - identities.data() + 1 + in.range<std::size_t>(0, 1)) %
                                       identities.size()];

    std::deque<step> script;
    auto add_packet = [&](const mqtt::packet& p) {
        std::string bytes = mqtt::to_bytes(p);
        const std::size_t cut = in.range<unsigned>(0, 255) * bytes.size() / 255;  // 0 and 255: whole
        if (cut > 0 && cut < bytes.size()) {
            script.emplace_back(bytes.substr(0, cut));
            script.emplace_back(bytes.substr(cut));
        } else {
            script.emplace_back(std::move(bytes));
        }
    };
    std::uint16_t next_pid = 1;
    for (int n = 0; n < 24 && in.remaining_bytes() > 0; ++n) {
        switch (in.range<unsigned>(0, 13)) {
        case 0:
        case 1: {
            mqtt::connect c;
            const unsigned who = in.range<unsigned>(0, 5);
            const store::identity_key& claimed = who == 5 ? other.key : self.key;
            c.client_id = who == 4 ? in.str(24) : client_id_of(claimed);
            const unsigned user = in.range<unsigned>(0, 4);
            if (user == 0) c.username = std::string(host) + "/" + client_id_of(self.key) + "/?api-version=2021-04-12";
            else if (user == 1) c.username = std::string(host) + "/" + client_id_of(self.key) + "/?api-version=2021-04-12&model-id=dtmi:x;1";
            else if (user == 2) c.username = "other.host/" + client_id_of(self.key) + "/?api-version=2021-04-12";
            else if (user == 3) c.username = in.str(48);
            if (user != 4 || in.flag()) c.password = token_for(w, self.key, in.range<unsigned>(0, 6));
            c.clean_session = in.flag();
            c.keep_alive = in.integral<std::uint16_t>();
            if (in.range<unsigned>(0, 7) == 0) c.protocol_level = 3;
            add_packet(c);
            break;
        }
        case 2: {
            mqtt::subscribe s;
            s.packet_id = next_pid++;
            for (unsigned k = in.range<unsigned>(1, 3); k > 0; --k)
                s.subscriptions.push_back({subscribe_filter(in, self, other),
                                           static_cast<mqtt::qos>(in.range<unsigned>(0, 2))});
            add_packet(s);
            break;
        }
        case 3:
        case 4: {
            mqtt::publish p;
            p.topic = publish_topic(in, self, other);
            p.qos = static_cast<mqtt::qos>(in.range<unsigned>(0, 1));
            if (p.qos != mqtt::qos::at_most_once) p.packet_id = next_pid++;
            if (next_pid == 0) next_pid = 1;
            p.payload = in.flag() ? R"({"temp":21,"nested":{"a":null}})" : in.str(96);
            add_packet(p);
            break;
        }
        case 5: add_packet(mqtt::puback{in.range<std::uint16_t>(0, 20)}); break;
        case 6: add_packet(mqtt::pingreq{}); break;
        case 7: {
            mqtt::unsubscribe u;
            u.packet_id = next_pid++;
            u.filters.push_back(subscribe_filter(in, self, other));
            add_packet(u);
            break;
        }
        case 8: add_packet(mqtt::disconnect{}); break;
        case 9: script.emplace_back(in.bytes(in.range<unsigned>(0, 64))); break;  // garbage
        case 10: {
            const bool mine = in.flag();
            const identity& to = mine ? self : other;
            const std::string v = to.marker + "-" + std::to_string(in.integral<std::uint8_t>());
            script.emplace_back(std::function<void()>([&w, &to, v] { w.patch_desired(to.key, v); }));
            break;
        }
        case 11: {
            const identity& to = in.flag() ? self : other;
            script.emplace_back(std::function<void()>([&w, &to] { w.send_c2d(to); }));
            break;
        }
        case 12: {
            mqtt::method_request r;
            r.method_name = "reboot";
            r.rid = std::to_string(in.range<int>(1, 9));
            r.payload = in.flag() ? std::string("{\"delay\":1}") : std::string();
            script.emplace_back(std::function<void()>([&w, &self, r] {
                if (auto s = w.st->find(self.key)) s->deliver_method(r);
            }));
            break;
        }
        default: {  // rotate the identity's keys: a session authenticated with them must close
            const identity& to = in.flag() ? self : other;
            script.emplace_back(std::function<void()>([&w, &to] {
                if (to.key.is_module()) {
                    auto m = w.hub->get_module(to.key.device_id, to.key.module_id);
                    if (!m) return;
                    m->authentication.symmetric_key = {};
                    w.hub->update_module(*m, "*", [](auto) {});
                } else {
                    auto d = w.hub->get_device(to.key.device_id);
                    if (!d) return;
                    d->authentication.symmetric_key = {};
                    w.hub->update_device(*d, "*", [](auto) {});
                }
            }));
            break;
        }
        }
    }

    std::array<std::optional<std::int64_t>, identities.size()> reported_before;
    for (std::size_t i = 0; i < identities.size(); ++i) reported_before[i] = w.reported_version(identities[i].key);
    w.new_event_sources();
    w.methods.responders.clear();

    std::string written;
    auto t = std::make_unique<script_transport>(w.ioc, std::move(script), written);
    script_transport* transport = t.get();
    auto s = std::make_shared<mqtt::session>(std::move(t), w.st);
    s->start();
    w.settle();
    transport->finish();
    w.settle();
    if (!transport->closed()) violated("the session did not close when the stream ended");
    // Close with this input's session gone, so that store completions and C2D callbacks of a closed
    // session still run now and not in the next input.
    s.reset();
    w.settle();

    // ---- properties ----
    mqtt::decoder dec(1 << 24);
    dec.feed(written);
    bool first = true;
    bool refused = false;
    bool accepted = false;
    for (;;) {
        auto r = dec.next();
        if (!r) violated("the server wrote bytes that do not decode: " + r.error().message);
        if (!*r) break;
        const mqtt::packet& p = **r;
        if (std::getenv("TWINHUB_FUZZ_TRACE")) {
            const auto* pub = std::get_if<mqtt::publish>(&p);
            std::fprintf(stderr, "%s <- %s %s\n", client_id_of(self.key).c_str(), mqtt::to_string(mqtt::type_of(p)),
                         pub ? pub->topic.c_str() : "");
        }
        if (refused) violated("a packet after a refused CONNACK");
        if (first && !std::holds_alternative<mqtt::connack>(p)) violated("first packet written is not CONNACK");
        first = false;
        if (const auto* c = std::get_if<mqtt::connack>(&p)) {
            if (accepted) violated("a second CONNACK");
            if (c->return_code == mqtt::connect_return_code::accepted) accepted = true;
            else refused = true;
        }
        if (const auto* pub = std::get_if<mqtt::publish>(&p)) {
            for (const auto& id : identities) {
                if (id.key == self.key) continue;
                if (pub->payload.find(id.marker) != std::string::npos || pub->topic.find(id.marker) != std::string::npos)
                    violated("a PUBLISH to " + client_id_of(self.key) + " carries data of " + client_id_of(id.key) +
                             ": " + pub->topic);
                const std::string c2d_prefix =
                    id.key.is_module() ? "devices/" + id.key.device_id + "/modules/" + id.key.module_id + "/inputs/"
                                       : "devices/" + id.key.device_id + "/messages/devicebound";
                if (pub->topic.starts_with(c2d_prefix)) violated("C2D topic of another identity: " + pub->topic);
            }
        }
    }
    if (dec.buffered() != 0) violated("a partial packet was written");
    for (const auto& id : w.methods.responders)
        if (id != self.key) violated("a method response reported as " + client_id_of(id));
    for (const auto& src : w.new_event_sources())
        if (src != self.key) violated("telemetry recorded as " + client_id_of(src));
    if (!accepted && !w.methods.responders.empty()) violated("a method response without an accepted CONNECT");
    for (std::size_t i = 0; i < identities.size(); ++i) {
        if (identities[i].key == self.key) continue;
        if (w.reported_version(identities[i].key) != reported_before[i])
            violated("reported properties of " + client_id_of(identities[i].key) + " changed");
    }
    return 0;
}
