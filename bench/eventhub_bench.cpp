// The built-in Event Hubs-compatible endpoint of a running twinhubd (docs/benchmarks.md, "Event
// Hubs-compatible endpoint"); bench/eventhub_bench.sh starts the hub and mosquitto and runs it.
// Subcommands (common options: --connection-string CS --ca-file CA --https-port P --mqtt-port Q
// --amqp-port A, --key K: the devices' symmetric key):
//   devices  --prefix b --count N        creates devices {prefix}0..N-1 with key K (SDK registry_manager).
//   latency  --devices D --rate R --seconds S --payload B [--mosquitto-port M]
//            D MQTT/TLS devices b0..D-1 publish QoS 1 telemetry (pipelined: PUBACKs read beside the
//            writes) on an open-loop schedule of R msgs/s in total; one AMQP receiver (Qpid Proton,
//            TLS, CBS put-token with the connection string's policy) reads every partition of the
//            built-in endpoint from @latest. Latency = receipt at the AMQP receiver - scheduled send
//            time (both in this process). With M: the same publishers against mosquitto (topic
//            bench/{i}) and one MQTT subscriber to bench/# at QoS 1, same schedule and payload.
//   read     --events N --devices D --window W --credit C --payload B [--partitions 4]
//            Pre-fills one partition: D devices whose ids hash to partition 0 publish N events in
//            total over MQTT (W in flight each); then a Proton receiver attaches to that partition
//            from earliest with link credit C and reads until it has all N (in sequence order).
//            --prefill 0 skips the pre-fill (a second read of the same events, e.g. under a profiler).
//            --check-every K checks the sequence number of every K-th event only (default 1: all).
//   store-read --db F --partition P --events N [--page 256]
//            Reads N events of partition P through the SQLite store directly (read-only, beside the
//            running hub), in pages as the hub's AMQP sender reads them: the baseline of `read`.
// Output: lines of key=value results on stdout.
#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "store/sqlite_store.hpp"
#include "twinhub/registry_manager.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <proton/link.h>
#include <proton/terminus.h>
#include <proton/annotation_key.hpp>
#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/scalar.hpp>
#include <proton/sender.hpp>
#include <proton/session.hpp>
#include <proton/source_options.hpp>
#include <proton/ssl.hpp>
#include <proton/work_queue.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <deque>
#include <functional>
#include <limits>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace twinhub;
using namespace std::chrono_literals;

namespace {

using args = std::map<std::string, std::string>;
std::string arg(const args& a, const std::string& k, const std::string& d = "") {
    auto it = a.find(k);
    return it == a.end() ? d : it->second;
}
long num(const args& a, const std::string& k, long d) { return std::stol(arg(a, k, std::to_string(d))); }

std::int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count(); }

double cpu_seconds(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return -1;
    auto close = line.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::atof(field.c_str());
        if (i == 15) stime = std::atof(field.c_str());
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A body of `size` bytes (at least 20) that starts with the time `t_ns` in 20 digits.
std::string stamped_body(std::int64_t t_ns, long size) {
    char head[32];
    std::snprintf(head, sizeof head, "%020lld", static_cast<long long>(t_ns));
    std::string b(head);
    if (size > 20) b.append(static_cast<std::size_t>(size - 20), 'p');
    return b;
}
std::int64_t stamp_of(std::string_view body) {
    if (body.size() < 20) return -1;
    return std::atoll(std::string(body.substr(0, 20)).c_str());
}

// The sequence number annotation (decoding the annotations costs the reader about as much CPU as
// the rest of the message: --check-every).
std::int64_t sequence_of(const proton::message& m) {
    static const proton::annotation_key key(proton::symbol("x-opt-sequence-number"));
    auto v = m.message_annotations().get(key);
    return v.empty() ? -1 : proton::coerce<std::int64_t>(v);
}
std::int64_t stamp_of(const proton::message& m) {
    const auto& b = m.body();
    if (b.type() == proton::BINARY) {
        auto bin = proton::get<proton::binary>(b);
        return stamp_of(std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
    }
    if (b.type() == proton::STRING) return stamp_of(proton::get<std::string>(b));
    return -1;
}

struct latencies {
    std::mutex mu;
    std::vector<double> ms;
    std::atomic<long> received{0};
    void add(std::int64_t stamp) {
        const auto t = now_ns();
        received.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(mu);
        ms.push_back(static_cast<double>(t - stamp) / 1e6);
    }
    std::string summary() {
        std::lock_guard lock(mu);
        auto v = ms;
        std::sort(v.begin(), v.end());
        auto pct = [&](double p) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))]; };
        char out[160];
        std::snprintf(out, sizeof out, "received=%zu p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f", v.size(), pct(0.50), pct(0.99),
                      pct(0.999), v.empty() ? 0.0 : v.back());
        return out;
    }
};

