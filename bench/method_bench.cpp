// Direct-method round trips through a running twinhubd (docs/benchmarks.md, "Direct methods"):
// creates M modules (default 1,000, one per device), connects each over MQTT/TLS with our own Asio
// client on proto/mqtt, subscribes it to $iothub/methods/POST/# and answers every request at once
// with status 200 and the request's payload. Then, over keep-alive HTTPS connections:
//   1. throughput: C connections (default 64) each invoke methods back to back for S seconds on
//      modules chosen round robin; round trips/s and p50/p99 latency;
//   2. latency at a fixed rate: R calls/s (default 1,000) issued on a schedule (open loop; latency is
//      measured from the scheduled time, so queueing behind a slow call counts).
// A round trip is: HTTPS POST /twins/{d}/modules/{m}/methods -> hub -> MQTT PUBLISH to the module ->
// module's PUBLISH $iothub/methods/res/200 -> hub -> HTTP 200 {"status":200,"payload":...}.
//
// Usage: method_bench --connection-string CS --ca-file CA --https-port P --mqtt-port Q
//                     [--address 127.0.0.1] [--modules 1000] [--connections 64] [--seconds 10]
//                     [--rate 1000] [--payload 64] [--threads 1] [--server-pid PID]
// bench/method_bench.sh starts a hub with a fresh data directory and runs this against it.
#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
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
    int modules = 1000;
    int connections = 64;
    double seconds = 10;
    int rate = 1000;
    int payload = 64;
    int threads = 1;
    int server_pid = 0;
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

std::string device_name(int i) { return "mb" + std::to_string(i); }

// ---- shared state ----

struct stats {
    std::mutex mu;
    std::vector<double> latencies_ms;  // of completed calls in the measured window
    std::atomic<long> ok{0}, failed{0};
    std::atomic<long> method_requests{0};  // seen by the modules

    void add(double ms) {
        std::lock_guard lock(mu);
        latencies_ms.push_back(ms);
    }
    void reset() {
        std::lock_guard lock(mu);
        latencies_ms.clear();
        ok = 0;
        failed = 0;
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

struct context {
    options o;
    auth::connection_string cs;
    std::string service_token;
    std::vector<std::string> module_keys;
    asio::ssl::context tls{asio::ssl::context::tls_client};
    stats st;
    std::atomic<long> next_target{0};
    std::string body_payload;  // JSON string of `payload` bytes
};

// ---- HTTPS ----

class https_conn {
public:
    https_conn(asio::io_context& ioc, context& c) : c_(c), stream_(asio::make_strand(ioc), c.tls) {}

    awaitable<void> connect() {
        auto& sock = beast::get_lowest_layer(stream_);
        co_await sock.async_connect(tcp::endpoint(asio::ip::make_address(c_.o.address), c_.o.https_port), use_awaitable);
        sock.socket().set_option(tcp::no_delay(true));
        SSL_set_tlsext_host_name(stream_.native_handle(), c_.cs.host_name.c_str());
        co_await stream_.async_handshake(asio::ssl::stream_base::client, use_awaitable);
    }

    // One request; returns the status and fills `body`.
    awaitable<int> request(bhttp::verb verb, const std::string& target, std::string body, std::string& out) {
        bhttp::request<bhttp::string_body> req{verb, target, 11};
        req.set(bhttp::field::host, c_.cs.host_name);
        req.set(bhttp::field::authorization, c_.service_token);
        req.set(bhttp::field::content_type, "application/json; charset=utf-8");
        req.keep_alive(true);
        req.body() = std::move(body);
        req.prepare_payload();
        co_await bhttp::async_write(stream_, req, use_awaitable);
        bhttp::response<bhttp::string_body> res;
        co_await bhttp::async_read(stream_, buf_, res, use_awaitable);
        out = std::move(res.body());
        co_return static_cast<int>(res.result_int());
    }

    // One method round trip on module `i`; true when the module's answer came back.
    awaitable<bool> invoke(int i) {
        std::string target = "/twins/" + device_name(i) + "/modules/m/methods?api-version=2021-04-12";
        std::string body = R"({"methodName":"echo","payload":)" + c_.body_payload +
                           R"(,"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0})";
        std::string out;
        int status = co_await request(bhttp::verb::post, target, std::move(body), out);
        co_return status == 200 && out.rfind(R"({"status":200,)", 0) == 0;
    }

private:
    context& c_;
    beast::ssl_stream<beast::tcp_stream> stream_;
    beast::flat_buffer buf_;
};

