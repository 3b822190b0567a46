// twinhub monitor-events (build/bin/twinhub, run as a child process) against a real twinhubd:
// telemetry sent by device_client / module_client over MQTT comes out as az-shaped JSON lines;
// device wildcards, module filter, start positions, --timeout, and the errors' exit codes.
#include "hub_process.hpp"

#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"
#include "twinhub/registry_manager.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

extern char** environ;

using namespace twinhub;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

test_support::hub_process& hub() {
    static test_support::hub_process h(TWINHUB_BIN_DIR);
    static bool started = [] {
        h.start();
        ::setenv("TWINHUB_CONNECTION_STRING", h.connection_string().c_str(), 1);
        ::setenv("TWINHUB_CA_FILE", h.ca_file().c_str(), 1);
        ::setenv("TWINHUB_PORT", std::to_string(h.https_port()).c_str(), 1);
        ::setenv("TWINHUB_AMQP_PORT", std::to_string(h.amqp_port()).c_str(), 1);
        return true;
    }();
    (void)started;
    return h;
}

std::string unique(const std::string& base) {
    static std::atomic<int> n{0};
    return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct cli_run {
    std::string err_file;
    std::future<std::pair<int, std::string>> done;  // exit code, stdout

    std::string err() const { return slurp(err_file); }
};

// Starts `twinhub args...`; stdout is collected, stderr goes to a file readable while it runs.
cli_run start_cli(const std::vector<std::string>& args) {
    auto& h = hub();
    cli_run r;
    r.err_file = (h.data_dir().parent_path() / ("mon-err-" + unique("x"))).string();
    std::string cmd = quote(h.bin("twinhub"));
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " 2>" + quote(r.err_file);
    r.done = std::async(std::launch::async, [cmd] {
        std::pair<int, std::string> out{-1, {}};
        FILE* p = ::popen(cmd.c_str(), "r");
        if (!p) return out;
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.second.append(buf, n);
        int status = ::pclose(p);
        out.first = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return out;
    });
    return r;
}

// Waits until the monitor says it is receiving (it prints that once its receivers are attached).
bool wait_started(const cli_run& r, std::chrono::seconds within = 20s) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        if (r.err().find("Starting event monitor") != std::string::npos) return true;
        if (r.done.wait_for(0s) == std::future_status::ready) return false;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

std::vector<json::object> json_lines(const std::string& out) {
    std::vector<json::object> v;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        boost::system::error_code ec;
        auto j = json::parse(line, ec);
        EXPECT_FALSE(ec) << "not one JSON object per line: " << line;
        if (!ec && j.is_object()) v.push_back(j.as_object());
    }
    return v;
}

registry_manager registry() {
    service_options o;
    o.tls.ca_file = hub().ca_file();
    o.port = hub().https_port();
    auto r = registry_manager::from_connection_string(hub().connection_string(), o);
    EXPECT_TRUE(r) << r.error().message;
    return std::move(*r);
}

client_options dev_options() {
    client_options o;
    o.tls.ca_file = hub().ca_file();
    o.port = hub().mqtt_port();
    o.operation_timeout = 10s;
    return o;
}

device_client device(registry_manager& rm, const std::string& id) {
    EXPECT_TRUE(rm.create_device(id));
    auto cs = rm.device_connection_string(id);
    EXPECT_TRUE(cs) << cs.error().message;
    auto c = device_client::create_from_connection_string(*cs, dev_options());
    EXPECT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->connect());
    return std::move(*c);
}

void send(hub_client& c, const std::string& body, const std::string& content_type,
          std::vector<std::pair<std::string, std::string>> props = {}, const std::string& mid = {}) {
    message m(body);
    m.message_id = mid;
    m.content_type = content_type;
    m.content_encoding = "utf-8";
    m.properties = std::move(props);
    auto r = c.send_message(m);
    ASSERT_TRUE(r) << r.error().message;
}