// ---------------------------------------------------------------- MQTT/TLS client

// One connection on a single-threaded io_context: publishes are queued and written back to back
// (QoS 1, many in flight), and a read loop counts PUBACKs and hands incoming PUBLISHes (PUBACKed) to
// a callback.
class mqtt_client : public std::enable_shared_from_this<mqtt_client> {
public:
    mqtt_client(asio::io_context& ioc, asio::ssl::context& tls) : stream_(ioc, tls) {}

    std::function<void()> on_ack;                          // after each PUBACK
    std::function<void(const mqtt::publish&)> on_publish;  // each received PUBLISH
    long acked = 0;
    std::deque<std::int64_t> stamps;  // publish_stamped: the stamps of PUBLISHes not yet PUBACKed

    awaitable<void> open(const std::string& addr, unsigned short port, const std::string& sni, mqtt::connect con,
                         const std::string& filter) {
        auto& sock = stream_.next_layer();
        co_await sock.async_connect(tcp::endpoint(asio::ip::make_address(addr), port), use_awaitable);
        sock.set_option(tcp::no_delay(true));
        if (!sni.empty()) SSL_set_tlsext_host_name(stream_.native_handle(), sni.c_str());
        co_await stream_.async_handshake(asio::ssl::stream_base::client, use_awaitable);
        queue(con);
        auto ack = co_await next();
        if (!std::holds_alternative<mqtt::connack>(ack) || std::get<mqtt::connack>(ack).return_code != mqtt::connect_return_code::accepted)
            throw std::runtime_error("CONNECT refused");
        if (!filter.empty()) {
            mqtt::subscribe sub;
            sub.packet_id = 1;
            sub.subscriptions.push_back({filter, mqtt::qos::at_least_once});
            queue(sub);
            if (!std::holds_alternative<mqtt::suback>(co_await next())) throw std::runtime_error("no SUBACK");
        }
        asio::co_spawn(stream_.get_executor(), read_loop(shared_from_this()), asio::detached);
    }

    void publish(const std::string& topic, std::string body) {
        mqtt::publish p;
        p.qos = mqtt::qos::at_least_once;
        p.topic = topic;
        p.packet_id = next_id_ = static_cast<mqtt::packet_id>(next_id_ == 65535 ? 1 : next_id_ + 1);
        p.payload = std::move(body);
        queue(p);
    }

    // publish(), remembering `stamp` until its PUBACK (the hub acknowledges a connection's QoS 1
    // messages in order).
    void publish_stamped(const std::string& topic, std::int64_t stamp, long payload) {
        stamps.push_back(stamp);
        publish(topic, stamped_body(stamp, payload));
    }

    void close() {
        stopping_ = true;
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            boost::system::error_code ec;
            self->stream_.next_layer().close(ec);
        });
    }

