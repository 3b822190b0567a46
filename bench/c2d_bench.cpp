// Cloud-to-device messages through a running twinhubd (docs/benchmarks.md, "Cloud-to-device"):
// creates D devices (default 100), connects each over MQTT/TLS with our own Asio client on
// proto/mqtt, subscribes it to devices/{d}/messages/devicebound/# at QoS 1 and PUBACKs (completes)
// every message at once. Phases:
//   1. throughput through the C++ SDK: S sender threads (default 64) share C twinhub::service_client
//      instances (default 4; AMQP, /messages/devicebound) and call the synchronous send(), which
//      returns when the hub has durably queued the message; back to back for T seconds to devices
//      round robin; messages completed at the devices per second, and send -> device latency;
//   2. throughput through a sender written directly on Qpid Proton: one connection with W
//      unsettled deliveries in flight (--window, default 2,000; 0 skips the phase);
//   3. latency at a fixed rate through the SDK: R msgs/s (default 1,000) on a schedule (open loop;
//      latency from the scheduled time to the device's receipt).
// Reference in the same run (--mosquitto-port): the same D subscribers and S QoS 1 publishers, same
// payload, TLS, against mosquitto: synchronous publishers (each waits for its PUBACK), pipelined
// publishers (W / S publishes in flight each) and the fixed rate; reported as ratios.
// With --telemetry-devices K: AMQP (Proton, /devices/{d}/messages/events, device CBS token) vs MQTT
// QoS 1 telemetry ingest from K devices with W / K events in flight each, events/s acknowledged.
// Each message's body starts with its send (or scheduled) time, so latency needs one clock only.
//
// Usage: c2d_bench --connection-string CS --ca-file CA --https-port P --mqtt-port Q --amqp-port A
//                  [--mosquitto-port M] [--devices 100] [--senders 64] [--clients 4] [--seconds 10]
//                  [--rate 1000] [--payload 64] [--threads 2] [--window 2000] [--server-pid PID]
//                  [--mosquitto-pid PID] [--telemetry-devices 0]
// bench/c2d_bench.sh starts a hub (scripts/hub.sh) and mosquitto and runs this against them.
#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "twinhub/registry_manager.hpp"
#include "twinhub/service_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

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
#include <proton/ssl.hpp>
#include <proton/tracker.hpp>
#include <proton/work_queue.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
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

struct options {
    std::string connection_string;
    std::string ca_file;
    std::string address = "127.0.0.1";
    unsigned short https_port = 443;
    unsigned short mqtt_port = 8883;
    unsigned short amqp_port = 5671;
    unsigned short mosquitto_port = 0;
    int devices = 100;
    int senders = 64;
    int clients = 4;
    double seconds = 10;
    int rate = 1000;
    int payload = 64;
    int threads = 2;
    int server_pid = 0;
    int mosquitto_pid = 0;
    int window = 2000;          // unsettled deliveries in flight for the Proton sender (0: skip that phase)
    int telemetry_devices = 0;  // > 0: also AMQP vs MQTT telemetry ingest from this many devices
};

double process_cpu_seconds(int pid) {
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

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}
std::string device_name(int i) {
    return "c2d" + std::to_string(i);
}
std::string device_topic(int i) {
    return "devices/" + device_name(i) + "/messages/devicebound/";
}

// A body of `size` bytes (at least 20) that starts with the time `t_ns` in 20 digits.
std::string stamped_body(std::int64_t t_ns, int size) {
    char head[32];
    std::snprintf(head, sizeof head, "%020lld", static_cast<long long>(t_ns));
    std::string b(head);
    if (size > 20) b.append(static_cast<std::size_t>(size - 20), 'p');
    return b;
}

// What the devices saw: completions inside the measured window and their latencies.
struct stats {
    std::mutex mu;
    std::vector<double> latencies_ms;
    std::atomic<long> received{0};     // all messages the devices completed
    std::atomic<long> in_window{0};    // of those, completed inside [from, until)
    std::atomic<long> send_failed{0};  // sends the hub (or broker) did not accept
    std::atomic<std::int64_t> from_ns{0}, until_ns{0};

    void on_receive(std::int64_t stamp_ns) {
        const auto t = now_ns();
        received.fetch_add(1, std::memory_order_relaxed);
        if (t < from_ns.load(std::memory_order_relaxed) || t >= until_ns.load(std::memory_order_relaxed)) return;
        in_window.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(mu);
        latencies_ms.push_back(static_cast<double>(t - stamp_ns) / 1e6);
    }
    void open_window(steady::time_point from, steady::time_point until) {
        std::lock_guard lock(mu);
        latencies_ms.clear();
        in_window = 0;
        send_failed = 0;
        from_ns = from.time_since_epoch().count();
        until_ns = until.time_since_epoch().count();
    }
    double percentile(double p) {
        std::lock_guard lock(mu);
        if (latencies_ms.empty()) return 0;
        auto v = latencies_ms;
        auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
        std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
        return v[k];
    }
};

