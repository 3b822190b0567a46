// The project's MQTT load generator and benchmark hub (an Asio client on proto/mqtt, the same codec
// the hub uses). Subcommands:
//   hub   --dir D --port P --clients N [--desired-rate R --desired-seconds S --desired-delay S0]
//         Runs the MQTT head in-process over the SQLite store in D (durable, group commit), with N
//         devices b{i} each holding module m (key: --key), a TLS certificate written to D (also
//         used for mosquitto), and optionally a desired-patch driver: R patches/s spread over the
//         modules, each carrying its send time, for latency measurement.
//   load  --port P --clients N --mode twin|publish|telemetry|desired|idle --seconds S [--payload B] [--tls 0|1]
//         [--threads T] [--host-name H]
//         (T io threads, each with its own io_context and every T-th client; default 2)
//         twin:    each client does reported-patch round trips (PUBLISH -> $iothub/twin/res/204).
//         publish: each client does QoS 1 PUBLISH -> PUBACK round trips (for mosquitto).
//         telemetry: each client connects as device b{i} (not module b{i}/m; SAS token for H,
//                  default bench.local, also sent as SNI) and does QoS 1 PUBLISH to
//                  devices/b{i}/messages/events/ -> PUBACK round trips (the PUBACK follows the
//                  group commit to the built-in endpoint log), e.g. against twinhubd.
//         desired: clients subscribe to desired patches and report notification latency.
//         idle:    clients connect and stay connected for S seconds.
// Output: one line of key=value results on stdout.
#include "asio/io_pool.hpp"
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "mqtt/mqtt_server.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "server/certificates.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"
#include "store/sqlite_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <variant>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using namespace twinhub;
using namespace std::chrono_literals;

