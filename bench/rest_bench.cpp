// Service REST throughput against a running twinhubd: registry creates/s, twin GETs/s and durable
// twin PATCHes/s from N concurrent keep-alive TLS clients (default 64), each phase for a fixed time,
// with p50/p99 latency. Compare with the Azure S3 x10 quota: 5,000 twin reads/s, 2,500 twin
// updates/s (spec 7.2).
//
// Usage: rest_bench --connection-string CS --ca-file CA [--address 127.0.0.1] [--port 443]
//                   [--connections 64] [--seconds 10] [--threads 1] [--server-pid PID]
// bench/rest_bench.sh starts a hub with a fresh data directory and runs this against it.
#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using steady = std::chrono::steady_clock;
using namespace twinhub;

namespace {

struct options {
    std::string connection_string;
    std::string ca_file;
    std::string address = "127.0.0.1";
    unsigned short port = 443;
    int connections = 64;
    double seconds = 10;
    int threads = 1;
    int server_pid = 0;  // when set, the server's CPU time per request is reported too
};

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat; -1 if unreadable.
double process_cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!pid || !std::getline(f, line)) return -1;
    auto rparen = line.rfind(')');
    if (rparen == std::string::npos) return -1;
    std::istringstream rest(line.substr(rparen + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

enum class phase { create, get, patch };

const char* name(phase p) {
    switch (p) {
    case phase::create: return "registry creates (PUT /devices/{id})";
    case phase::get: return "twin reads (GET /twins/{id})";
    case phase::patch: return "durable twin updates (PATCH /twins/{id}, desired)";
    }
    return "";
}

struct worker_result {
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::vector<std::uint32_t> latency_us;
    std::vector<std::string> devices;  // created by this worker in the create phase
    std::string first_error;
};

struct shared {
    options opt;
    std::string host;
    std::string token;
    asio::ssl::context* tls = nullptr;
};

asio::awaitable<void> run_worker(shared& sh, int index, phase ph, steady::time_point end, worker_result& out) {
    auto ex = co_await asio::this_coro::executor;
    beast::ssl_stream<beast::tcp_stream> stream(ex, *sh.tls);
    SSL_set_tlsext_host_name(stream.native_handle(), sh.host.c_str());
    stream.set_verify_callback(asio::ssl::host_name_verification(sh.host));
    try {
        co_await beast::get_lowest_layer(stream).async_connect(
            asio::ip::tcp::endpoint(asio::ip::make_address(sh.opt.address), sh.opt.port), asio::use_awaitable);
        beast::get_lowest_layer(stream).socket().set_option(asio::ip::tcp::no_delay(true));
        co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    } catch (const std::exception& e) {
        out.failed++;
        if (out.first_error.empty()) out.first_error = std::string("connect: ") + e.what();
        co_return;
    }
    beast::flat_buffer buffer;
    std::uint64_t n = 0;
    while (steady::now() < end) {
        bhttp::request<bhttp::string_body> req;
        req.version(11);
        req.set(bhttp::field::host, sh.host);
        req.set(bhttp::field::authorization, sh.token);
        req.set(bhttp::field::content_type, "application/json; charset=utf-8");
        std::string target;
        switch (ph) {
        case phase::create: {
            std::string id = "bench-" + std::to_string(index) + "-" + std::to_string(n);
            req.method(bhttp::verb::put);
            req.target("/devices/" + id + "?api-version=2021-04-12");
            req.body() = R"({"deviceId":")" + id +
                         R"(","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})";
            out.devices.push_back(id);
            break;
        }
        case phase::get: {
            const auto& id = out.devices[n % out.devices.size()];
            req.method(bhttp::verb::get);
            req.target("/twins/" + id + "?api-version=2021-04-12");
            break;
        }
        case phase::patch: {
            const auto& id = out.devices[n % out.devices.size()];
            req.method(bhttp::verb::patch);
            req.target("/twins/" + id + "?api-version=2021-04-12");
            req.set(bhttp::field::if_match, "\"*\"");
            req.body() = R"({"properties":{"desired":{"setpoint":)" + std::to_string(n) + "}}}";
            break;
        }
        }
        req.prepare_payload();
        auto t0 = steady::now();
        bhttp::response<bhttp::string_body> res;
        try {
            co_await bhttp::async_write(stream, req, asio::use_awaitable);
            co_await bhttp::async_read(stream, buffer, res, asio::use_awaitable);
        } catch (const std::exception& e) {
            out.failed++;
            if (out.first_error.empty()) out.first_error = e.what();
            co_return;
        }
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count();
        if (res.result_int() == 200) {
            out.ok++;
            out.latency_us.push_back(static_cast<std::uint32_t>(us));
        } else {
            out.failed++;
            if (ph == phase::create) out.devices.pop_back();
            if (out.first_error.empty()) out.first_error = std::to_string(res.result_int()) + " " + res.body();
        }
        ++n;
    }
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

double percentile(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k] / 1000.0;
}

double run_phase(shared& sh, phase ph, std::vector<worker_result>& workers) {
    asio::io_context ioc(sh.opt.threads);
    const double cpu0 = process_cpu_seconds(sh.opt.server_pid);
    auto start = steady::now();
    auto end = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(sh.opt.seconds));
    for (auto& w : workers) {
        w.ok = w.failed = 0;
        w.latency_us.clear();
        w.first_error.clear();
    }
    for (int i = 0; i < sh.opt.connections; ++i) {
        asio::co_spawn(ioc, run_worker(sh, i, ph, end, workers[static_cast<std::size_t>(i)]), asio::detached);
    }
    std::vector<std::thread> threads;
    for (int t = 1; t < sh.opt.threads; ++t) threads.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    double elapsed = std::chrono::duration<double>(steady::now() - start).count();

    std::uint64_t ok = 0, failed = 0;
    std::vector<std::uint32_t> all;
    std::string first_error;
    for (auto& w : workers) {
        ok += w.ok;
        failed += w.failed;
        all.insert(all.end(), w.latency_us.begin(), w.latency_us.end());
        if (first_error.empty()) first_error = w.first_error;
    }
    double rate = static_cast<double>(ok) / elapsed;
    std::printf("%-52s %10.0f req/s  ok=%llu failed=%llu  p50=%.2f ms  p99=%.2f ms\n", name(ph), rate,
                static_cast<unsigned long long>(ok), static_cast<unsigned long long>(failed), percentile(all, 0.5),
                percentile(all, 0.99));
    const double cpu1 = process_cpu_seconds(sh.opt.server_pid);
    if (cpu0 >= 0 && cpu1 >= 0 && ok > 0) {
        const double us_per_req = (cpu1 - cpu0) * 1e6 / static_cast<double>(ok);
        std::printf("  server CPU: %.1f us/request (%.2f cores busy) -> %.0f req/s per fully available core\n",
                    us_per_req, (cpu1 - cpu0) / elapsed, 1e6 / us_per_req);
    }
    if (!first_error.empty()) std::printf("  first error: %.200s\n", first_error.c_str());
    std::fflush(stdout);
    return rate;
}

