// The twinhub CLI's c2d-message commands (build/bin/twinhub, run as a child process) against a real
// twinhubd: send (AMQP) with properties and --wait for feedback, purge, and the device HTTPS
// receive / complete / abandon / reject; exit codes and error output.
#include "hub_process.hpp"

#include "twinhub/device_client.hpp"
#include "twinhub/registry_manager.hpp"
#include "twinhub/service_client.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

using namespace twinhub;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

test_support::hub_process& hub() {
    static test_support::hub_process h(TWINHUB_BIN_DIR);
    static bool started = [] {
        h.start();
        // The CLI reads the hub from the environment, as a user's shell would set it.
        ::setenv("TWINHUB_CONNECTION_STRING", h.connection_string().c_str(), 1);
        ::setenv("TWINHUB_CA_FILE", h.ca_file().c_str(), 1);
        ::setenv("TWINHUB_PORT", std::to_string(h.https_port()).c_str(), 1);
        ::setenv("TWINHUB_AMQP_PORT", std::to_string(h.amqp_port()).c_str(), 1);
        return true;
    }();
    (void)started;
    return h;
}

struct cli_result {
    int rc = -1;
    std::string out;
    std::string err;
};

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') q += "'\\''";
        else q += c;
    }
    return q + "'";
}

cli_result twinhub_cli(const std::vector<std::string>& args) {
    auto& h = hub();
    std::string err_file = (h.data_dir().parent_path() / ("cli-err-" + std::to_string(::getpid()) + "-" +
                                                          std::to_string(std::rand()))).string();
    std::string cmd = quote(h.bin("twinhub"));
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " 2>" + quote(err_file);
    cli_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int status = ::pclose(p);
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    std::remove(err_file.c_str());
    return r;
}

registry_manager registry() {
    service_options o;
    o.tls.ca_file = hub().ca_file();
    o.port = hub().https_port();
    o.amqp_port = hub().amqp_port();
    auto r = registry_manager::from_connection_string(hub().connection_string(), o);
    EXPECT_TRUE(r) << r.error().message;
    return std::move(*r);
}

std::string unique(const std::string& base) {
    static std::atomic<int> n{0};
    return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

struct inbox {
    std::mutex m;
    std::condition_variable cv;
    std::deque<received_c2d_message> got;
    void push(const received_c2d_message& x) {
        std::lock_guard l(m);
        got.push_back(x);
        cv.notify_all();
    }
    std::optional<received_c2d_message> pop(std::chrono::milliseconds t) {
        std::unique_lock l(m);
        if (!cv.wait_for(l, t, [&] { return !got.empty(); })) return std::nullopt;
        auto x = std::move(got.front());
        got.pop_front();
        return x;
    }
};

device_client device(registry_manager& rm, const std::string& id) {
    auto cs = rm.device_connection_string(id);
    EXPECT_TRUE(cs);
    client_options o;
    o.tls.ca_file = hub().ca_file();
    o.port = hub().mqtt_port();
    o.operation_timeout = 10s;
    auto c = device_client::create_from_connection_string(*cs, o);
    EXPECT_TRUE(c);
    return std::move(*c);
}

}  // namespace

TEST(cli_c2d, send_with_properties_reaches_the_device) {
    auto rm = registry();
    auto id = unique("cli-c2d");
    ASSERT_TRUE(rm.create_device(id));
    inbox in;
    auto dev = device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& m) { in.push(m); }));
    ASSERT_TRUE(dev.connect());

    auto r = twinhub_cli({"c2d-message", "send", "-d", id, "--data", "{\"x\":1}", "--props", "a=1;b=two words;c=x=y",
                          "--mid", "cli-mid-1", "--cid", "cli-cid", "--ct", "application/json", "--ack", "positive",
                          "--expiry-time-utc", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                  (std::chrono::system_clock::now() + 1h).time_since_epoch())
                                                                  .count())});
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    auto got = in.pop(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->body, "{\"x\":1}");
    EXPECT_EQ(got->message_id, "cli-mid-1");
    EXPECT_EQ(got->correlation_id, "cli-cid");
    EXPECT_EQ(got->content_type, "application/json");
    EXPECT_EQ(got->content_encoding, "utf-8");  // az's default
    EXPECT_EQ(got->ack, "positive");
    EXPECT_TRUE(got->expiry_time_utc.starts_with("20")) << got->expiry_time_utc;
    using kv = std::pair<std::string, std::string>;
    EXPECT_EQ(got->properties, (std::vector<kv>{{"a", "1"}, {"b", "two words"}, {"c", "x=y"}}));

    // Without --mid the message still gets an id (a UUID), as az gives it.
    auto plain = twinhub_cli({"c2d-message", "send", "-d", id});
    ASSERT_EQ(plain.rc, 0) << plain.err;
    auto p = in.pop(10s);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->body, "Ping from Az CLI IoT Extension");
    EXPECT_EQ(p->message_id.size(), 36u) << p->message_id;
}

