// Scheduled twin update job vs the same twin updates sent one by one, through a running twinhubd
// (docs/benchmarks.md, "Jobs"), in one run on one hub:
//   1. creates N devices (default 100,000) with bulk POST /devices (100 per request);
//   2. one by one: C keep-alive HTTPS connections (default 32) send PATCH /twins/{id} with a
//      desired property to every device, each waiting for its answer (durable) before the next;
//   3. job: one PUT /jobs/v2/{id} scheduleUpdateTwin over the same devices (queryCondition
//      "status = 'enabled'": the hub holds only these devices), polled with GET every 100 ms
//      until "completed"; its deviceJobStatistics must say every device succeeded.
// Prints both times and their ratio (one-by-one time / job time).
//
// Usage: jobs_bench --connection-string CS --ca-file CA [--address 127.0.0.1] [--port 443]
//                   [--devices 100000] [--connections 32] [--server-pid PID]
// bench/jobs_bench.sh starts a hub with a fresh data directory and runs this against it.
#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "common/time.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using asio::use_awaitable;
using namespace twinhub;

namespace {

struct options {
    std::string connection_string, ca_file, address = "127.0.0.1";
    unsigned short port = 443;
    std::size_t devices = 100000;
    int connections = 32;
    int server_pid = 0;
};

double process_cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!pid || !std::getline(f, line)) return -1;
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct ctx {
    options opt;
    std::string host, token;
    asio::ssl::context* tls = nullptr;
    std::size_t next = 0;  // the next work item (single-threaded io_context)
    std::size_t failed = 0;
    std::string first_error;
};

using stream_t = beast::ssl_stream<beast::tcp_stream>;

asio::awaitable<std::unique_ptr<stream_t>> connect(ctx& c) {
    auto ex = co_await asio::this_coro::executor;
    auto s = std::make_unique<stream_t>(ex, *c.tls);
    SSL_set_tlsext_host_name(s->native_handle(), c.host.c_str());
    s->set_verify_callback(asio::ssl::host_name_verification(c.host));
    co_await beast::get_lowest_layer(*s).async_connect(
        asio::ip::tcp::endpoint(asio::ip::make_address(c.opt.address), c.opt.port), use_awaitable);
    beast::get_lowest_layer(*s).socket().set_option(asio::ip::tcp::no_delay(true));
    co_await s->async_handshake(asio::ssl::stream_base::client, use_awaitable);
    co_return s;
}

asio::awaitable<bhttp::response<bhttp::string_body>> call(ctx& c, stream_t& s, beast::flat_buffer& buf, bhttp::verb v,
                                                          const std::string& target, std::string body) {
    bhttp::request<bhttp::string_body> req{v, target + "?api-version=2021-04-12", 11};
    req.set(bhttp::field::host, c.host);
    req.set(bhttp::field::authorization, c.token);
    req.set(bhttp::field::content_type, "application/json; charset=utf-8");
    if (v == bhttp::verb::patch) req.set(bhttp::field::if_match, "\"*\"");
    req.body() = std::move(body);
    req.prepare_payload();
    co_await bhttp::async_write(s, req, use_awaitable);
    bhttp::response<bhttp::string_body> res;
    co_await bhttp::async_read(s, buf, res, use_awaitable);
    co_return res;
}

std::string device_id(std::size_t i) { return "jb-" + std::to_string(i); }

enum class phase { create, patch };

asio::awaitable<void> worker(ctx& c, phase ph) {
    try {
        auto s = co_await connect(c);
        beast::flat_buffer buf;
        const std::size_t step = ph == phase::create ? 100 : 1;
        while (c.next < c.opt.devices) {
            const std::size_t first = c.next;
            c.next += step;
            bhttp::response<bhttp::string_body> res;
            if (ph == phase::create) {
                std::string body = "[";
                for (std::size_t i = first; i < std::min(first + step, c.opt.devices); ++i) {
                    if (i != first) body += ",";
                    body += R"({"id":")" + device_id(i) + R"(","importMode":"create"})";
                }
                body += "]";
                res = co_await call(c, *s, buf, bhttp::verb::post, "/devices", std::move(body));
            } else {
                res = co_await call(c, *s, buf, bhttp::verb::patch, "/twins/" + device_id(first),
                                    R"({"properties":{"desired":{"setpoint":1}}})");
            }
            if (res.result_int() != 200) {
                c.failed++;
                if (c.first_error.empty()) c.first_error = std::to_string(res.result_int()) + " " + res.body();
            }
        }
    } catch (const std::exception& e) {
        c.failed++;
        if (c.first_error.empty()) c.first_error = e.what();
    }
}