// ---- MQTT module ----

class module_conn : public std::enable_shared_from_this<module_conn> {
public:
    module_conn(asio::io_context& ioc, context& c, int index)
        : c_(c), index_(index), stream_(asio::make_strand(ioc), c.tls), timer_(stream_.get_executor()) {}

    // Connects, subscribes; then answers method requests until the connection closes.
    awaitable<void> run(std::atomic<int>& ready, std::atomic<int>& failed) {
        try {
            auto& sock = stream_.next_layer();
            co_await sock.async_connect(tcp::endpoint(asio::ip::make_address(c_.o.address), c_.o.mqtt_port),
                                        use_awaitable);
            sock.set_option(tcp::no_delay(true));
            SSL_set_tlsext_host_name(stream_.native_handle(), c_.cs.host_name.c_str());
            co_await stream_.async_handshake(asio::ssl::stream_base::client, use_awaitable);

            const std::string dev = device_name(index_);
            mqtt::connect con;
            con.clean_session = false;
            con.keep_alive = 240;
            con.client_id = dev + "/m";
            con.username = c_.cs.host_name + "/" + dev + "/m/?api-version=2021-04-12";
            const auto expiry = auth::to_unix_seconds(now()) + 3600;
            con.password = auth::generate_sas_token(
                               percent_encode(auth::identity_resource(c_.cs.host_name, dev, "m")),
                               c_.module_keys[static_cast<std::size_t>(index_)], expiry)
                               .value();
            co_await send(con);
            auto ack = co_await next();
            if (!std::holds_alternative<mqtt::connack>(ack) ||
                std::get<mqtt::connack>(ack).return_code != mqtt::connect_return_code::accepted)
                throw std::runtime_error("CONNECT refused");
            mqtt::subscribe sub;
            sub.packet_id = 1;
            sub.subscriptions.push_back({"$iothub/methods/POST/#", mqtt::qos::at_most_once});
            co_await send(sub);
            auto sack = co_await next();
            if (!std::holds_alternative<mqtt::suback>(sack)) throw std::runtime_error("no SUBACK");
            ++ready;
            for (;;) {
                auto p = co_await next();
                if (auto* pub = std::get_if<mqtt::publish>(&p)) {
                    // $iothub/methods/POST/{name}/?$rid={rid}
                    auto q = pub->topic.find("?$rid=");
                    if (q == std::string::npos) continue;
                    c_.st.method_requests.fetch_add(1, std::memory_order_relaxed);
                    mqtt::publish res;
                    res.topic = "$iothub/methods/res/200/?$rid=" + pub->topic.substr(q + 6);
                    res.payload = std::move(pub->payload);
                    co_await send(res);
                }
            }
        } catch (const std::exception& e) {
            if (!stopping_) {
                ++failed;
                std::fprintf(stderr, "module %d: %s\n", index_, e.what());
            }
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

    context& c_;
    int index_;
    asio::ssl::stream<tcp::socket> stream_;
    asio::steady_timer timer_;
    mqtt::decoder decoder_;
    char buf_[16 * 1024];
    bool stopping_ = false;
};

// ---- phases ----

awaitable<void> create_identities(context& c, int first, int step, std::atomic<int>& done, std::atomic<int>& errors) {
    auto ex = co_await asio::this_coro::executor;
    https_conn h(static_cast<asio::io_context&>(ex.context()), c);
    co_await h.connect();
    std::string out;
    for (int i = first; i < c.o.modules; i += step) {
        const std::string dev = device_name(i);
        int s = co_await h.request(bhttp::verb::put, "/devices/" + dev + "?api-version=2021-04-12",
                                   R"({"deviceId":")" + dev + R"("})", out);
        if (s != 200 && s != 409) ++errors;
        const std::string& key = c.module_keys[static_cast<std::size_t>(i)];
        s = co_await h.request(bhttp::verb::put, "/devices/" + dev + "/modules/m?api-version=2021-04-12",
                               R"({"deviceId":")" + dev + R"(","moduleId":"m","authentication":{"type":"sas",)"
                                                          R"("symmetricKey":{"primaryKey":")" +
                                   key + R"(","secondaryKey":")" + key + R"("}}})",
                               out);
        if (s != 200 && s != 201) {
            ++errors;
            std::fprintf(stderr, "create module %s: HTTP %d %s\n", dev.c_str(), s, out.c_str());
        }
        ++done;
    }
}