TEST(cli_c2d, send_wait_prints_the_feedback_record) {
    auto rm = registry();
    auto id = unique("cli-wait");
    auto d = rm.create_device(id);
    ASSERT_TRUE(d);
    auto dev = device(rm, id);
    ASSERT_TRUE(dev.on_message([](const received_c2d_message&) {}));  // returning completes it
    ASSERT_TRUE(dev.connect());
    auto mid = unique("wait-mid");
    auto r = twinhub_cli({"c2d-message", "send", "-d", id, "--mid", mid, "--ack", "full", "--wait", "--timeout", "30"});
    ASSERT_EQ(r.rc, 0) << r.err;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    ASSERT_FALSE(ec) << r.out;
    ASSERT_TRUE(v.is_object());
    auto& o = v.as_object();
    EXPECT_EQ(o.at("originalMessageId").as_string(), mid);
    EXPECT_EQ(o.at("statusCode").as_string(), "Success");
    EXPECT_EQ(o.at("deviceId").as_string(), id);
    EXPECT_EQ(o.at("deviceGenerationId").as_string(), d->generation_id);
}

TEST(cli_c2d, send_wait_times_out_when_the_device_never_settles) {
    auto rm = registry();
    auto id = unique("cli-nowait");
    ASSERT_TRUE(rm.create_device(id));
    auto r = twinhub_cli({"c2d-message", "send", "-d", id, "--ack", "full", "--wait", "--timeout", "2"});
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_NE(r.err.find("no feedback"), std::string::npos) << r.err;
}

TEST(cli_c2d, send_errors_and_usage) {
    auto nobody = twinhub_cli({"c2d-message", "send", "-d", unique("nobody")});
    EXPECT_EQ(nobody.rc, 1);
    EXPECT_NE(nobody.err.find("DeviceNotFound"), std::string::npos) << nobody.err;

    auto no_ack = twinhub_cli({"c2d-message", "send", "-d", "x", "--wait"});
    EXPECT_EQ(no_ack.rc, 2);
    EXPECT_NE(no_ack.err.find("--ack"), std::string::npos) << no_ack.err;

    auto bad_props = twinhub_cli({"c2d-message", "send", "-d", "x", "--props", "novalue"});
    EXPECT_EQ(bad_props.rc, 2);
    EXPECT_NE(bad_props.err.find("--props"), std::string::npos) << bad_props.err;

    auto bad_ack = twinhub_cli({"c2d-message", "send", "-d", "x", "--ack", "sometimes"});
    EXPECT_EQ(bad_ack.rc, 2);

    auto rm = registry();
    auto id = unique("cli-full");
    ASSERT_TRUE(rm.create_device(id));
    service_options o;
    o.tls.ca_file = hub().ca_file();
    o.amqp_port = hub().amqp_port();
    auto sc = service_client::from_connection_string(hub().connection_string(), o);
    ASSERT_TRUE(sc);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(sc->send(id, c2d_message("x")));
    auto full = twinhub_cli({"c2d-message", "send", "-d", id});
    EXPECT_EQ(full.rc, 1);
    EXPECT_NE(full.err.find("DeviceMaximumQueueDepthExceeded"), std::string::npos) << full.err;

    auto closed = twinhub_cli({"c2d-message", "send", "-d", id, "--amqp-port", std::to_string(test_support::free_port())});
    EXPECT_EQ(closed.rc, 3) << closed.err;
}

TEST(cli_c2d, purge_prints_the_count) {
    auto rm = registry();
    auto id = unique("cli-purge");
    ASSERT_TRUE(rm.create_device(id));
    ASSERT_EQ(twinhub_cli({"c2d-message", "send", "-d", id}).rc, 0);
    ASSERT_EQ(twinhub_cli({"c2d-message", "send", "-d", id}).rc, 0);
    auto r = twinhub_cli({"c2d-message", "purge", "-d", id});
    ASSERT_EQ(r.rc, 0) << r.err;
    auto v = json::parse(r.out);
    EXPECT_EQ(v.at("totalMessagesPurged").as_int64(), 2);
    EXPECT_EQ(v.at("deviceId").as_string(), id);
    EXPECT_TRUE(v.at("moduleId").is_null());

    auto nobody = twinhub_cli({"c2d-message", "purge", "-d", unique("nobody")});
    EXPECT_EQ(nobody.rc, 1);
    EXPECT_NE(nobody.err.find("DeviceNotFound"), std::string::npos) << nobody.err;
}