long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST(cli_monitor_events, streams_the_devices_events_as_az_json_lines_and_exits_after_timeout) {
    auto rm = registry();
    const auto id = unique("mon-dev");
    const auto other = unique("mon-other");
    auto dev = device(rm, id);
    auto dev2 = device(rm, other);

    const auto t0 = std::chrono::steady_clock::now();
    auto run = start_cli({"monitor-events", "-d", id, "--timeout", "6", "--props", "sys", "app", "anno"});
    ASSERT_TRUE(wait_started(run)) << run.err();
    for (int i = 0; i < 3; ++i)
        send(dev, "{\"temperature\": " + std::to_string(20 + i) + "}", "application/json",
             {{"alert", "n" + std::to_string(i)}}, "mid-" + std::to_string(i));
    send(dev2, "{\"not\": \"mine\"}", "application/json");

    auto [rc, out] = run.done.get();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(rc, 0) << run.err();
    EXPECT_GE(took, 6s);
    EXPECT_LT(took, 15s);
    auto lines = json_lines(out);
    ASSERT_EQ(lines.size(), 3u) << out;
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(lines[i].contains("event")) << out;
        const auto& ev = lines[i].at("event").as_object();
        EXPECT_EQ(ev.at("origin").as_string(), id);
        EXPECT_EQ(ev.at("module").as_string(), "");
        EXPECT_EQ(ev.at("interface").as_string(), "");
        EXPECT_EQ(ev.at("component").as_string(), "");
        // application/json: the payload is JSON, not a string.
        EXPECT_EQ(ev.at("payload"), (json::object{{"temperature", 20 + i}}));
        const auto& props = ev.at("properties").as_object();
        const auto& sys = props.at("system").as_object();
        EXPECT_EQ(sys.at("message_id").as_string(), "mid-" + std::to_string(i));
        EXPECT_EQ(sys.at("content_type").as_string(), "application/json");
        EXPECT_EQ(sys.at("content_encoding").as_string(), "utf-8");
        EXPECT_EQ(props.at("application"), (json::object{{"alert", "n" + std::to_string(i)}}));
        const auto& anno = ev.at("annotations").as_object();
        EXPECT_EQ(anno.at("iothub-connection-device-id").as_string(), id);
        EXPECT_TRUE(anno.at("x-opt-sequence-number").is_int64());
        EXPECT_TRUE(anno.contains("x-opt-enqueued-time"));
        EXPECT_EQ(anno.at("iothub-message-source").as_string(), "Telemetry");
    }
}

TEST(cli_monitor_events, wildcards_module_filter_and_enqueued_time_start) {
    auto rm = registry();
    const auto base = unique("mon-wc");
    const auto start = now_ms() - 1000;
    auto x1 = device(rm, base + "-x1");
    auto y2 = device(rm, base + "-y2");
    ASSERT_TRUE(rm.create_module(base + "-x1", "filter"));
    auto mcs = rm.module_connection_string(base + "-x1", "filter");
    ASSERT_TRUE(mcs) << mcs.error().message;
    auto mod = module_client::create_from_connection_string(*mcs, dev_options());
    ASSERT_TRUE(mod) << mod.error().message;
    ASSERT_TRUE(mod->connect());
    // Sent before the monitor starts: only a start in the past reads them.
    send(x1, "plain text 1", "text/plain");
    send(y2, "plain text 2", "text/plain");
    send(*mod, "from the module", "text/plain");

    auto [rc, out] =
        start_cli({"monitor-events", "-d", base + "-x?", "--enqueued-time", std::to_string(start), "--timeout", "3"})
            .done.get();
    ASSERT_EQ(rc, 0) << out;
    auto lines = json_lines(out);
    ASSERT_EQ(lines.size(), 2u) << out;  // x1 and its module (maybe on another partition); not y2
    if (lines[0].at("event").at("module").as_string() != "") std::swap(lines[0], lines[1]);
    const auto& first = lines[0].at("event").as_object();
    EXPECT_EQ(first.at("origin").as_string(), base + "-x1");
    EXPECT_EQ(first.at("payload").as_string(), "plain text 1");  // text/plain: a string
    EXPECT_FALSE(first.contains("properties"));                  // no --props
    EXPECT_FALSE(first.contains("annotations"));
    EXPECT_EQ(lines[1].at("event").at("module").as_string(), "filter");

    auto [rc2, out2] =
        start_cli({"monitor-events", "-d", base + "-*", "-m", "fil*", "--start", "earliest", "--timeout", "3"})
            .done.get();
    ASSERT_EQ(rc2, 0);
    auto only_module = json_lines(out2);
    ASSERT_EQ(only_module.size(), 1u) << out2;
    EXPECT_EQ(only_module[0].at("event").at("module").as_string(), "filter");
    EXPECT_EQ(only_module[0].at("event").at("payload").as_string(), "from the module");

    // Default start is now: the events sent before are not printed.
    auto [rc3, out3] = start_cli({"monitor-events", "-d", base + "-*", "--timeout", "2"}).done.get();
    ASSERT_EQ(rc3, 0);
    EXPECT_TRUE(json_lines(out3).empty()) << out3;
}