awaitable<void> closed_loop(context& c, steady::time_point measure_from, steady::time_point until) {
    auto ex = co_await asio::this_coro::executor;
    https_conn h(static_cast<asio::io_context&>(ex.context()), c);
    co_await h.connect();
    while (steady::now() < until) {
        const int i = static_cast<int>(c.next_target.fetch_add(1) % c.o.modules);
        const auto t0 = steady::now();
        bool ok = co_await h.invoke(i);
        const auto t1 = steady::now();
        if (t0 < measure_from) continue;
        if (!ok) {
            ++c.st.failed;
            continue;
        }
        ++c.st.ok;
        c.st.add(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
}

// Open loop: calls are due every 1/rate s; each connection takes the next due slot when it is free,
// and latency counts from the slot's due time.
awaitable<void> open_loop(context& c, std::atomic<long>& slot, steady::time_point start, long total) {
    auto ex = co_await asio::this_coro::executor;
    https_conn h(static_cast<asio::io_context&>(ex.context()), c);
    co_await h.connect();
    asio::steady_timer timer(ex);
    const auto period = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1.0 / c.o.rate));
    for (;;) {
        const long k = slot.fetch_add(1);
        if (k >= total) break;
        const auto due = start + period * k;
        if (steady::now() < due) {
            timer.expires_at(due);
            co_await timer.async_wait(use_awaitable);
        }
        const int i = static_cast<int>(c.next_target.fetch_add(1) % c.o.modules);
        bool ok = co_await h.invoke(i);
        const auto t1 = steady::now();
        if (!ok) {
            ++c.st.failed;
            continue;
        }
        ++c.st.ok;
        c.st.add(std::chrono::duration<double, std::milli>(t1 - due).count());
    }
}

template <class F>
void run_phase(asio::io_context& ioc, int threads, F spawn_all) {
    ioc.restart();
    spawn_all();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
}