private:
    void queue(const mqtt::packet& p) {
        mqtt::encode(p, pending_);
        if (!writing_) write_some();
    }
    void write_some() {
        if (pending_.empty()) return;
        writing_ = true;
        out_.swap(pending_);
        pending_.clear();
        asio::async_write(stream_, asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            self->writing_ = false;
            self->out_.clear();
            if (ec) {
                if (!self->stopping_) std::fprintf(stderr, "mqtt write: %s\n", ec.message().c_str());
                return;
            }
            self->write_some();
        });
    }
    awaitable<mqtt::packet> next() {
        for (;;) {
            auto r = decoder_.next();
            if (!r) throw std::runtime_error("bad packet: " + r.error().message);
            if (*r) co_return std::move(**r);
            std::size_t n = co_await stream_.async_read_some(asio::buffer(buf_), use_awaitable);
            decoder_.feed(buf_, n);
        }
    }
    static awaitable<void> read_loop(std::shared_ptr<mqtt_client> self) {
        try {
            for (;;) {
                auto p = co_await self->next();
                if (std::holds_alternative<mqtt::puback>(p)) {
                    ++self->acked;
                    if (self->on_ack) self->on_ack();
                } else if (auto* pub = std::get_if<mqtt::publish>(&p)) {
                    if (self->on_publish) self->on_publish(*pub);
                    if (pub->qos == mqtt::qos::at_least_once) self->queue(mqtt::puback{pub->packet_id});
                }
            }
        } catch (const std::exception& e) {
            if (!self->stopping_) std::fprintf(stderr, "mqtt read: %s\n", e.what());
        }
    }

    asio::ssl::stream<tcp::socket> stream_;
    mqtt::decoder decoder_{1 << 20};
    char buf_[16 * 1024];
    std::string pending_, out_;
    bool writing_ = false, stopping_ = false;
    mqtt::packet_id next_id_ = 0;
};

// N connected clients on one io_context thread.
struct fleet {
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    std::vector<std::shared_ptr<mqtt_client>> conns;
    std::atomic<int> ready{0}, failed{0};
    std::thread runner;

    // Device i's CONNECT is make_connect(i); filter: subscribe to it.
    bool connect(int n, asio::ssl::context& tls, const std::string& addr, unsigned short port, const std::string& sni,
                 const std::function<mqtt::connect(int)>& make_connect, const std::string& filter = "") {
        for (int i = 0; i < n; ++i) {
            auto c = std::make_shared<mqtt_client>(ioc, tls);
            conns.push_back(c);
            asio::co_spawn(
                ioc, [this, c, addr, port, sni, con = make_connect(i), filter]() -> awaitable<void> {
                    co_await c->open(addr, port, sni, con, filter);
                    ++ready;
                },
                [this](std::exception_ptr e) {
                    if (!e) return;
                    ++failed;
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& x) {
                        std::fprintf(stderr, "mqtt connect: %s\n", x.what());
                    }
                });
        }
        runner = std::thread([this] { ioc.run(); });
        const auto t0 = steady::now();
        while (ready + failed < n && steady::now() - t0 < 60s) std::this_thread::sleep_for(10ms);
        return ready == n;
    }
    ~fleet() {
        for (auto& c : conns) c->close();
        work.reset();
        std::this_thread::sleep_for(100ms);
        ioc.stop();
        if (runner.joinable()) runner.join();
    }
};

// ---------------------------------------------------------------- AMQP receiver

constexpr std::uint64_t selector_descriptor = 0x0000468C00000004ULL;  // apache.org:selector-filter:string
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

// Partition receivers on the built-in endpoint ({hub}/ConsumerGroups/$Default/Partitions/{p}), as
// the Event Hubs SDKs attach them: TLS, SASL ANONYMOUS, a CBS put-token with the service policy,
// a selector filter for the start, a credit window (Proton tops it up as events are accepted).
class eh_receiver : public proton::messaging_handler {
public:
    struct config {
        std::string address = "127.0.0.1", host, ca_file, token, selector;
        unsigned short port = 5671;
        std::vector<std::string> partitions;
        int credit = 1000;
    };
    // on_event(partition index, message): on the container thread.
    eh_receiver(config c, std::function<void(std::size_t, const proton::message&)> on_event)
        : c_(std::move(c)), on_event_(std::move(on_event)) {}

    std::atomic<int> opened{0};
    std::atomic<bool> failed{false}, connected{false};
    std::atomic<std::int64_t> opened_ns{0};