TEST(cli_c2d, receive_complete_abandon_reject_over_the_device_https_api) {
    auto rm = registry();
    auto id = unique("cli-recv");
    ASSERT_TRUE(rm.create_device(id));
    auto empty = twinhub_cli({"c2d-message", "receive", "-d", id});
    ASSERT_EQ(empty.rc, 0) << empty.err;
    EXPECT_TRUE(empty.out.empty()) << empty.out;

    ASSERT_EQ(twinhub_cli({"c2d-message", "send", "-d", id, "--data", "first", "--mid", "m1", "--cid", "c1", "--props",
                           "k=v", "--ack", "full", "--ct", "text/plain"})
                  .rc,
              0);
    auto r = twinhub_cli({"c2d-message", "receive", "-d", id});
    ASSERT_EQ(r.rc, 0) << r.err;
    auto v = json::parse(r.out).as_object();
    EXPECT_EQ(v.at("data").as_string(), "first");
    auto& sys = v.at("properties").at("system").as_object();
    EXPECT_EQ(sys.at("iothub-messageid").as_string(), "m1");
    EXPECT_EQ(sys.at("iothub-correlationid").as_string(), "c1");
    EXPECT_EQ(sys.at("iothub-ack").as_string(), "full");
    const std::string count(sys.at("iothub-deliverycount").as_string());
    EXPECT_EQ(sys.at("content-type").as_string(), "text/plain");
    EXPECT_EQ(v.at("properties").at("app").at("k").as_string(), "v");
    std::string etag(v.at("etag").as_string());
    ASSERT_FALSE(etag.empty());

    // Abandon: it comes back, delivered once more.
    ASSERT_EQ(twinhub_cli({"c2d-message", "abandon", "-d", id, "--lock-token", etag}).rc, 0);
    auto again = twinhub_cli({"c2d-message", "receive", "-d", id});
    ASSERT_EQ(again.rc, 0) << again.err;
    auto v2 = json::parse(again.out).as_object();
    EXPECT_EQ(v2.at("data").as_string(), "first");
    EXPECT_EQ(v2.at("properties").at("system").at("iothub-deliverycount").as_string(),
              std::to_string(std::stoi(count) + 1));
    std::string etag2(v2.at("etag").as_string());

    // The first lock is stale now.
    auto stale = twinhub_cli({"c2d-message", "complete", "-d", id, "--etag", etag});
    EXPECT_EQ(stale.rc, 1);
    EXPECT_NE(stale.err.find("DeviceMessageLockLost"), std::string::npos) << stale.err;

    ASSERT_EQ(twinhub_cli({"c2d-message", "complete", "-d", id, "-e", etag2}).rc, 0);
    auto none = twinhub_cli({"c2d-message", "receive", "-d", id});
    ASSERT_EQ(none.rc, 0);
    EXPECT_TRUE(none.out.empty()) << none.out;

    // Reject dead-letters: the queue is empty afterwards.
    ASSERT_EQ(twinhub_cli({"c2d-message", "send", "-d", id, "--data", "second"}).rc, 0);
    auto s = twinhub_cli({"c2d-message", "receive", "-d", id});
    ASSERT_EQ(s.rc, 0) << s.err;
    auto v3 = json::parse(s.out).as_object();
    ASSERT_EQ(twinhub_cli({"c2d-message", "reject", "-d", id, "-e", std::string(v3.at("etag").as_string())}).rc, 0);
    EXPECT_TRUE(twinhub_cli({"c2d-message", "receive", "-d", id}).out.empty());

    // receive --complete settles in the same command.
    ASSERT_EQ(twinhub_cli({"c2d-message", "send", "-d", id, "--data", "third"}).rc, 0);
    auto rc = twinhub_cli({"c2d-message", "receive", "-d", id, "--complete"});
    ASSERT_EQ(rc.rc, 0) << rc.err;
    EXPECT_EQ(json::parse(rc.out).at("data").as_string(), "third");
    EXPECT_TRUE(twinhub_cli({"c2d-message", "receive", "-d", id}).out.empty());
}