double run_phase(ctx& c, phase ph) {
    asio::io_context ioc;
    c.next = 0;
    c.failed = 0;
    auto t0 = steady::now();
    for (int i = 0; i < c.opt.connections; ++i) asio::co_spawn(ioc, worker(c, ph), asio::detached);
    ioc.run();
    double s = std::chrono::duration<double>(steady::now() - t0).count();
    if (c.failed) std::printf("  %zu failed; first: %.200s\n", c.failed, c.first_error.c_str());
    return s;
}

// PUT /jobs/v2/{id}, then GET every 100 ms until a final status; seconds from the PUT.
asio::awaitable<void> run_job(ctx& c, double& seconds, std::string& summary) {
    auto s = co_await connect(c);
    beast::flat_buffer buf;
    const std::string id = "jobs-bench-" + std::to_string(::getpid());
    json::object body;
    body["jobId"] = id;
    body["type"] = "scheduleUpdateTwin";
    body["queryCondition"] = "status = 'enabled'";
    body["updateTwin"] = json::parse(R"({"etag":"*","properties":{"desired":{"setpoint":2}}})");
    body["startTime"] = format_time(now());
    body["maxExecutionTimeInSeconds"] = 3600;
    auto t0 = steady::now();
    auto res = co_await call(c, *s, buf, bhttp::verb::put, "/jobs/v2/" + id, json::serialize(body));
    if (res.result_int() != 200) {
        summary = "PUT failed: " + std::to_string(res.result_int()) + " " + res.body();
        co_return;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        res = co_await call(c, *s, buf, bhttp::verb::get, "/jobs/v2/" + id, "");
        auto v = json::parse(res.body());
        std::string status(v.at("status").as_string());
        if (status == "completed" || status == "failed" || status == "cancelled") {
            seconds = std::chrono::duration<double>(steady::now() - t0).count();
            summary = status + " " + json::serialize(v.at("deviceJobStatistics"));
            co_return;
        }
        timer.expires_after(std::chrono::milliseconds(100));
        co_await timer.async_wait(use_awaitable);
    }
}

int usage() {
    std::fprintf(stderr, "usage: jobs_bench --connection-string CS --ca-file CA [--address A] [--port P] [--devices N]\n"
                         "                  [--connections C] [--server-pid PID]\n");
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
        else if (a == "--devices") opt.devices = std::stoul(next());
        else if (a == "--connections") opt.connections = std::stoi(next());
        else if (a == "--server-pid") opt.server_pid = std::stoi(next());
        else return usage();
    }
    if (opt.connection_string.empty() || opt.ca_file.empty() || opt.connections < 1 || opt.devices == 0) return usage();
    auto cs = auth::parse_connection_string(opt.connection_string);
    if (!cs || cs->kind != auth::connection_string_kind::service) {
        std::fprintf(stderr, "jobs_bench: a service connection string is required\n");
        return 2;
    }
    ctx c;
    c.opt = opt;
    c.host = cs->host_name;
    auto token = auth::generate_sas_token(c.host, cs->key, auth::to_unix_seconds(now()) + 24 * 3600, cs->key_name);
    if (!token) return usage();
    c.token = *token;
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.set_verify_mode(asio::ssl::verify_peer);
    tls.load_verify_file(opt.ca_file);
    c.tls = &tls;

    std::printf("jobs_bench: %zu devices, %d keep-alive TLS connections for the one-by-one updates\n", opt.devices,
                opt.connections);
    double create_s = run_phase(c, phase::create);
    std::printf("create %zu devices (bulk, 100/request):  %8.2f s  (%.0f devices/s)\n", opt.devices, create_s,
                static_cast<double>(opt.devices) / create_s);
    const double cpu0 = process_cpu_seconds(opt.server_pid);
    double one_s = run_phase(c, phase::patch);
    const double cpu1 = process_cpu_seconds(opt.server_pid);
    std::printf("one by one: %zu PATCH /twins/{id}:       %8.2f s  (%.0f updates/s, server CPU %.1f s)\n", opt.devices,
                one_s, static_cast<double>(opt.devices) / one_s, cpu1 - cpu0);
    double job_s = 0;
    std::string summary;
    asio::io_context ioc;
    asio::co_spawn(ioc, run_job(c, job_s, summary), [&](std::exception_ptr e) {
        if (e) summary = "job failed with an exception";
    });
    ioc.run();
    const double cpu2 = process_cpu_seconds(opt.server_pid);
    std::printf("job: scheduleUpdateTwin over %zu devices: %8.2f s  (%.0f updates/s, server CPU %.1f s) %s\n",
                opt.devices, job_s, job_s > 0 ? static_cast<double>(opt.devices) / job_s : 0.0, cpu2 - cpu1,
                summary.c_str());
    if (job_s > 0) std::printf("ratio one-by-one / job: %.2f\n", one_s / job_s);
    return job_s > 0 && summary.rfind("completed", 0) == 0 ? 0 : 1;
}