// One MQTT/TLS connection: a device receiving C2D messages (twinhub, or the same topics on
// mosquitto), or a QoS 1 publisher for the mosquitto reference.
class mqtt_conn : public std::enable_shared_from_this<mqtt_conn> {
public:
    mqtt_conn(asio::io_context& ioc, asio::ssl::context& tls, stats& st)
        : stream_(asio::make_strand(ioc), tls), st_(st) {}

    // Connects with `con` (SNI `host`) and, when `filter` is set, subscribes to it at QoS 1.
    awaitable<void> open(const options& o, unsigned short port, const std::string& host, mqtt::connect con,
                         const std::string& filter) {
        auto& sock = stream_.next_layer();
        co_await sock.async_connect(tcp::endpoint(asio::ip::make_address(o.address), port), use_awaitable);
        sock.set_option(tcp::no_delay(true));
        SSL_set_tlsext_host_name(stream_.native_handle(), host.c_str());
        co_await stream_.async_handshake(asio::ssl::stream_base::client, use_awaitable);
        co_await send(con);
        auto ack = co_await next();
        if (!std::holds_alternative<mqtt::connack>(ack) ||
            std::get<mqtt::connack>(ack).return_code != mqtt::connect_return_code::accepted)
            throw std::runtime_error("CONNECT refused");
        if (filter.empty()) co_return;
        mqtt::subscribe sub;
        sub.packet_id = 1;
        sub.subscriptions.push_back({filter, mqtt::qos::at_least_once});
        co_await send(sub);
        auto sack = co_await next();
        if (!std::holds_alternative<mqtt::suback>(sack)) throw std::runtime_error("no SUBACK");
    }

    // Receives until the connection closes, PUBACKing (completing) every QoS 1 message at once.
    awaitable<void> receive() {
        try {
            for (;;) {
                auto p = co_await next();
                auto* pub = std::get_if<mqtt::publish>(&p);
                if (!pub) continue;
                if (pub->payload.size() >= 20) st_.on_receive(std::atoll(pub->payload.substr(0, 20).c_str()));
                if (pub->qos == mqtt::qos::at_least_once) co_await send(mqtt::puback{pub->packet_id});
            }
        } catch (const std::exception& e) {
            if (!stopping_) std::fprintf(stderr, "receiver: %s\n", e.what());
        }
    }

    // One QoS 1 PUBLISH and its PUBACK (the mosquitto publisher).
    awaitable<void> publish(const std::string& topic, std::string body) {
        mqtt::publish p;
        p.qos = mqtt::qos::at_least_once;
        p.topic = topic;
        p.packet_id = next_id_ = static_cast<mqtt::packet_id>(next_id_ == 65535 ? 1 : next_id_ + 1);
        p.payload = std::move(body);
        co_await send(p);
        for (;;) {
            auto a = co_await next();
            if (std::holds_alternative<mqtt::puback>(a)) co_return;
        }
    }

    // `bodies.size()` QoS 1 PUBLISHes written at once, then their PUBACKs (a pipelined publisher).
    awaitable<void> publish_burst(const std::vector<std::string>& topics, std::vector<std::string> bodies) {
        std::string bytes;
        for (std::size_t i = 0; i < bodies.size(); ++i) {
            mqtt::publish p;
            p.qos = mqtt::qos::at_least_once;
            p.topic = topics[i];
            p.packet_id = next_id_ = static_cast<mqtt::packet_id>(next_id_ == 65535 ? 1 : next_id_ + 1);
            p.payload = std::move(bodies[i]);
            mqtt::encode(p, bytes);
        }
        co_await asio::async_write(stream_, asio::buffer(bytes), use_awaitable);
        for (std::size_t acked = 0; acked < bodies.size();) {
            auto a = co_await next();
            if (std::holds_alternative<mqtt::puback>(a)) ++acked;
        }
    }

    void stop() {
        stopping_ = true;
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            boost::system::error_code ec;
            self->stream_.next_layer().close(ec);
        });
    }

private:
    awaitable<void> send(const mqtt::packet& p) {
        std::string bytes;
        mqtt::encode(p, bytes);
        co_await asio::async_write(stream_, asio::buffer(bytes), use_awaitable);
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

    asio::ssl::stream<tcp::socket> stream_;
    stats& st_;
    mqtt::decoder decoder_;
    char buf_[16 * 1024];
    mqtt::packet_id next_id_ = 0;
    bool stopping_ = false;
};