    void on_container_start(proton::container& ct) override {
        proton::connection_options co;
        co.virtual_host(c_.host);
        co.sasl_enabled(true);
        co.sasl_allowed_mechs("ANONYMOUS");
        co.ssl_client_options(proton::ssl_client_options(c_.ca_file, proton::ssl::VERIFY_PEER));
        ct.connect("amqps://" + c_.address + ":" + std::to_string(c_.port), co);
    }
    void on_connection_open(proton::connection& conn) override {
        conn_ = conn;
        connected = true;
        session_ = conn.open_session();
        cbs_tx_ = session_.open_sender("$cbs");
        cbs_rx_ = session_.open_receiver("$cbs", proton::receiver_options().credit_window(10));
    }
    void on_sendable(proton::sender& s) override {
        if (s != cbs_tx_ || token_sent_) return;
        token_sent_ = true;
        proton::message m;
        m.id(proton::message_id(std::string("bench-cbs")));
        m.to("$cbs");
        m.reply_to("cbs");
        m.properties().put("operation", std::string("put-token"));
        m.properties().put("type", std::string("servicebus.windows.net:sastoken"));
        m.properties().put("name", c_.host);
        m.body(c_.token);
        cbs_tx_.send(m);
    }
    void on_receiver_open(proton::receiver& r) override {
        if (r == cbs_rx_) return;
        if (++opened == static_cast<int>(c_.partitions.size())) opened_ns = now_ns();
    }
    void on_message(proton::delivery& d, proton::message& m) override {
        if (d.receiver() == cbs_rx_) {
            if (proton::coerce<std::int64_t>(m.properties().get("status-code")) != 200) {
                std::fprintf(stderr, "put-token refused\n");
                failed = true;
                conn_.close();
                return;
            }
            const std::string hub = auth::event_hub_name(c_.host);
            for (std::size_t i = 0; i < c_.partitions.size(); ++i) {
                const std::string addr = hub + "/ConsumerGroups/$Default/Partitions/" + c_.partitions[i];
                proton::source_options src;
                src.address(addr);
                auto r = session_.open_receiver(addr, proton::receiver_options().source(src).credit_window(c_.credit));
                set_selector(r, c_.selector);
                index_[r.name()] = i;
            }
            return;
        }
        auto it = index_.find(d.receiver().name());
        on_event_(it == index_.end() ? 0 : it->second, m);
    }
    void on_error(const proton::error_condition& e) override {
        std::fprintf(stderr, "amqp receiver: %s\n", e.what().c_str());
        failed = true;
    }
    void close() {
        conn_.work_queue().add([this] { conn_.close(); });
    }

private:
    config c_;
    std::function<void(std::size_t, const proton::message&)> on_event_;
    proton::connection conn_;
    proton::session session_;
    proton::sender cbs_tx_;
    proton::receiver cbs_rx_;
    bool token_sent_ = false;
    std::map<std::string, std::size_t> index_;
};

// Runs an eh_receiver on its own container thread until destroyed.
struct receiver_thread {
    eh_receiver handler;
    proton::container container{handler};
    std::thread t;
    template <class F>
    receiver_thread(eh_receiver::config c, F&& f) : handler(std::move(c), std::forward<F>(f)) {
        t = std::thread([this] { container.run(); });
    }
    bool wait_open(std::size_t n) {
        const auto t0 = steady::now();
        while (handler.opened < static_cast<int>(n) && !handler.failed && steady::now() - t0 < 30s) std::this_thread::sleep_for(5ms);
        return handler.opened == static_cast<int>(n);
    }
    ~receiver_thread() {
        if (handler.connected) handler.close();
        std::this_thread::sleep_for(200ms);
        container.stop();
        t.join();
    }
};

// ---------------------------------------------------------------- common set-up

struct hub_target {
    auth::connection_string cs;
    std::string ca_file, key, address = "127.0.0.1";
    unsigned short https_port = 443, mqtt_port = 8883, amqp_port = 5671;
    long server_pid = 0;