namespace {

const std::string bench_host = "bench.local";
const std::string default_key = base64_encode(std::string(32, 'k'));

std::map<std::string, std::string> parse_args(int argc, char** argv, int from) {
    std::map<std::string, std::string> a;
    for (int i = from; i + 1 < argc; i += 2) a[std::string(argv[i]).substr(2)] = argv[i + 1];
    return a;
}
std::string arg(const std::map<std::string, std::string>& a, const std::string& k, const std::string& d) {
    auto it = a.find(k);
    return it == a.end() ? d : it->second;
}
std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void raise_fd_limit() {
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
}

// ---------------------------------------------------------------- hub

int run_hub(const std::map<std::string, std::string>& a) {
    raise_fd_limit();
    const std::filesystem::path dir = arg(a, "dir", "/tmp/twinhub-bench");
    const int clients = std::stoi(arg(a, "clients", "1000"));
    const std::string key = arg(a, "key", default_key);
    std::filesystem::create_directories(dir);
    // --store memory isolates the MQTT head and hub_service from SQLite durability (diagnosis only).
    auto st = arg(a, "store", "sqlite") == "memory" ? result<std::unique_ptr<store::store>>(store::make_memory_store())
                                                    : store::open_sqlite_store((dir / "store.db").string());
    if (!st) {
        std::cerr << st.error().message << "\n";
        return 1;
    }
    service::hub_options ho;
    auto hub = service::hub_service::open(**st, ho);
    if (!hub) {
        std::cerr << hub.error().message << "\n";
        return 1;
    }
    // Identities: b{i} with module m, all with the same key.
    {
        std::vector<std::promise<void>> done(static_cast<std::size_t>(clients) * 2);
        std::atomic<int> failures{0};
        std::vector<registry::module_identity> modules;
        for (int i = 0; i < clients; ++i) {
            registry::device_identity d;
            d.device_id = "b" + std::to_string(i);
            d.authentication.symmetric_key = {key, key};
            (*hub)->create_device(d, [&, i](result<registry::device_identity> r) {
                if (!r && r.error().code != errc::device_already_exists) ++failures;
                done[i * 2].set_value();
            });
            registry::module_identity m;
            m.device_id = d.device_id;
            m.module_id = "m";
            m.authentication.symmetric_key = {key, key};
            modules.push_back(std::move(m));
        }
        for (int i = 0; i < clients; ++i) done[i * 2].get_future().wait();
        for (int i = 0; i < clients; ++i) {
            (*hub)->create_module(modules[i], [&, i](result<registry::module_identity> r) {
                if (!r && r.error().code != errc::module_already_exists) ++failures;
                done[i * 2 + 1].set_value();
            });
        }
        for (int i = 0; i < clients; ++i) done[i * 2 + 1].get_future().wait();
        if (failures) std::cerr << "identity creation failures: " << failures << "\n";
    }
    auto ca = server::make_ca("twinhub bench CA", 2);
    auto cert = server::make_server_certificate(ca, {"localhost", "127.0.0.1", bench_host}, 2);
    std::ofstream(dir / "ca.pem") << ca.certificate;
    std::ofstream(dir / "server.pem") << cert.certificate << ca.certificate;
    std::ofstream(dir / "server.key") << cert.private_key;

    // --threads T: the MQTT sessions run on an io_pool of T contexts with a thread each (as in
    // twinhubd); --shared-context 1 runs them on one io_context with T threads instead.
    const unsigned threads = std::stoi(arg(a, "threads", "2"));
    const bool shared_context = arg(a, "shared-context", "0") == "1";
    asio::io_context ioc(shared_context ? static_cast<int>(threads) : 1);
    io_pool pool(threads);
    asio::ssl::context tls(asio::ssl::context::tls_server);
    tls.use_certificate_chain(asio::buffer(cert.certificate));
    tls.use_private_key(asio::buffer(cert.private_key), asio::ssl::context::pem);
    mqtt::mqtt_options mo;
    mo.host_names = {bench_host};
    mo.bind_address = "127.0.0.1";
    mo.port = static_cast<unsigned short>(std::stoi(arg(a, "port", "18883")));
    if (!shared_context) mo.session_context = [&pool]() -> asio::io_context& { return pool.next(); };
    mqtt::mqtt_server srv(ioc, tls, **hub, mo);
    if (auto r = srv.start(); !r) {
        std::cerr << r.error().message << "\n";
        return 1;
    }
    asio::signal_set sigs(ioc, SIGINT, SIGTERM);
    sigs.async_wait([&](auto, int) {
        srv.stop();
        ioc.stop();
    });
    std::cout << "ready port=" << srv.port() << std::endl;

    // Desired-patch driver (service side, through hub_service like the REST head does).
    std::thread driver;
    std::atomic<bool> stop_driver{false};
    const int rate = std::stoi(arg(a, "desired-rate", "0"));
    if (rate > 0) {
        const double seconds = std::stod(arg(a, "desired-seconds", "10"));
        const double delay = std::stod(arg(a, "desired-delay", "3"));
        driver = std::thread([&, rate, seconds, delay] {
            std::this_thread::sleep_for(std::chrono::duration<double>(delay));
            const auto start = std::chrono::steady_clock::now();
            const auto period = std::chrono::nanoseconds(1'000'000'000LL / rate);
            std::int64_t n = 0;
            while (!stop_driver && std::chrono::steady_clock::now() - start < std::chrono::duration<double>(seconds)) {
                auto due = start + period * n;
                std::this_thread::sleep_until(due);
                store::identity_key id{"b" + std::to_string(n % clients), "m"};
                // Microseconds: twin integers are limited to 2^52 (spec 4.4).
                boost::json::object desired{{"t", now_ns() / 1000}, {"n", n}};
                boost::json::object body{{"properties", boost::json::object{{"desired", desired}}}};
                (*hub)->patch_twin(id, body, "", [](result<boost::json::object> r) {
                    if (!r) std::cerr << "desired patch failed: " << r.error().message << "\n";
                });
                ++n;
            }
            std::cout << "desired_sent=" << n << std::endl;
        });
    }

    std::vector<std::thread> shared_threads;
    if (shared_context)
        for (unsigned i = 1; i < threads; ++i) shared_threads.emplace_back([&] { ioc.run(); });
    else
        pool.start();
    ioc.run();
    for (auto& t : shared_threads) t.join();
    pool.stop();
    stop_driver = true;
    if (driver.joinable()) driver.join();
    hub->reset();
    (*st)->close();
    return 0;
}

// ---------------------------------------------------------------- load

struct load_config {
    std::string host = "127.0.0.1";
    unsigned short port = 18883;
    bool tls = true;
    int clients = 1000;
    std::string mode = "twin";
    std::size_t payload = 64;
    double seconds = 10;
    std::string key = default_key;
    std::string host_name = bench_host;  // the SAS token audience (and SNI) of hub identities
    int connect_parallel = 100;
};

struct load_stats {
    std::atomic<std::uint64_t> ops{0};
    std::atomic<int> connected{0};
    std::atomic<int> failed{0};
    std::atomic<bool> measuring{false};
    std::atomic<bool> stopping{false};
    std::mutex mu;
    std::vector<double> latencies_ms;
};

class client {
public:
    client(asio::io_context& ioc, asio::ssl::context& ctx, const load_config& c, load_stats& s, int index)
        : ioc_(ioc), ctx_(ctx), cfg_(c), stats_(s), index_(index), socket_(ioc) {}

    awaitable<void> run(std::shared_ptr<asio::steady_timer> gate) {
        try {
            tcp::endpoint ep(asio::ip::make_address(cfg_.host), cfg_.port);
            co_await socket_.async_connect(ep, use_awaitable);
            socket_.set_option(tcp::no_delay(true));
            if (cfg_.tls) {
                tls_.emplace(std::move(socket_), ctx_);
                if (cfg_.mode == "telemetry") SSL_set_tlsext_host_name(tls_->native_handle(), cfg_.host_name.c_str());
                co_await tls_->async_handshake(asio::ssl::stream_base::client, use_awaitable);
            }
            const bool hub = cfg_.mode != "publish";
            mqtt::connect c;
            c.keep_alive = 600;
            c.clean_session = !hub || cfg_.mode == "telemetry";
            if (cfg_.mode == "telemetry") {
                const std::string d = "b" + std::to_string(index_);
                c.client_id = d;
                c.username = cfg_.host_name + "/" + d + "/?api-version=2021-04-12";
                auto se = auth::to_unix_seconds(now()) + 3600 * 24;
                c.password = *auth::generate_sas_token(percent_encode(auth::identity_resource(cfg_.host_name, d)), cfg_.key, se);
            } else if (hub) {
                const std::string d = "b" + std::to_string(index_);
                c.client_id = d + "/m";
                c.username = bench_host + "/" + d + "/m/?api-version=2021-04-12";
                auto se = auth::to_unix_seconds(now()) + 3600 * 24;
                c.password = *auth::generate_sas_token(percent_encode(auth::identity_resource(bench_host, d, "m")), cfg_.key, se);
            } else {
                c.client_id = "bench" + std::to_string(index_);
            }
            co_await send(c);
            auto ack = co_await expect<mqtt::connack>();
            if (ack.return_code != mqtt::connect_return_code::accepted) throw std::runtime_error("refused");
            if (cfg_.mode == "twin" || cfg_.mode == "desired") {
                mqtt::subscribe s;
                s.packet_id = 1;
                s.subscriptions.push_back({cfg_.mode == "twin" ? "$iothub/twin/res/#" : "$iothub/twin/PATCH/properties/desired/#",
                                           mqtt::qos::at_most_once});
                co_await send(s);
                co_await expect<mqtt::suback>();
            }
            stats_.connected++;
            gate->cancel_one();  // lets the next client start connecting
            if (cfg_.mode == "idle") {
                while (!stats_.stopping) {
                    auto p = co_await next();
                    (void)p;
                }
            } else if (cfg_.mode == "desired") {
                for (;;) {
                    auto p = co_await expect<mqtt::publish>();
                    auto v = boost::json::parse(p.payload);
                    double ms = static_cast<double>(now_ns() / 1000 - v.at("t").as_int64()) / 1e3;
                    std::lock_guard lock(stats_.mu);
                    stats_.latencies_ms.push_back(ms);
                }
            } else {
                co_await round_trips();
            }
        } catch (const std::exception& e) {
            if (!stats_.stopping) {
                if (stats_.failed++ < 5) std::cerr << "client " << index_ << ": " << e.what() << "\n";
            }
            gate->cancel_one();
        }
    }

    void close() {
        boost::system::error_code ec;
        if (tls_) tls_->lowest_layer().close(ec);
        else socket_.close(ec);
    }

private:
    awaitable<void> round_trips() {
        const std::string body = cfg_.mode == "twin" ? R"({"v":")" + std::string(cfg_.payload > 10 ? cfg_.payload - 10 : 1, 'x') + "\"}"
                                                     : std::string(cfg_.payload, 'x');
        std::uint16_t pid = 1;
        std::uint64_t rid = 0;
        asio::steady_timer wait(ioc_);
        while (stats_.connected + stats_.failed < cfg_.clients && !stats_.stopping) {
            wait.expires_after(20ms);
            co_await wait.async_wait(use_awaitable);
        }
        while (!stats_.stopping) {
            mqtt::publish p;
            if (cfg_.mode == "twin") {
                p.topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(++rid);
                p.payload = body;
                co_await send(p);
                auto r = co_await expect<mqtt::publish>();
                if (!r.topic.starts_with("$iothub/twin/res/204/")) throw std::runtime_error("bad response " + r.topic);
            } else {
                p.topic = cfg_.mode == "telemetry" ? "devices/b" + std::to_string(index_) + "/messages/events/"
                                                   : "bench/" + std::to_string(index_);
                p.qos = mqtt::qos::at_least_once;
                p.packet_id = pid;
                pid = pid == 65535 ? 1 : pid + 1;
                p.payload = body;
                co_await send(p);
                co_await expect<mqtt::puback>();
            }
            if (stats_.measuring) stats_.ops.fetch_add(1, std::memory_order_relaxed);
        }
    }

    awaitable<void> send(const mqtt::packet& p) {
        out_.clear();
        mqtt::encode(p, out_);
        if (tls_) co_await asio::async_write(*tls_, asio::buffer(out_), use_awaitable);
        else co_await asio::async_write(socket_, asio::buffer(out_), use_awaitable);
    }

    awaitable<mqtt::packet> next() {
        for (;;) {
            auto r = dec_.next();
            if (!r) throw std::runtime_error(r.error().message);
            if (*r) co_return std::move(**r);
            std::size_t n = tls_ ? co_await tls_->async_read_some(asio::buffer(buf_), use_awaitable)
                                 : co_await socket_.async_read_some(asio::buffer(buf_), use_awaitable);
            dec_.feed(buf_, n);
        }
    }

    template <class T>
    awaitable<T> expect() {
        auto p = co_await next();
        if (!std::holds_alternative<T>(p)) throw std::runtime_error(std::string("unexpected ") + mqtt::to_string(mqtt::type_of(p)));
        co_return std::get<T>(std::move(p));
    }

    asio::io_context& ioc_;
    asio::ssl::context& ctx_;
    const load_config& cfg_;
    load_stats& stats_;
    int index_;
    tcp::socket socket_;
    std::optional<asio::ssl::stream<tcp::socket>> tls_;
    mqtt::decoder dec_{1 << 20};
    std::string out_;
    char buf_[2048];
};

// utime + stime of a process, in seconds.
double cpu_seconds_of(const std::string& pid) {
    std::ifstream f("/proc/" + pid + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto rp = stat.rfind(')');
    if (rp == std::string::npos) return -1;
    std::istringstream in(stat.substr(rp + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long rss_kb_of(const std::string& pid) {
    std::ifstream f("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    return -1;
}

int run_load(const std::map<std::string, std::string>& a) {
    raise_fd_limit();
    load_config c;
    c.host = arg(a, "host", c.host);
    c.port = static_cast<unsigned short>(std::stoi(arg(a, "port", "18883")));
    c.tls = arg(a, "tls", "1") == "1";
    c.clients = std::stoi(arg(a, "clients", "1000"));
    c.mode = arg(a, "mode", "twin");
    c.payload = std::stoul(arg(a, "payload", "64"));
    c.seconds = std::stod(arg(a, "seconds", "10"));
    c.key = arg(a, "key", c.key);
    c.host_name = arg(a, "host-name", c.host_name);
    const std::string ca = arg(a, "ca", "");
    const std::string hub_pid = arg(a, "hub-pid", "");

    // Several threads, each with its own io_context and a share of the clients, so that the load
    // generator is not the bottleneck of what it measures (--threads, default 2).
    const int threads = std::max(1, std::stoi(arg(a, "threads", "2")));
    std::vector<std::unique_ptr<asio::io_context>> iocs;
    for (int t = 0; t < threads; ++t) iocs.push_back(std::make_unique<asio::io_context>(1));
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (!ca.empty()) {
        ctx.load_verify_file(ca);
        ctx.set_verify_mode(asio::ssl::verify_peer);
    } else {
        ctx.set_verify_mode(asio::ssl::verify_none);
    }
    load_stats stats;
    // Client i runs on io_context i % threads; clients[t] is touched only by thread t.
    std::vector<std::vector<std::unique_ptr<client>>> clients(threads);
    // Connect with bounded parallelism: per io_context, a gate timer releases one new connection
    // per finished one.
    const int parallel = std::max(1, c.connect_parallel / threads);
    for (int t = 0; t < threads; ++t) {
        asio::io_context& ioc = *iocs[t];
        asio::co_spawn(ioc, [&, t, parallel]() -> awaitable<void> {
            auto gate = std::make_shared<asio::steady_timer>(ioc, asio::steady_timer::time_point::max());
            int started = 0;
            for (int i = t; i < c.clients; i += threads) {
                if (started++ >= parallel) {
                    boost::system::error_code ec;
                    co_await gate->async_wait(asio::redirect_error(use_awaitable, ec));
                }
                clients[t].push_back(std::make_unique<client>(ioc, ctx, c, stats, i));
                asio::co_spawn(ioc, clients[t].back()->run(gate), asio::detached);
            }
        }, asio::detached);
    }

    std::vector<std::thread> runners;
    for (auto& ioc : iocs) runners.emplace_back([&ioc] { ioc->run(); });
    const auto t0 = std::chrono::steady_clock::now();
    while (stats.connected + stats.failed < c.clients && std::chrono::steady_clock::now() - t0 < 300s)
        std::this_thread::sleep_for(50ms);
    const double connect_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::this_thread::sleep_for(1s);  // warm-up
    long rss_before = hub_pid.empty() ? -1 : rss_kb_of(hub_pid);
    const double cpu_before = hub_pid.empty() ? -1 : cpu_seconds_of(hub_pid);
    const double self_before = cpu_seconds_of("self");
    stats.measuring = true;
    const auto m0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(c.seconds));
    stats.measuring = false;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
    long rss_after = hub_pid.empty() ? -1 : rss_kb_of(hub_pid);
    const double cpu_used = hub_pid.empty() ? -1 : cpu_seconds_of(hub_pid) - cpu_before;
    const double self_used = cpu_seconds_of("self") - self_before;
    stats.stopping = true;
    for (int t = 0; t < threads; ++t) {
        asio::post(*iocs[t], [&, t] {
            for (auto& cl : clients[t]) cl->close();
        });
        iocs[t]->stop();
    }
    for (auto& r : runners) r.join();

    std::printf("mode=%s threads=%d clients=%d connected=%d failed=%d connect_s=%.2f", c.mode.c_str(), threads, c.clients, stats.connected.load(),
                stats.failed.load(), connect_s);
    if (c.mode == "twin" || c.mode == "publish" || c.mode == "telemetry")
        std::printf(" payload=%zu ops=%llu seconds=%.2f ops_per_s=%.0f", c.payload, (unsigned long long)stats.ops.load(),
                    elapsed, stats.ops.load() / elapsed);
    if (cpu_used >= 0 && stats.ops.load() > 0 && (c.mode == "twin" || c.mode == "publish" || c.mode == "telemetry"))
        std::printf(" server_cpu_cores=%.2f server_cpu_us_per_op=%.1f ops_per_free_core=%.0f", cpu_used / elapsed,
                    cpu_used * 1e6 / stats.ops.load(), stats.ops.load() / cpu_used);
    // The load generator's own CPU: it shares the cores with the server it measures.
    if (stats.ops.load() > 0 && (c.mode == "twin" || c.mode == "publish" || c.mode == "telemetry"))
        std::printf(" client_cpu_cores=%.2f client_cpu_us_per_op=%.1f", self_used / elapsed, self_used * 1e6 / stats.ops.load());
    if (c.mode == "desired") {
        auto& v = stats.latencies_ms;
        std::sort(v.begin(), v.end());
        auto pct = [&](double p) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))]; };
        std::printf(" notifications=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f", v.size(), pct(0.50), pct(0.99),
                    v.empty() ? 0.0 : v.back());
    }
    if (rss_before >= 0) std::printf(" hub_rss_mb=%.1f hub_rss_end_mb=%.1f", rss_before / 1024.0, rss_after / 1024.0);
    std::printf("\n");
    return stats.failed > 0 ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: mqtt_loadgen hub|load --option value ...\n";
        return 1;
    }
    log::level lvl = log::level::warn;
    if (const char* v = std::getenv("TWINHUB_LOG_LEVEL")) log::parse_level(v, lvl);
    log::set_level(lvl);
    std::string cmd = argv[1];
    auto a = parse_args(argc, argv, 2);
    if (cmd == "hub") return run_hub(a);
    if (cmd == "load") return run_load(a);
    std::cerr << "unknown subcommand " << cmd << "\n";
    return 1;
}