// The D receivers (and, for mosquitto, S publishers) on one io_context run by `threads` threads.
struct mqtt_fleet {
    asio::io_context ioc;
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    std::vector<std::shared_ptr<mqtt_conn>> conns;
    std::vector<std::thread> pool;
    std::atomic<int> ready{0}, failed{0};

    void start(int threads) {
        for (int t = 0; t < threads; ++t) pool.emplace_back([this] { ioc.run(); });
    }
    bool wait_ready(int n) {
        const auto t0 = steady::now();
        while (ready + failed < n && steady::now() - t0 < 60s) std::this_thread::sleep_for(10ms);
        return ready == n;
    }
    ~mqtt_fleet() {
        for (auto& c : conns) c->stop();
        work.reset();
        ioc.stop();
        for (auto& t : pool) t.join();
    }
};

// The load generator written directly on Qpid Proton (as src/client's service_client is, but with
// `window` unsettled deliveries in flight on one connection instead of one blocked thread per send):
// TLS, SASL ANONYMOUS, CBS put-token, a sender on /messages/devicebound. Runs on its own container
// thread; start()/stop() are called from other threads and hop onto the connection's work queue.
class proton_sender : public proton::messaging_handler {
public:
    proton_sender(const options& o, std::string host, std::string token, stats& st)
        : o_(o), host_(std::move(host)), token_name_(host_), token_(std::move(token)), st_(st), window_(o.window) {}
    // A device sending telemetry instead: its token (audience host/devices/{d}) and a sender on
    // /devices/{d}/messages/events; every accepted delivery (durably stored event) counts in `st`.
    proton_sender(const options& o, std::string host, const std::string& device, std::string token, stats& st,
                  long window)
        : o_(o),
          host_(std::move(host)),
          token_name_(host_ + "/devices/" + device),
          token_(std::move(token)),
          st_(st),
          window_(window),
          events_address_("/devices/" + device + "/messages/events") {}

    void on_container_start(proton::container& c) override {
        proton::connection_options co;
        co.virtual_host(host_);
        co.sasl_enabled(true);
        co.sasl_allowed_mechs("ANONYMOUS");
        co.ssl_client_options(proton::ssl_client_options(o_.ca_file, proton::ssl::VERIFY_PEER));
        co.max_frame_size(64 * 1024);
        c.connect("amqps://" + o_.address + ":" + std::to_string(o_.amqp_port), co);
    }
    void on_connection_open(proton::connection& c) override {
        conn_ = c;
        session_ = c.open_session();
        cbs_tx_ = session_.open_sender("$cbs");
        cbs_rx_ = session_.open_receiver("$cbs", proton::receiver_options().credit_window(10));
    }
    void on_sendable(proton::sender& s) override {
        if (s == cbs_tx_ && !token_sent_) {
            token_sent_ = true;
            proton::message m;
            m.id(proton::message_id(std::string("bench-cbs")));
            m.to("$cbs");
            m.reply_to("cbs");
            m.properties().put("operation", std::string("put-token"));
            m.properties().put("type", std::string("servicebus.windows.net:sastoken"));
            m.properties().put("name", token_name_);
            m.body(token_);
            cbs_tx_.send(m);
        } else if (s == c2d_) {
            ready_ = true;
            pump();
        }
    }
    void on_message(proton::delivery& d, proton::message& m) override {
        d.accept();
        if (d.receiver() != cbs_rx_) return;
        const auto status = proton::coerce<std::int64_t>(m.properties().get("status-code"));
        if (status != 200) {
            std::fprintf(stderr, "proton sender: put-token refused (%lld)\n", static_cast<long long>(status));
            failed_ = true;
            conn_.close();
            return;
        }
        c2d_ = session_.open_sender(events_address_.empty() ? std::string("/messages/devicebound") : events_address_);
    }
    void on_tracker_accept(proton::tracker&) override {
        --in_flight_;
        if (!events_address_.empty()) st_.on_receive(now_ns());
        pump();
    }
    void on_tracker_reject(proton::tracker&) override {
        --in_flight_;
        if (st_.send_failed.fetch_add(1) < 5) std::fprintf(stderr, "proton sender: rejected\n");
        pump();
    }
    void on_tracker_release(proton::tracker& t) override { on_tracker_reject(t); }
    void on_error(const proton::error_condition& e) override {
        std::fprintf(stderr, "proton sender: %s\n", e.what().c_str());
        failed_ = true;
    }