int usage() {
    std::cerr << "usage: method_bench --connection-string CS --ca-file CA --https-port P --mqtt-port Q [--address A]\n"
                 "       [--modules 1000] [--connections 64] [--seconds 10] [--rate 1000] [--payload 64]\n"
                 "       [--threads 1] [--server-pid PID]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    context c;
    options& o = c.o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--connection-string") o.connection_string = v;
        else if (k == "--ca-file") o.ca_file = v;
        else if (k == "--address") o.address = v;
        else if (k == "--https-port") o.https_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--mqtt-port") o.mqtt_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--modules") o.modules = std::stoi(v);
        else if (k == "--connections") o.connections = std::stoi(v);
        else if (k == "--seconds") o.seconds = std::stod(v);
        else if (k == "--rate") o.rate = std::stoi(v);
        else if (k == "--payload") o.payload = std::stoi(v);
        else if (k == "--threads") o.threads = std::stoi(v);
        else if (k == "--server-pid") o.server_pid = std::stoi(v);
        else return usage();
    }
    if (o.connection_string.empty() || o.ca_file.empty() || o.modules < 1 || o.connections < 1) return usage();
    auto cs = auth::parse_connection_string(o.connection_string);
    if (!cs) {
        std::cerr << "bad connection string: " << cs.error().message << "\n";
        return 2;
    }
    c.cs = *cs;
    c.service_token = auth::generate_sas_token(percent_encode(c.cs.host_name), c.cs.key,
                                               auth::to_unix_seconds(now()) + 7200, c.cs.key_name)
                          .value();
    c.tls.load_verify_file(o.ca_file);
    c.tls.set_verify_mode(asio::ssl::verify_peer);
    c.body_payload = "\"" + std::string(static_cast<std::size_t>(std::max(0, o.payload - 2)), 'p') + "\"";
    for (int i = 0; i < o.modules; ++i) c.module_keys.push_back(generate_key());

    // Enough descriptors for every module connection.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    auto fail_exc = [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::fprintf(stderr, "error: %s\n", x.what());
        }
    };

    // 1. identities
    asio::io_context setup_ioc;
    std::atomic<int> created{0}, create_errors{0};
    const auto t_create = steady::now();
    run_phase(setup_ioc, 1, [&] {
        for (int k = 0; k < 16; ++k)
            asio::co_spawn(setup_ioc, create_identities(c, k, 16, created, create_errors), fail_exc);
    });
    std::printf("created %d devices with a module each in %.1f s (%d errors)\n", created.load(),
                std::chrono::duration<double>(steady::now() - t_create).count(), create_errors.load());
    if (create_errors > 0) return 1;

    // 2. module connections, on their own io_context and thread(s), alive for the whole run.
    asio::io_context mqtt_ioc;
    auto mqtt_work = asio::make_work_guard(mqtt_ioc);
    std::vector<std::shared_ptr<module_conn>> mods;
    std::atomic<int> ready{0}, mqtt_failed{0};
    for (int i = 0; i < o.modules; ++i) {
        mods.push_back(std::make_shared<module_conn>(mqtt_ioc, c, i));
        asio::co_spawn(mqtt_ioc, [m = mods.back(), &ready, &mqtt_failed]() -> awaitable<void> {
            co_await m->run(ready, mqtt_failed);
        }, asio::detached);
    }
    std::vector<std::thread> mqtt_threads;
    for (int t = 0; t < o.threads; ++t) mqtt_threads.emplace_back([&] { mqtt_ioc.run(); });
    const auto t_conn = steady::now();
    while (ready + mqtt_failed < o.modules && steady::now() - t_conn < 120s) std::this_thread::sleep_for(10ms);
    std::printf("connected and subscribed %d modules in %.1f s (%d failed)\n", ready.load(),
                std::chrono::duration<double>(steady::now() - t_conn).count(), mqtt_failed.load());
    if (ready < o.modules) return 1;

    // 3. throughput, closed loop.
    asio::io_context http_ioc;
    const double cpu0 = o.server_pid ? process_cpu_seconds(o.server_pid) : -1;
    const auto warm = steady::now() + 1s;
    const auto until = warm + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(o.seconds));
    run_phase(http_ioc, o.threads, [&] {
        for (int k = 0; k < o.connections; ++k) asio::co_spawn(http_ioc, closed_loop(c, warm, until), fail_exc);
    });
    const double cpu1 = o.server_pid ? process_cpu_seconds(o.server_pid) : -1;
    const double tput = static_cast<double>(c.st.ok.load()) / o.seconds;
    std::printf("throughput: %d connections, %d modules, payload %d B: %.0f round trips/s, p50 %.2f ms, p99 %.2f ms, "
                "%ld failed",
                o.connections, o.modules, o.payload, tput, c.st.percentile(0.50), c.st.percentile(0.99),
                c.st.failed.load());
    if (cpu0 >= 0 && cpu1 >= 0 && c.st.ok > 0)
        std::printf(", hub CPU %.1f us/round trip (%.2f cores)", (cpu1 - cpu0) * 1e6 / static_cast<double>(c.st.ok),
                    (cpu1 - cpu0) / (o.seconds + 1));
    std::printf("\n");
    const bool tput_ok = c.st.failed == 0;

    // 4. latency at a fixed rate, open loop.
    c.st.reset();
    std::atomic<long> slot{0};
    const long total = static_cast<long>(o.rate * o.seconds);
    const auto start = steady::now() + 500ms;
    run_phase(http_ioc, o.threads, [&] {
        for (int k = 0; k < o.connections; ++k) asio::co_spawn(http_ioc, open_loop(c, slot, start, total), fail_exc);
    });
    const double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    std::printf("fixed rate: %d calls/s offered for %.0f s: %.0f calls/s done, p50 %.2f ms, p99 %.2f ms, max %.2f ms, "
                "%ld failed\n",
                o.rate, o.seconds, static_cast<double>(c.st.ok.load()) / elapsed, c.st.percentile(0.50),
                c.st.percentile(0.99), c.st.percentile(1.0), c.st.failed.load());
    std::printf("modules answered %ld method requests in total\n", c.st.method_requests.load());

    for (auto& m : mods) m->stop();
    mqtt_work.reset();
    mqtt_ioc.stop();
    for (auto& t : mqtt_threads) t.join();
    return tput_ok && c.st.failed == 0 ? 0 : 1;
}