    static hub_target from(const args& a) {
        hub_target h;
        auto cs = auth::parse_connection_string(arg(a, "connection-string"));
        if (!cs) throw std::runtime_error("bad --connection-string: " + cs.error().message);
        h.cs = *cs;
        h.ca_file = arg(a, "ca-file");
        h.key = arg(a, "key", base64_encode(std::string(32, 'k')));
        h.https_port = static_cast<unsigned short>(num(a, "https-port", 443));
        h.mqtt_port = static_cast<unsigned short>(num(a, "mqtt-port", 8883));
        h.amqp_port = static_cast<unsigned short>(num(a, "amqp-port", 5671));
        h.server_pid = num(a, "server-pid", 0);
        return h;
    }
    std::string service_token() const {
        return auth::generate_sas_token(percent_encode(cs.host_name), cs.key, auth::to_unix_seconds(now()) + 3600, cs.key_name).value();
    }
    mqtt::connect device_connect(const std::string& d) const {
        mqtt::connect con;
        con.keep_alive = 240;
        con.client_id = d;
        con.username = cs.host_name + "/" + d + "/?api-version=2021-04-12";
        con.password =
            auth::generate_sas_token(percent_encode(auth::identity_resource(cs.host_name, d)), key, auth::to_unix_seconds(now()) + 3600).value();
        return con;
    }
    eh_receiver::config receiver(std::vector<std::string> partitions, std::string selector, int credit) const {
        eh_receiver::config c;
        c.address = address;
        c.host = cs.host_name;
        c.ca_file = ca_file;
        c.token = service_token();
        c.port = amqp_port;
        c.partitions = std::move(partitions);
        c.selector = std::move(selector);
        c.credit = credit;
        return c;
    }
    int create_devices(const std::vector<std::string>& ids) const {
        service_options so;
        so.tls.ca_file = ca_file;
        so.port = https_port;
        auto rm = registry_manager::from_connection_string(format_service_connection_string(), so);
        if (!rm) return std::fprintf(stderr, "registry_manager: %s\n", rm.error().message.c_str()), 1;
        for (auto& id : ids) {
            auto d = rm->create_device(id, symmetric_keys{key, key});
            if (!d) return std::fprintf(stderr, "create %s: %s\n", id.c_str(), d.error().message.c_str()), 1;
        }
        return 0;
    }
    std::string format_service_connection_string() const {
        return auth::format_service_connection_string(cs.host_name, cs.key_name, cs.key);
    }
};

int cmd_devices(const args& a) {
    auto h = hub_target::from(a);
    std::vector<std::string> ids;
    for (long i = 0; i < num(a, "count", 1000); ++i) ids.push_back(arg(a, "prefix", "b") + std::to_string(i));
    const auto t0 = steady::now();
    if (int rc = h.create_devices(ids)) return rc;
    std::printf("devices_created=%zu seconds=%.2f\n", ids.size(), std::chrono::duration<double>(steady::now() - t0).count());
    return 0;
}

// Paced publishing: slot k (device k % D) due at start + k / rate, body stamped with its due time.
void paced(fleet& f, const std::vector<std::string>& topics, long rate, double seconds, long payload, std::atomic<long>& sent) {
    const auto start = steady::now() + 200ms;
    const long total = static_cast<long>(static_cast<double>(rate) * seconds);
    asio::co_spawn(
        f.ioc,
        [&f, &topics, &sent, rate, payload, start, total]() -> awaitable<void> {
            asio::steady_timer timer(f.ioc);
            const auto period = std::chrono::nanoseconds(1'000'000'000LL / rate);
            for (long k = 0; k < total;) {
                const auto due = start + period * k;
                if (steady::now() < due) {
                    timer.expires_at(due);
                    co_await timer.async_wait(use_awaitable);
                }
                // Every slot already due (a late wake-up sends the backlog at once, stamped with each
                // slot's due time: open loop).
                for (; k < total && start + period * k <= steady::now(); ++k) {
                    const std::size_t i = static_cast<std::size_t>(k) % f.conns.size();
                    f.conns[i]->publish_stamped(topics[i], (start + period * k).time_since_epoch().count(), payload);
                    ++sent;
                }
            }
        },
        asio::detached);
    std::this_thread::sleep_until(start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds)));
}