TEST(cli_monitor_events, timeout_zero_runs_until_interrupted) {
    hub();
    std::string bin = hub().bin("twinhub");
    std::vector<std::string> args{bin, "monitor-events", "--timeout", "0"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    ASSERT_EQ(::posix_spawn(&pid, bin.c_str(), nullptr, nullptr, argv.data(), environ), 0);
    std::this_thread::sleep_for(4s);
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "monitor-events --timeout 0 exited on its own";
    ::kill(pid, SIGTERM);
    ::waitpid(pid, &status, 0);
}

TEST(cli_monitor_events, errors_go_to_stderr_with_exit_codes) {
    hub();
    {
        auto run = start_cli({"monitor-events", "--cg", "nope", "--timeout", "2"});
        auto [rc, out] = run.done.get();
        EXPECT_EQ(rc, 1);
        EXPECT_TRUE(out.empty()) << out;
        EXPECT_NE(run.err().find("nope"), std::string::npos) << run.err();
    }
    {
        auto run =
            start_cli({"monitor-events", "--login", "HostName=h;DeviceId=d;SharedAccessKey=AAAA", "--timeout", "2"});
        auto [rc, out] = run.done.get();
        EXPECT_EQ(rc, 2) << run.err();
        EXPECT_NE(run.err().find("service connection string"), std::string::npos) << run.err();
    }
    {
        auto port = std::to_string(test_support::free_port());
        auto run = start_cli({"monitor-events", "--amqp-port", port, "--timeout", "2"});
        auto [rc, out] = run.done.get();
        EXPECT_EQ(rc, 3) << run.err();
        EXPECT_NE(run.err().find("connection failed"), std::string::npos) << run.err();
    }
    {
        auto show = start_cli({"hub", "connection-string", "show", "--policy-name", "registryRead", "--data-dir",
                               hub().data_dir().string()});
        auto [rc0, cs] = show.done.get();
        ASSERT_EQ(rc0, 0) << show.err();
        while (!cs.empty() && cs.back() == '\n') cs.pop_back();
        auto run = start_cli({"monitor-events", "--login", cs, "--timeout", "2"});
        auto [rc, out] = run.done.get();
        EXPECT_EQ(rc, 1) << run.err();
        EXPECT_NE(run.err().find("Unauthorized"), std::string::npos) << run.err();
        EXPECT_NE(run.err().find("ServiceConnect"), std::string::npos) << run.err();
    }
    {
        auto run = start_cli({"monitor-events", "--props", "bogus"});
        auto [rc, out] = run.done.get();
        EXPECT_EQ(rc, 2) << run.err();
    }
}