    bool ready() const { return ready_; }
    bool failed() const { return failed_; }
    long in_flight() const { return in_flight_; }
    void start() {
        conn_.work_queue().add([this] {
            running_ = true;
            pump();
        });
    }
    void stop() {
        conn_.work_queue().add([this] { running_ = false; });
    }
    void close() {
        conn_.work_queue().add([this] { conn_.close(); });
    }

private:
    void pump() {
        while (running_ && c2d_.active() && c2d_.credit() > 0 && in_flight_ < window_) {
            const int d = static_cast<int>(next_++ % o_.devices);
            proton::message m;
            if (events_address_.empty()) m.to("/devices/" + device_name(d) + "/messages/devicebound");
            const std::string body = stamped_body(now_ns(), o_.payload);
            m.body(proton::binary(body.begin(), body.end()));
            m.inferred(true);
            c2d_.send(m);
            ++in_flight_;
        }
    }

    const options& o_;
    std::string host_, token_name_, token_;
    stats& st_;
    long window_;
    std::string events_address_;
    proton::connection conn_;
    proton::session session_;
    proton::sender cbs_tx_, c2d_;
    proton::receiver cbs_rx_;
    bool token_sent_ = false, running_ = false;
    std::atomic<bool> ready_{false}, failed_{false};
    std::atomic<long> in_flight_{0};
    long next_ = 0;
};

struct phase_result {
    double msgs_per_s = 0, p50 = 0, p99 = 0, max = 0, server_cpu_us = -1, self_cpu_us = -1;
    long failed = 0;
};

// Runs `send(k, due_ns)` from the senders: closed loop (rate 0: back to back for `seconds` after a
// 1 s warm-up) or open loop (rate > 0: slot k due at start + k/rate), and measures at the devices.
template <class Sender>
phase_result run_phase(const options& o, stats& st, int pid, int rate, Sender&& spawn_senders) {
    const auto start = steady::now() + 500ms;
    const auto from = rate ? start : start + 1s;
    const auto until = from + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(o.seconds));
    st.open_window(from, rate ? until + 2s : until);  // open loop: count late arrivals of scheduled slots
    const double cpu0 = pid ? process_cpu_seconds(pid) : -1;
    const long received0 = st.received.load();
    const double self0 = process_cpu_seconds(getpid());
    spawn_senders(start, until);
    if (rate) std::this_thread::sleep_until(until + 2s);
    const double cpu1 = pid ? process_cpu_seconds(pid) : -1;
    phase_result r;
    r.msgs_per_s = static_cast<double>(st.in_window.load()) / o.seconds;
    r.p50 = st.percentile(0.50);
    r.p99 = st.percentile(0.99);
    r.max = st.percentile(1.0);
    r.failed = st.send_failed.load();
    const double self1 = process_cpu_seconds(getpid());
    const double n = static_cast<double>(st.received.load() - received0);
    if (rate || n <= 0) return r;  // CPU per message only when the phase is saturated (not idle time)
    r.self_cpu_us = (self1 - self0) * 1e6 / n;
    if (cpu0 >= 0 && cpu1 >= 0) r.server_cpu_us = (cpu1 - cpu0) * 1e6 / n;
    return r;
}

void print(const char* what, const phase_result& r) {
    std::printf(
        "%s: %.0f msgs/s completed at the devices, send->receive p50 %.2f ms, p99 %.2f ms, max %.2f ms, "
        "%ld sends failed",
        what, r.msgs_per_s, r.p50, r.p99, r.max, r.failed);
    if (r.server_cpu_us >= 0) std::printf(", server CPU %.1f us/msg", r.server_cpu_us);
    if (r.self_cpu_us >= 0) std::printf(", load generator CPU %.1f us/msg", r.self_cpu_us);
    std::printf("\n");
    std::fflush(stdout);
}