int cmd_latency(const args& a) {
    auto h = hub_target::from(a);
    const int devices = static_cast<int>(num(a, "devices", 100));
    const long rate = num(a, "rate", 5000), payload = num(a, "payload", 64);
    const double seconds = std::stod(arg(a, "seconds", "10"));
    asio::ssl::context tls{asio::ssl::context::tls_client};
    tls.load_verify_file(h.ca_file);
    tls.set_verify_mode(asio::ssl::verify_peer);
    int rc = 0;
    {
        latencies lat;
        std::atomic<bool> measuring{false};
        std::atomic<std::int64_t> from_ns{std::numeric_limits<std::int64_t>::max()};  // slots scheduled before: warm-up
        std::vector<std::string> parts;
        for (long p = 0; p < num(a, "partitions", store::default_event_partitions); ++p) parts.push_back(std::to_string(p));
        receiver_thread rt(h.receiver(parts, "amqp.annotation.x-opt-offset > '@latest'", 1000),
                           [&](std::size_t, const proton::message& m) {
                               if (!measuring) return;
                               const auto t = stamp_of(m);
                               if (t >= from_ns) lat.add(t);
                           });
        if (!rt.wait_open(parts.size())) return std::fprintf(stderr, "AMQP receivers did not open\n"), 1;
        fleet f;
        if (!f.connect(devices, tls, h.address, h.mqtt_port, h.cs.host_name,
                       [&](int i) { return h.device_connect("b" + std::to_string(i)); }))
            return std::fprintf(stderr, "MQTT devices did not connect\n"), 1;
        std::vector<std::string> topics;
        for (int i = 0; i < devices; ++i) topics.push_back("devices/b" + std::to_string(i) + "/messages/events/");
        // publish -> PUBACK: the durable commit alone, the reference for the receive latency.
        latencies acks;
        for (auto& c : f.conns)
            c->on_ack = [&acks, &measuring, &from_ns, c = c.get()] {
                if (c->stamps.empty()) return;
                const auto t = c->stamps.front();
                c->stamps.pop_front();
                if (measuring && t >= from_ns) acks.add(t);
            };
        std::atomic<long> warm{0}, sent{0};
        paced(f, topics, rate, 1.0, payload, warm);  // warm-up, not counted
        std::this_thread::sleep_for(500ms);
        from_ns = now_ns();
        measuring = true;
        const double cpu0 = h.server_pid ? cpu_seconds(h.server_pid) : -1;
        paced(f, topics, rate, seconds, payload, sent);
        std::this_thread::sleep_for(2s);  // late arrivals
        measuring = false;
        const double cpu = h.server_pid ? cpu_seconds(h.server_pid) - cpu0 : -1;
        std::printf("twinhub mqtt->eventhubs devices=%d rate=%ld payload=%ld sent=%ld %s lost=%ld hub_cpu_cores=%.2f\n", devices, rate,
                    payload, sent.load(), lat.summary().c_str(), sent.load() - lat.received.load(), cpu / (seconds + 2));
        std::printf("twinhub mqtt publish->puback (durable commit) %s\n", acks.summary().c_str());
        if (lat.received.load() != sent.load()) rc = 2;
    }
    if (const long mport = num(a, "mosquitto-port", 0)) {
        const long mpid = num(a, "mosquitto-pid", 0);
        asio::ssl::context mtls{asio::ssl::context::tls_client};
        mtls.set_verify_mode(asio::ssl::verify_none);
        latencies lat;
        std::atomic<bool> measuring{false};
        std::atomic<std::int64_t> from_ns{std::numeric_limits<std::int64_t>::max()};  // slots scheduled before: warm-up
        fleet sub;
        if (!sub.connect(1, mtls, h.address, static_cast<unsigned short>(mport), "", [](int) {
                mqtt::connect c;
                c.client_id = "bench-sub";
                return c;
            }, "bench/#"))
            return std::fprintf(stderr, "mosquitto subscriber did not connect\n"), 1;
        sub.conns[0]->on_publish = [&](const mqtt::publish& p) {
            if (!measuring) return;
            const auto t = stamp_of(p.payload);
            if (t >= from_ns) lat.add(t);
        };
        fleet f;
        if (!f.connect(devices, mtls, h.address, static_cast<unsigned short>(mport), "", [](int i) {
                mqtt::connect c;
                c.client_id = "bench" + std::to_string(i);
                return c;
            }))
            return std::fprintf(stderr, "mosquitto publishers did not connect\n"), 1;
        std::vector<std::string> topics;
        for (int i = 0; i < devices; ++i) topics.push_back("bench/" + std::to_string(i));
        std::atomic<long> warm{0}, sent{0};
        paced(f, topics, rate, 1.0, payload, warm);
        std::this_thread::sleep_for(500ms);
        from_ns = now_ns();
        measuring = true;
        const double cpu0 = mpid ? cpu_seconds(mpid) : -1;
        paced(f, topics, rate, seconds, payload, sent);
        std::this_thread::sleep_for(2s);
        measuring = false;
        const double cpu = mpid ? cpu_seconds(mpid) - cpu0 : -1;
        std::printf("mosquitto mqtt->mqtt-subscriber devices=%d rate=%ld payload=%ld sent=%ld %s lost=%ld broker_cpu_cores=%.2f\n", devices,
                    rate, payload, sent.load(), lat.summary().c_str(), sent.load() - lat.received.load(), cpu / (seconds + 2));
    }
    return rc;
}