int usage() {
    std::fprintf(stderr,
                 "usage: rest_bench --connection-string CS --ca-file CA [--address A] [--port P] [--connections N]\n"
                 "                  [--seconds S] [--threads T] [--server-pid PID]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) std::exit(usage());
            return argv[++i];
        };
        if (a == "--connection-string") opt.connection_string = next();
        else if (a == "--ca-file") opt.ca_file = next();
        else if (a == "--address") opt.address = next();
        else if (a == "--port") opt.port = static_cast<unsigned short>(std::stoi(next()));
        else if (a == "--connections") opt.connections = std::stoi(next());
        else if (a == "--seconds") opt.seconds = std::stod(next());
        else if (a == "--threads") opt.threads = std::stoi(next());
        else if (a == "--server-pid") opt.server_pid = std::stoi(next());
        else return usage();
    }
    if (opt.connection_string.empty() || opt.ca_file.empty() || opt.connections < 1) return usage();

    auto cs = auth::parse_connection_string(opt.connection_string);
    if (!cs || cs->kind != auth::connection_string_kind::service) {
        std::fprintf(stderr, "rest_bench: a service connection string is required\n");
        return 2;
    }
    shared sh;
    sh.opt = opt;
    sh.host = cs->host_name;
    auto token = auth::generate_sas_token(sh.host, cs->key, auth::to_unix_seconds(now()) + 24 * 3600, cs->key_name);
    if (!token) {
        std::fprintf(stderr, "rest_bench: %s\n", token.error().message.c_str());
        return 2;
    }
    sh.token = *token;
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.set_verify_mode(asio::ssl::verify_peer);
    try {
        tls.load_verify_file(opt.ca_file);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rest_bench: cannot read --ca-file %s: %s\n", opt.ca_file.c_str(), e.what());
        return 2;
    }
    sh.tls = &tls;

    std::printf("rest_bench: %d keep-alive TLS connections, %.0f s per phase, %d client thread(s), %s:%u\n",
                opt.connections, opt.seconds, opt.threads, opt.address.c_str(), static_cast<unsigned>(opt.port));
    std::vector<worker_result> workers(static_cast<std::size_t>(opt.connections));
    run_phase(sh, phase::create, workers);
    for (auto& w : workers) {
        if (w.devices.empty()) {
            std::fprintf(stderr, "rest_bench: a connection created no device; cannot measure twins\n");
            return 1;
        }
    }
    double gets = run_phase(sh, phase::get, workers);
    double patches = run_phase(sh, phase::patch, workers);
    std::printf("vs Azure S3 x10 quota: twin reads %.1fx of 5,000/s, twin updates %.1fx of 2,500/s\n", gets / 5000.0,
                patches / 2500.0);
    return 0;
}