int usage() {
    std::cerr << "usage: c2d_bench --connection-string CS --ca-file CA --https-port P --mqtt-port Q --amqp-port A\n"
                 "       [--mosquitto-port M] [--devices 100] [--senders 64] [--clients 4] [--seconds 10]\n"
                 "       [--rate 1000] [--payload 64] [--threads 2] [--window 2000] [--server-pid PID] "
                 "[--mosquitto-pid PID]\n"
                 "       [--telemetry-devices 0]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--connection-string")
            o.connection_string = v;
        else if (k == "--ca-file")
            o.ca_file = v;
        else if (k == "--address")
            o.address = v;
        else if (k == "--https-port")
            o.https_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--mqtt-port")
            o.mqtt_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--amqp-port")
            o.amqp_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--mosquitto-port")
            o.mosquitto_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--devices")
            o.devices = std::stoi(v);
        else if (k == "--senders")
            o.senders = std::stoi(v);
        else if (k == "--clients")
            o.clients = std::stoi(v);
        else if (k == "--seconds")
            o.seconds = std::stod(v);
        else if (k == "--rate")
            o.rate = std::stoi(v);
        else if (k == "--payload")
            o.payload = std::stoi(v);
        else if (k == "--threads")
            o.threads = std::stoi(v);
        else if (k == "--server-pid")
            o.server_pid = std::stoi(v);
        else if (k == "--mosquitto-pid")
            o.mosquitto_pid = std::stoi(v);
        else if (k == "--window")
            o.window = std::stoi(v);
        else if (k == "--telemetry-devices")
            o.telemetry_devices = std::stoi(v);
        else
            return usage();
    }
    if (o.connection_string.empty() || o.ca_file.empty() || o.devices < 1 || o.senders < 1 || o.clients < 1 ||
        o.payload < 20)
        return usage();
    auto cs = auth::parse_connection_string(o.connection_string);
    if (!cs) {
        std::cerr << "bad connection string: " << cs.error().message << "\n";
        return 2;
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    service_options so;
    so.tls.ca_file = o.ca_file;
    so.port = o.https_port;
    so.amqp_port = o.amqp_port;

    // 1. devices, through the SDK's registry_manager.
    std::vector<std::string> keys;
    {
        auto rm = registry_manager::from_connection_string(o.connection_string, so);
        if (!rm) return std::fprintf(stderr, "registry_manager: %s\n", rm.error().message.c_str()), 1;
        for (int i = 0; i < o.devices; ++i) {
            keys.push_back(generate_key());
            auto d = rm->create_device(device_name(i), symmetric_keys{keys.back(), keys.back()});
            if (!d)
                return std::fprintf(stderr, "create %s: %s\n", device_name(i).c_str(), d.error().message.c_str()), 1;
        }
    }

    asio::ssl::context hub_tls{asio::ssl::context::tls_client};
    hub_tls.load_verify_file(o.ca_file);
    hub_tls.set_verify_mode(asio::ssl::verify_peer);
    auto on_error = [](std::atomic<int>& failed) {
        return [&failed](std::exception_ptr e) {
            if (!e) return;
            ++failed;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::fprintf(stderr, "connect: %s\n", x.what());
            }
        };
    };

    // 2. twinhub: device receivers over MQTT, senders through service_client.
    stats hub_st;
    phase_result hub_tput, hub_lat, proton_tput;
    {
        mqtt_fleet fleet;
        for (int i = 0; i < o.devices; ++i) {
            auto c = std::make_shared<mqtt_conn>(fleet.ioc, hub_tls, hub_st);
            fleet.conns.push_back(c);
            mqtt::connect con;
            con.clean_session = false;
            con.keep_alive = 240;
            con.client_id = device_name(i);
            con.username = cs->host_name + "/" + device_name(i) + "/?api-version=2021-04-12";
            con.password =
                auth::generate_sas_token(percent_encode(auth::identity_resource(cs->host_name, device_name(i))),
                                         keys[static_cast<std::size_t>(i)], auth::to_unix_seconds(now()) + 3600)
                    .value();
            asio::co_spawn(
                fleet.ioc,
                [c, &o, &fleet, host = cs->host_name, con, i]() -> awaitable<void> {
                    co_await c->open(o, o.mqtt_port, host, con,
                                     "devices/" + device_name(i) + "/messages/devicebound/#");
                    ++fleet.ready;
                    co_await c->receive();
                },
                on_error(fleet.failed));
        }
        fleet.start(o.threads);
        if (!fleet.wait_ready(o.devices))
            return std::fprintf(stderr, "only %d devices connected\n", fleet.ready.load()), 1;
        std::printf("twinhub: %d devices connected and subscribed over MQTT/TLS\n", o.devices);

        std::vector<service_client> clients;
        for (int k = 0; k < o.clients; ++k) {
            auto sc = service_client::from_connection_string(o.connection_string, so);
            if (!sc) return std::fprintf(stderr, "service_client: %s\n", sc.error().message.c_str()), 1;
            if (auto r = sc->connect(); !r)
                return std::fprintf(stderr, "service_client connect: %s\n", r.error().message.c_str()), 1;
            clients.push_back(std::move(*sc));
        }
        std::atomic<long> next_target{0};
        auto send_one = [&](int sender, std::int64_t stamp) {
            const int d = static_cast<int>(next_target.fetch_add(1, std::memory_order_relaxed) % o.devices);
            auto r = clients[static_cast<std::size_t>(sender % o.clients)].send(
                device_name(d), c2d_message(stamped_body(stamp, o.payload)));
            if (!r) {
                if (hub_st.send_failed.fetch_add(1) < 5) std::fprintf(stderr, "send: %s\n", r.error().message.c_str());
            }
        };
        auto senders = [&](int rate) {
            return [&, rate](steady::time_point start, steady::time_point until) {
                std::atomic<long> slot{0};
                const long total = static_cast<long>(rate * o.seconds);
                std::vector<std::thread> ts;
                for (int s = 0; s < o.senders; ++s)
                    ts.emplace_back([&, s] {
                        std::this_thread::sleep_until(start);
                        if (!rate) {
                            while (steady::now() < until) send_one(s, now_ns());
                            return;
                        }
                        for (;;) {
                            const long k = slot.fetch_add(1);
                            if (k >= total) return;
                            const auto due =
                                start + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * k / rate));
                            std::this_thread::sleep_until(due);
                            send_one(s, due.time_since_epoch().count());
                        }
                    });
                for (auto& t : ts) t.join();
            };
        };
        hub_tput = run_phase(o, hub_st, o.server_pid, 0, senders(0));
        print("twinhub throughput (SDK service_client)", hub_tput);
        if (o.window > 0) {
            std::this_thread::sleep_for(1s);
            const auto token = auth::generate_sas_token(percent_encode(cs->host_name), cs->key,
                                                        auth::to_unix_seconds(now()) + 3600, cs->key_name)
                                   .value();
            proton_sender ps(o, cs->host_name, token, hub_st);
            proton::container pc(ps);
            std::thread pt([&] { pc.run(); });
            const auto t0 = steady::now();
            while (!ps.ready() && !ps.failed() && steady::now() - t0 < 30s) std::this_thread::sleep_for(10ms);
            if (ps.ready()) {
                proton_tput =
                    run_phase(o, hub_st, o.server_pid, 0, [&](steady::time_point start, steady::time_point until) {
                        std::this_thread::sleep_until(start);
                        ps.start();
                        std::this_thread::sleep_until(until);
                        ps.stop();
                    });
                print(("twinhub throughput (Proton, " + std::to_string(o.window) + " unsettled)").c_str(), proton_tput);
                const auto t1 = steady::now();
                while (ps.in_flight() > 0 && steady::now() - t1 < 10s) std::this_thread::sleep_for(10ms);
                ps.close();
            } else {
                std::fprintf(stderr, "proton sender did not become ready\n");
                pc.stop();
            }
            pt.join();
        }
        std::this_thread::sleep_for(1s);  // let the queues drain
        hub_lat = run_phase(o, hub_st, o.server_pid, o.rate, senders(o.rate));
        print(("twinhub at " + std::to_string(o.rate) + " msgs/s").c_str(), hub_lat);
    }

    // 2b. telemetry ingest, AMQP vs MQTT (issue 14): K devices, window / K events in flight each,
    // events per second acknowledged (durably stored) by the hub.
    if (o.telemetry_devices > 0 && o.window > 0) {
        const int k = o.telemetry_devices;
        const long per = std::max(1, o.window / k);
        std::vector<std::string> tkeys;
        {
            auto rm = registry_manager::from_connection_string(o.connection_string, so);
            for (int i = 0; i < k; ++i) {
                tkeys.push_back(generate_key());
                auto d = rm->create_device("tel" + std::to_string(i), symmetric_keys{tkeys.back(), tkeys.back()});
                if (!d) return std::fprintf(stderr, "create tel%d: %s\n", i, d.error().message.c_str()), 1;
            }
        }
        auto device_token = [&](int i) {
            return auth::generate_sas_token(
                       percent_encode(auth::identity_resource(cs->host_name, "tel" + std::to_string(i))),
                       tkeys[static_cast<std::size_t>(i)], auth::to_unix_seconds(now()) + 3600)
                .value();
        };
        stats amqp_st, mqtt_st;
        phase_result amqp_r, mqtt_r;
        {
            std::vector<std::unique_ptr<proton_sender>> hs;
            std::vector<std::unique_ptr<proton::container>> cs_;
            std::vector<std::thread> ts;
            for (int i = 0; i < k; ++i) {
                hs.push_back(std::make_unique<proton_sender>(o, cs->host_name, "tel" + std::to_string(i),
                                                             device_token(i), amqp_st, per));
                cs_.push_back(std::make_unique<proton::container>(*hs.back()));
                ts.emplace_back([c = cs_.back().get()] { c->run(); });
            }
            const auto t0 = steady::now();
            auto all_ready = [&] { return std::all_of(hs.begin(), hs.end(), [](auto& h) { return h->ready(); }); };
            while (!all_ready() && steady::now() - t0 < 30s) std::this_thread::sleep_for(10ms);
            if (all_ready()) {
                amqp_r =
                    run_phase(o, amqp_st, o.server_pid, 0, [&](steady::time_point start, steady::time_point until) {
                        std::this_thread::sleep_until(start);
                        for (auto& h : hs) h->start();
                        std::this_thread::sleep_until(until);
                        for (auto& h : hs) h->stop();
                    });
                std::this_thread::sleep_for(2s);
                for (auto& h : hs) h->close();
            } else {
                std::fprintf(stderr, "AMQP telemetry senders did not become ready\n");
                for (auto& c : cs_) c->stop();
            }
            for (auto& t : ts) t.join();
        }
        {
            mqtt_fleet fleet;
            for (int i = 0; i < k; ++i) {
                auto c = std::make_shared<mqtt_conn>(fleet.ioc, hub_tls, mqtt_st);
                fleet.conns.push_back(c);
                mqtt::connect con;
                con.keep_alive = 240;
                con.client_id = "tel" + std::to_string(i);
                con.username = cs->host_name + "/tel" + std::to_string(i) + "/?api-version=2021-04-12";
                con.password = device_token(i);
                asio::co_spawn(
                    fleet.ioc,
                    [c, &o, &fleet, host = cs->host_name, con]() -> awaitable<void> {
                        co_await c->open(o, o.mqtt_port, host, con, "");
                        ++fleet.ready;
                    },
                    on_error(fleet.failed));
            }
            fleet.start(o.threads);
            if (!fleet.wait_ready(k)) return std::fprintf(stderr, "MQTT telemetry devices did not connect\n"), 1;
            mqtt_r = run_phase(o, mqtt_st, o.server_pid, 0, [&](steady::time_point start, steady::time_point until) {
                std::atomic<int> done{0};
                for (int i = 0; i < k; ++i) {
                    auto pub = fleet.conns[static_cast<std::size_t>(i)];
                    const std::string topic = "devices/tel" + std::to_string(i) + "/messages/events/";
                    asio::co_spawn(
                        fleet.ioc,
                        [&, pub, topic, start, until]() -> awaitable<void> {
                            asio::steady_timer timer(co_await asio::this_coro::executor);
                            timer.expires_at(start);
                            co_await timer.async_wait(use_awaitable);
                            std::vector<std::string> topics(static_cast<std::size_t>(per), topic),
                                bodies(topics.size());
                            while (steady::now() < until) {
                                for (auto& b : bodies) b = stamped_body(now_ns(), o.payload);
                                co_await pub->publish_burst(topics, bodies);
                                for (std::size_t j = 0; j < bodies.size(); ++j) mqtt_st.on_receive(now_ns());
                            }
                        },
                        [&](std::exception_ptr e) {
                            if (e) ++mqtt_st.send_failed;
                            ++done;
                        });
                }
                while (done < k) std::this_thread::sleep_for(5ms);
            });
        }
        std::printf(
            "telemetry ingest, %d devices, %ld events in flight each, payload %d B: AMQP %.0f events/s "
            "(hub CPU %.1f us/event), MQTT QoS 1 %.0f events/s (hub CPU %.1f us/event), %ld + %ld failed; "
            "ratio AMQP/MQTT %.2f\n",
            k, per, o.payload, amqp_r.msgs_per_s, amqp_r.server_cpu_us, mqtt_r.msgs_per_s, mqtt_r.server_cpu_us,
            amqp_r.failed, mqtt_r.failed, mqtt_r.msgs_per_s > 0 ? amqp_r.msgs_per_s / mqtt_r.msgs_per_s : 0.0);
        std::fflush(stdout);
    }

    if (!o.mosquitto_port) return hub_tput.failed == 0 && hub_lat.failed == 0 ? 0 : 1;

    // 3. mosquitto reference: the same subscribers and QoS 1 publishers, no auth, no persistence.
    asio::ssl::context mosq_tls{asio::ssl::context::tls_client};
    mosq_tls.set_verify_mode(asio::ssl::verify_none);
    stats mq_st;
    phase_result mq_tput, mq_lat, mq_piped;
    {
        mqtt_fleet fleet;
        auto spawn = [&](const std::string& id, const std::string& filter) {
            auto c = std::make_shared<mqtt_conn>(fleet.ioc, mosq_tls, mq_st);
            fleet.conns.push_back(c);
            mqtt::connect con;
            con.clean_session = false;
            con.keep_alive = 240;
            con.client_id = id;
            asio::co_spawn(
                fleet.ioc,
                [c, &o, &fleet, con, filter]() -> awaitable<void> {
                    co_await c->open(o, o.mosquitto_port, "localhost", con, filter);
                    ++fleet.ready;
                    if (!filter.empty()) co_await c->receive();
                },
                on_error(fleet.failed));
        };
        for (int i = 0; i < o.devices; ++i) spawn(device_name(i), device_topic(i) + "#");
        for (int s = 0; s < o.senders; ++s) spawn("pub" + std::to_string(s), "");
        fleet.start(o.threads);
        if (!fleet.wait_ready(o.devices + o.senders)) return std::fprintf(stderr, "mosquitto: connect failed\n"), 1;
        std::printf("mosquitto: %d subscribers and %d QoS 1 publishers connected over TLS\n", o.devices, o.senders);
        std::atomic<long> next_target{0};
        auto publishers = [&](int rate) {
            return [&, rate](steady::time_point start, steady::time_point until) {
                std::atomic<long> slot{0};
                std::atomic<int> done{0};
                const long total = static_cast<long>(rate * o.seconds);
                for (int s = 0; s < o.senders; ++s) {
                    auto pub = fleet.conns[static_cast<std::size_t>(o.devices + s)];
                    asio::co_spawn(
                        fleet.ioc,
                        [&, pub, rate, start, until]() -> awaitable<void> {
                            asio::steady_timer timer(co_await asio::this_coro::executor);
                            timer.expires_at(start);
                            co_await timer.async_wait(use_awaitable);
                            for (;;) {
                                std::int64_t stamp;
                                if (!rate) {
                                    if (steady::now() >= until) break;
                                    stamp = now_ns();
                                } else {
                                    const long k = slot.fetch_add(1);
                                    if (k >= total) break;
                                    const auto due =
                                        start + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * k / rate));
                                    timer.expires_at(due);
                                    co_await timer.async_wait(use_awaitable);
                                    stamp = due.time_since_epoch().count();
                                }
                                const int d = static_cast<int>(next_target.fetch_add(1) % o.devices);
                                co_await pub->publish(device_topic(d) + "x", stamped_body(stamp, o.payload));
                            }
                        },
                        [&](std::exception_ptr e) {
                            if (e) ++mq_st.send_failed;
                            ++done;
                        });
                }
                while (done < o.senders) std::this_thread::sleep_for(5ms);
            };
        };
        mq_tput = run_phase(o, mq_st, o.mosquitto_pid, 0, publishers(0));
        print("mosquitto throughput (64 synchronous publishers)", mq_tput);
        if (o.window > 0) {
            // The reference for the Proton sender: as many QoS 1 publishes in flight (window / senders per publisher).
            std::this_thread::sleep_for(1s);
            const int burst = std::max(1, o.window / o.senders);
            mq_piped = run_phase(o, mq_st, o.mosquitto_pid, 0, [&](steady::time_point start, steady::time_point until) {
                std::atomic<int> done{0};
                for (int s = 0; s < o.senders; ++s) {
                    auto pub = fleet.conns[static_cast<std::size_t>(o.devices + s)];
                    asio::co_spawn(
                        fleet.ioc,
                        [&, pub, start, until]() -> awaitable<void> {
                            asio::steady_timer timer(co_await asio::this_coro::executor);
                            timer.expires_at(start);
                            co_await timer.async_wait(use_awaitable);
                            std::vector<std::string> topics(static_cast<std::size_t>(burst)), bodies(topics.size());
                            while (steady::now() < until) {
                                const auto stamp = now_ns();
                                for (std::size_t i = 0; i < topics.size(); ++i) {
                                    topics[i] =
                                        device_topic(static_cast<int>(next_target.fetch_add(1) % o.devices)) + "x";
                                    bodies[i] = stamped_body(stamp, o.payload);
                                }
                                co_await pub->publish_burst(topics, bodies);
                            }
                        },
                        [&](std::exception_ptr e) {
                            if (e) ++mq_st.send_failed;
                            ++done;
                        });
                }
                while (done < o.senders) std::this_thread::sleep_for(5ms);
            });
            print(("mosquitto throughput (" + std::to_string(burst * o.senders) + " publishes in flight)").c_str(),
                  mq_piped);
        }
        std::this_thread::sleep_for(1s);
        mq_lat = run_phase(o, mq_st, o.mosquitto_pid, o.rate, publishers(o.rate));
        print(("mosquitto at " + std::to_string(o.rate) + " msgs/s").c_str(), mq_lat);
    }
    std::printf(
        "ratio twinhub_c2d/mosquitto_qos1: throughput SDK/synchronous %.2f, Proton/pipelined %.2f, p99 at %d msgs/s "
        "%.2f (twinhub/mosquitto)\n",
        mq_tput.msgs_per_s > 0 ? hub_tput.msgs_per_s / mq_tput.msgs_per_s : 0.0,
        mq_piped.msgs_per_s > 0 ? proton_tput.msgs_per_s / mq_piped.msgs_per_s : 0.0, o.rate,
        mq_lat.p99 > 0 ? hub_lat.p99 / mq_lat.p99 : 0.0);
    return hub_tput.failed == 0 && hub_lat.failed == 0 ? 0 : 1;
}