int cmd_read(const args& a) {
    auto h = hub_target::from(a);
    const long events = num(a, "events", 500000), devices = num(a, "devices", 8), window = num(a, "window", 250),
               credit = num(a, "credit", 5000), payload = num(a, "payload", 64),
               partitions = num(a, "partitions", store::default_event_partitions),
               check_every = std::max(1L, num(a, "check-every", 1));
    if (num(a, "prefill", 1)) {
        // Devices whose events land in partition 0.
        std::vector<std::string> ids;
        for (int i = 0; static_cast<long>(ids.size()) < devices; ++i) {
            std::string id = "r" + std::to_string(i);
            if (store::partition_of(store::identity_key{id, ""}, static_cast<std::uint32_t>(partitions)) == 0) ids.push_back(id);
        }
        if (int rc = h.create_devices(ids)) return rc;
        asio::ssl::context tls{asio::ssl::context::tls_client};
        tls.load_verify_file(h.ca_file);
        tls.set_verify_mode(asio::ssl::verify_peer);
        {
            fleet f;
            if (!f.connect(static_cast<int>(devices), tls, h.address, h.mqtt_port, h.cs.host_name,
                           [&](int i) { return h.device_connect(ids[static_cast<std::size_t>(i)]); }))
                return std::fprintf(stderr, "MQTT devices did not connect\n"), 1;
            const long per = events / devices;
            std::atomic<long> done{0};
            const auto t0 = steady::now();
            asio::post(f.ioc, [&] {
                for (std::size_t i = 0; i < f.conns.size(); ++i) {
                    auto c = f.conns[i];
                    const std::string topic = "devices/" + ids[i] + "/messages/events/";
                    const long mine = per + (static_cast<long>(i) < events % devices ? 1 : 0);
                    auto sent = std::make_shared<long>(0);
                    auto send_one = [c, topic, payload, sent] {
                        c->publish(topic, stamped_body(now_ns(), payload));
                        ++*sent;
                    };
                    c->on_ack = [c, sent, mine, send_one, &done] {
                        ++done;
                        if (*sent < mine) send_one();
                    };
                    for (long k = 0; k < std::min(window, mine); ++k) send_one();
                }
            });
            while (done < events && steady::now() - t0 < 600s) std::this_thread::sleep_for(10ms);
            const double s = std::chrono::duration<double>(steady::now() - t0).count();
            std::printf("prefill partition=0 devices=%ld window=%ld events=%ld acknowledged=%ld seconds=%.2f events_per_s=%.0f\n", devices,
                        window, events, done.load(), s, static_cast<double>(done.load()) / s);
            if (done < events) return 1;
        }
    }
    std::this_thread::sleep_for(1s);
    std::atomic<long> got{0}, out_of_order{0};
    std::atomic<std::int64_t> done_ns{0};
    const double cpu0 = h.server_pid ? cpu_seconds(h.server_pid) : -1;
    const double self0 = cpu_seconds(getpid());
    const auto start_ns = now_ns();
    std::int64_t open_ns = 0;
    {
        receiver_thread rt(h.receiver({"0"}, "amqp.annotation.x-opt-offset > '-1'", static_cast<int>(credit)),
                           [&](std::size_t, const proton::message& m) {
                               if (got >= events) return;
                               // The partition was empty before: the i-th event has sequence number i.
                               if (got % check_every == 0 && sequence_of(m) != got) ++out_of_order;
                               if (++got == events) done_ns = now_ns();
                           });
        if (!rt.wait_open(1)) return std::fprintf(stderr, "AMQP receiver did not open\n"), 1;
        open_ns = rt.handler.opened_ns;
        while (got < events && now_ns() - start_ns < 120'000'000'000LL) std::this_thread::sleep_for(1ms);
    }
    const double cpu = h.server_pid ? cpu_seconds(h.server_pid) - cpu0 : -1;
    const double self = cpu_seconds(getpid()) - self0;
    const double s = static_cast<double>(done_ns - open_ns) / 1e9;
    std::printf("read partition=0 credit=%ld check_every=%ld events=%ld received=%ld out_of_order=%ld attach_ms=%.1f seconds=%.3f events_per_s=%.0f "
                "hub_cpu_us_per_event=%.2f reader_cpu_us_per_event=%.2f\n",
                credit, check_every, events, got.load(), out_of_order.load(), static_cast<double>(open_ns - start_ns) / 1e6, s,
                done_ns ? static_cast<double>(events) / s : 0.0, cpu * 1e6 / static_cast<double>(std::max(1L, got.load())),
                self * 1e6 / static_cast<double>(std::max(1L, got.load())));
    return got == events && out_of_order == 0 ? 0 : 2;
}

int cmd_store_read(const args& a) {
    store::sqlite_open_options so;
    so.read_only = true;
    auto st = store::open_sqlite_store(arg(a, "db"), so);
    if (!st) return std::fprintf(stderr, "open: %s\n", st.error().message.c_str()), 1;
    const auto partition = static_cast<std::uint32_t>(num(a, "partition", 0));
    const long events = num(a, "events", 500000);
    const auto page = static_cast<std::size_t>(num(a, "page", 256));
    auto info = (*st)->event_partition_info(partition);
    if (!info) return std::fprintf(stderr, "info: %s\n", info.error().message.c_str()), 1;
    std::uint64_t from = info->begin_sequence_number;
    long got = 0;
    std::size_t bytes = 0;
    const double cpu0 = cpu_seconds(getpid());
    const auto t0 = steady::now();
    while (got < events) {
        auto r = (*st)->read_events(partition, from, std::min<std::size_t>(page, static_cast<std::size_t>(events - got)));
        if (!r) return std::fprintf(stderr, "read: %s\n", r.error().message.c_str()), 1;
        if (r->empty()) break;
        for (auto& e : *r) bytes += e.body.size();
        got += static_cast<long>(r->size());
        from = r->back().sequence_number + 1;
    }
    const double s = std::chrono::duration<double>(steady::now() - t0).count();
    std::printf("store_read partition=%u page=%zu events=%ld bytes=%zu seconds=%.3f events_per_s=%.0f cpu_us_per_event=%.2f\n", partition,
                page, got, bytes, s, static_cast<double>(got) / s, (cpu_seconds(getpid()) - cpu0) * 1e6 / static_cast<double>(std::max(1L, got)));
    (*st)->close();
    return got == events ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: eventhub_bench devices|latency|read|store-read --option value ...\n";
        return 1;
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    args a;
    for (int i = 2; i + 1 < argc; i += 2) a[std::string(argv[i]).substr(2)] = argv[i + 1];
    const std::string cmd = argv[1];
    try {
        if (cmd == "devices") return cmd_devices(a);
        if (cmd == "latency") return cmd_latency(a);
        if (cmd == "read") return cmd_read(a);
        if (cmd == "store-read") return cmd_store_read(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    std::cerr << "unknown subcommand " << cmd << "\n";
    return 1;
}
