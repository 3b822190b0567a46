// The C++ SDK against a real twinhubd over loopback TLS: registry, twins, device/module clients over
// MQTT and WebSocket, SAS renewal, reconnect after a hub restart with desired resync, errors.
#include "hub_process.hpp"

#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"
#include "twinhub/registry_manager.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

using namespace twinhub;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

test_support::hub_process& hub() {
    static test_support::hub_process h(TWINHUB_BIN_DIR);
    static bool started = (h.start(), true);
    (void)started;
    return h;
}

service_options svc_options(const test_support::hub_process& h) {
    service_options o;
    o.tls.ca_file = h.ca_file();
    o.port = h.https_port();
    o.timeout = 20s;
    return o;
}

client_options dev_options(const test_support::hub_process& h) {
    client_options o;
    o.tls.ca_file = h.ca_file();
    o.port = h.mqtt_port();
    o.operation_timeout = 10s;
    o.reconnect_min_backoff = 100ms;
    o.reconnect_max_backoff = 1s;
    return o;
}

registry_manager service(test_support::hub_process& h = hub()) {
    auto r = registry_manager::from_connection_string(h.connection_string(), svc_options(h));
    EXPECT_TRUE(r) << r.error().message;
    return std::move(*r);
}

std::string unique(const std::string& base) {
    static std::atomic<int> n{0};
    return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

json::object desired_patch(const char* key, json::value v) {
    return {{"properties", {{"desired", {{key, std::move(v)}}}}}};
}

}  // namespace

TEST(registry_manager, device_crud_with_generated_keys_and_etags) {
    auto rm = service();
    auto id = unique("dev");
    auto d = rm.create_device(id);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->device_id, id);
    EXPECT_EQ(d->keys.primary_key.size(), 44u);
    EXPECT_EQ(d->keys.secondary_key.size(), 44u);
    EXPECT_NE(d->keys.primary_key, d->keys.secondary_key);
    EXPECT_EQ(d->status, "enabled");

    auto again = rm.create_device(id);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::device_already_exists);

    auto got = rm.get_device(id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->keys.primary_key, d->keys.primary_key);

    auto list = rm.list_devices();
    ASSERT_TRUE(list);
    EXPECT_TRUE(std::any_of(list->begin(), list->end(), [&](const device_identity& x) { return x.device_id == id; }));

    auto upd = *got;
    upd.status = "disabled";
    upd.status_reason = "maintenance";
    auto u = rm.update_device(upd, got->etag);
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->status, "disabled");
    EXPECT_NE(u->etag, got->etag);
    EXPECT_EQ(u->keys.primary_key, d->keys.primary_key);  // empty-key rule not hit: keys were sent

    auto stale = rm.update_device(upd, got->etag);
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::precondition_failed);
    EXPECT_FALSE(stale.error().message.empty());

    auto stale_delete = rm.delete_device(id, got->etag);
    ASSERT_FALSE(stale_delete);
    EXPECT_EQ(stale_delete.error().code, errc::precondition_failed);

    ASSERT_TRUE(rm.delete_device(id, u->etag));
    auto gone = rm.get_device(id);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, errc::device_not_found);
    EXPECT_NE(gone.error().message.find(id), std::string::npos) << gone.error().message;
    EXPECT_EQ(rm.delete_device(id).error().code, errc::device_not_found);
}

TEST(registry_manager, create_device_with_given_keys) {
    auto rm = service();
    symmetric_keys k{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA="};
    auto d = rm.create_device(unique("given"), k);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->keys.primary_key, k.primary_key);
    EXPECT_EQ(d->keys.secondary_key, k.secondary_key);
}

TEST(registry_manager, module_crud_and_connection_strings) {
    auto rm = service();
    auto dev = unique("mdev");
    ASSERT_TRUE(rm.create_device(dev));
    auto m = rm.create_module(dev, "mod1");
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->module_id, "mod1");
    EXPECT_EQ(m->device_id, dev);
    EXPECT_EQ(m->keys.primary_key.size(), 44u);
    EXPECT_EQ(rm.create_module(dev, "mod1").error().code, errc::module_already_exists);

    auto list = rm.list_modules(dev);
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].module_id, "mod1");

    auto cs = rm.module_connection_string(dev, "mod1");
    ASSERT_TRUE(cs);
    EXPECT_EQ(*cs, "HostName=localhost;DeviceId=" + dev + ";ModuleId=mod1;SharedAccessKey=" + m->keys.primary_key);
    auto dcs = rm.device_connection_string(dev, key_type::secondary);
    ASSERT_TRUE(dcs);
    EXPECT_TRUE(dcs->starts_with("HostName=localhost;DeviceId=" + dev + ";SharedAccessKey="));

    auto mm = *m;
    mm.keys.primary_key = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA=";
    auto u = rm.update_module(mm, m->etag);
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->keys.primary_key, mm.keys.primary_key);
    EXPECT_EQ(rm.update_module(mm, m->etag).error().code, errc::precondition_failed);

    ASSERT_TRUE(rm.delete_module(dev, "mod1"));
    EXPECT_EQ(rm.get_module(dev, "mod1").error().code, errc::module_not_found);
    EXPECT_EQ(rm.get_module(unique("nodev"), "mod1").error().code, errc::device_not_found);
}

TEST(registry_manager, twin_update_replace_and_stale_etag) {
    auto rm = service();
    auto dev = unique("tdev");
    ASSERT_TRUE(rm.create_device(dev));
    auto t = rm.get_twin(dev);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->device_id, dev);
    auto v0 = t->desired_version();

    json::object patch = desired_patch("telemetryInterval", 5);
    patch["tags"] = json::object{{"site", "lab"}};
    auto u = rm.update_twin(dev, patch, t->etag);
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->desired.at("telemetryInterval"), 5);
    EXPECT_EQ(u->tags.at("site"), "lab");
    EXPECT_EQ(u->desired_version(), v0 + 1);
    EXPECT_NE(u->etag, t->etag);

    auto stale = rm.update_twin(dev, desired_patch("x", 1), t->etag);
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::precondition_failed);

    json::object doc{{"tags", {{"owner", "me"}}}, {"properties", {{"desired", {{"only", true}}}}}};
    auto r = rm.replace_twin(dev, doc);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->tags.contains("site"));
    EXPECT_EQ(r->tags.at("owner"), "me");
    EXPECT_FALSE(r->desired.contains("telemetryInterval"));
    EXPECT_EQ(r->desired.at("only"), true);

    EXPECT_EQ(rm.get_twin(unique("missing")).error().code, errc::device_not_found);
}

TEST(registry_manager, module_twin_get_update_replace) {
    auto rm = service();
    auto dev = unique("mtdev");
    ASSERT_TRUE(rm.create_device(dev));
    ASSERT_TRUE(rm.create_module(dev, "m"));
    auto t = rm.get_module_twin(dev, "m");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->module_id, "m");
    auto u = rm.update_module_twin(dev, "m", desired_patch("telemetryInterval", 7));
    ASSERT_TRUE(u);
    EXPECT_EQ(u->desired.at("telemetryInterval"), 7);
    EXPECT_EQ(rm.update_module_twin(dev, "m", desired_patch("a", 1), t->etag).error().code, errc::precondition_failed);
    auto r = rm.replace_module_twin(dev, "m", json::object{{"properties", {{"desired", {{"b", 2}}}}}});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->desired.contains("telemetryInterval"));
    EXPECT_EQ(rm.get_module_twin(dev, "nomod").error().code, errc::module_not_found);
}

TEST(registry_manager, wrong_key_is_unauthorized) {
    auto& h = hub();
    auto cs = h.connection_string();
    auto p = cs.find("SharedAccessKey=");
    cs = cs.substr(0, p) + "SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    auto rm = registry_manager::from_connection_string(cs, svc_options(h));
    ASSERT_TRUE(rm);
    auto r = rm->get_device("anything");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized);
}

TEST(registry_manager, untrusted_ca_is_a_connection_failure) {
    auto& h = hub();
    auto o = svc_options(h);
    o.tls.ca_file.clear();  // system store: does not know the hub's CA
    auto rm = registry_manager::from_connection_string(h.connection_string(), o);
    ASSERT_TRUE(rm);
    auto r = rm->get_device("anything");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::connection_failed);
    EXPECT_NE(r.error().message.find("certificate"), std::string::npos) << r.error().message;
}

TEST(registry_manager, unreachable_hub_is_a_connection_failure) {
    auto o = svc_options(hub());
    o.port = test_support::free_port();
    auto rm = registry_manager::from_connection_string(hub().connection_string(), o);
    ASSERT_TRUE(rm);
    EXPECT_EQ(rm->get_device("x").error().code, errc::connection_failed);
}

TEST(registry_manager, keep_alive_connection_serves_many_requests) {
    auto rm = service();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(rm.list_devices(1)) << i;
}

TEST(device_client, rejects_other_connection_string_kinds) {
    EXPECT_EQ(device_client::create_from_connection_string(hub().connection_string()).error().code, errc::invalid_argument);
    EXPECT_EQ(module_client::create_from_connection_string("HostName=h;DeviceId=d;SharedAccessKey=AAAA").error().code,
              errc::invalid_argument);
}

TEST(device_client, wrong_key_and_unknown_device_are_unauthorized) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("wk");
    ASSERT_TRUE(rm.create_device(dev));
    auto c = device_client::create_from_connection_string(
        "HostName=localhost;DeviceId=" + dev + ";SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", dev_options(h));
    ASSERT_TRUE(c);
    auto r = c->connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized);
    auto u = device_client::create_from_connection_string(
        "HostName=localhost;DeviceId=" + unique("nobody") + ";SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        dev_options(h));
    EXPECT_EQ(u->connect().error().code, errc::unauthorized);
    EXPECT_FALSE(u->connected());
    EXPECT_EQ(u->get_twin().error().code, errc::connection_failed);
}

TEST(device_client, twin_reported_desired_and_telemetry) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("dc");
    ASSERT_TRUE(rm.create_device(dev));
    auto c = device_client::create_from_connection_string(*rm.device_connection_string(dev), dev_options(h));
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(c->connect()) << h.log();
    EXPECT_TRUE(c->connected());

    auto t = c->get_twin();
    ASSERT_TRUE(t) << t.error().message;
    ASSERT_TRUE(t->contains("desired"));
    ASSERT_TRUE(t->contains("reported"));
    auto rv = t->at("reported").at("$version").as_int64();

    auto v = c->patch_twin_reported_properties({{"fw", "1.0"}, {"nested", {{"a", 1}}}});
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(*v, rv + 1);
    auto st = rm.get_twin(dev);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->reported.at("fw"), "1.0");

    auto u = rm.update_twin(dev, desired_patch("telemetryInterval", 10));
    ASSERT_TRUE(u);
    auto p = c->receive_twin_desired_properties_patch(10s);
    ASSERT_TRUE(p);
    ASSERT_TRUE(*p) << "no desired patch arrived";
    EXPECT_EQ((*p)->at("telemetryInterval"), 10);
    EXPECT_EQ((*p)->at("$version"), u->desired_version());

    message m("{\"temperature\":21.5}");
    m.message_id = "m1";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.properties = {{"alert", "high temp"}};
    auto s = c->send_message(m);
    EXPECT_TRUE(s) << s.error().message;

    // Nothing more is queued.
    auto none = c->receive_twin_desired_properties_patch(200ms);
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    c->disconnect();
    EXPECT_FALSE(c->connected());
}

TEST(device_client, reported_patch_the_hub_refuses_carries_its_error) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("bad");
    ASSERT_TRUE(rm.create_device(dev));
    auto c = device_client::create_from_connection_string(*rm.device_connection_string(dev), dev_options(h));
    ASSERT_TRUE(c->connect());
    // Key with a '.' violates spec 4.4.
    auto r = c->patch_twin_reported_properties({{"bad.key", 1}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_FALSE(r.error().message.empty());
}

TEST(module_client, desired_patches_through_a_handler) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("mc");
    ASSERT_TRUE(rm.create_device(dev));
    ASSERT_TRUE(rm.create_module(dev, "m1"));
    auto c = module_client::create_from_connection_string(*rm.module_connection_string(dev, "m1"), dev_options(h));
    ASSERT_TRUE(c);
    std::mutex mu;
    std::condition_variable cv;
    std::vector<json::object> seen;
    c->on_twin_desired_properties_patch([&](const json::object& p) {
        std::lock_guard l(mu);
        seen.push_back(p);
        cv.notify_all();
    });
    ASSERT_TRUE(c->connect());
    EXPECT_EQ(c->module_id(), "m1");
    ASSERT_TRUE(c->patch_twin_reported_properties({{"state", "up"}}));
    EXPECT_EQ(rm.get_module_twin(dev, "m1")->reported.at("state"), "up");
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(rm.update_module_twin(dev, "m1", desired_patch("telemetryInterval", i)));
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, 10s, [&] { return seen.size() == 3; })) << seen.size();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(seen[i].at("telemetryInterval"), i + 1);
}

TEST(module_client, over_websocket) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("ws");
    ASSERT_TRUE(rm.create_device(dev));
    ASSERT_TRUE(rm.create_module(dev, "m1"));
    auto o = dev_options(h);
    o.transport = transport_kind::mqtt_ws;
    o.port = h.https_port();
    auto c = module_client::create_from_connection_string(*rm.module_connection_string(dev, "m1"), o);
    ASSERT_TRUE(c);
    auto r = c->connect();
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(c->patch_twin_reported_properties({{"via", "ws"}}));
    ASSERT_TRUE(rm.update_module_twin(dev, "m1", desired_patch("telemetryInterval", 42)));
    auto p = c->receive_twin_desired_properties_patch(10s);
    ASSERT_TRUE(p && *p);
    EXPECT_EQ((*p)->at("telemetryInterval"), 42);
}

TEST(device_client, sas_renewal_keeps_the_session) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("sas");
    ASSERT_TRUE(rm.create_device(dev));
    auto o = dev_options(h);
    o.sas_token_ttl = 4s;
    o.sas_renewal_margin = 2s;  // renews every ~2 s
    auto c = device_client::create_from_connection_string(*rm.device_connection_string(dev), o);
    std::atomic<int> reconnects{0};
    c->on_connection_state_change([&](bool up, const error&) {
        if (up) ++reconnects;
    });
    ASSERT_TRUE(c->connect());
    std::this_thread::sleep_for(7s);  // past the first token's expiry, several renewals
    EXPECT_GE(reconnects.load(), 3);
    ASSERT_TRUE(c->connected());
    auto v = c->patch_twin_reported_properties({{"after", "renewal"}});
    ASSERT_TRUE(v) << v.error().message;
    ASSERT_TRUE(rm.update_twin(dev, desired_patch("telemetryInterval", 99)));
    auto p = c->receive_twin_desired_properties_patch(10s);
    ASSERT_TRUE(p && *p);
    EXPECT_EQ((*p)->at("telemetryInterval"), 99);
}

TEST(device_client, reconnects_after_hub_restart_and_resyncs_missed_desired) {
    test_support::hub_process own(TWINHUB_BIN_DIR);
    own.start();
    auto rm = service(own);
    auto dev = unique("rs");
    ASSERT_TRUE(rm.create_device(dev));
    ASSERT_TRUE(rm.create_module(dev, "m"));
    ASSERT_TRUE(rm.update_module_twin(dev, "m", desired_patch("keep", 1)));
    ASSERT_TRUE(rm.update_module_twin(dev, "m", desired_patch("drop", 1)));
    auto o = dev_options(own);
    o.reconnect_min_backoff = 3s;  // stays disconnected while the back end writes
    o.reconnect_max_backoff = 3s;
    auto c = module_client::create_from_connection_string(*rm.module_connection_string(dev, "m"), o);
    std::atomic<int> downs{0};
    c->on_connection_state_change([&](bool up, const error&) {
        if (!up) ++downs;
    });
    ASSERT_TRUE(c->connect());

    own.stop();
    own.start();
    auto before = std::chrono::steady_clock::now();
    json::object patch{{"properties", {{"desired", {{"telemetryInterval", 30}, {"drop", nullptr}}}}}};
    auto u = rm.update_module_twin(dev, "m", patch);
    ASSERT_TRUE(u) << u.error().message;
    ASSERT_LT(std::chrono::steady_clock::now() - before, 2s) << "the patch was not made while the client was away";
    EXPECT_FALSE(c->connected());
    EXPECT_GE(downs.load(), 1);

    auto p = c->receive_twin_desired_properties_patch(15s);
    ASSERT_TRUE(p);
    ASSERT_TRUE(*p) << "no synthesised patch after the reconnect\n" << own.log();
    EXPECT_EQ((*p)->at("telemetryInterval"), 30);
    EXPECT_TRUE((*p)->at("drop").is_null());
    EXPECT_FALSE((*p)->contains("keep"));
    EXPECT_EQ((*p)->at("$version"), u->desired_version());
    EXPECT_TRUE(c->connected());

    // And the live path works again.
    ASSERT_TRUE(rm.update_module_twin(dev, "m", desired_patch("telemetryInterval", 31)));
    auto live = c->receive_twin_desired_properties_patch(10s);
    ASSERT_TRUE(live && *live);
    EXPECT_EQ((*live)->at("telemetryInterval"), 31);
    c->disconnect();
}

TEST(direct_methods, device_handler_answers_service_invocation) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("meth");
    ASSERT_TRUE(rm.create_device(dev));
    auto c = device_client::create_from_connection_string(*rm.device_connection_string(dev), dev_options(h));
    c->on_method("reboot", [](const method_request& r) {
        return method_response{200, json::object{{"rebooted", true}, {"delay", r.payload.at("delay")}}};
    });
    ASSERT_TRUE(c->connect());
    method_invocation call{"reboot", json::object{{"delay", 5}}, 10, 0};
    auto r = rm.invoke_device_method(dev, call);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->payload.at("rebooted"), true);
    EXPECT_EQ(r->payload.at("delay"), 5);

    auto unknown = rm.invoke_device_method(dev, method_invocation{"nope", nullptr, 10, 0});
    ASSERT_TRUE(unknown) << unknown.error().message;
    EXPECT_EQ(unknown->status, 501);

    c->disconnect();
    auto offline = rm.invoke_device_method(dev, call);
    ASSERT_FALSE(offline);
    EXPECT_EQ(offline.error().code, errc::device_not_online);
}

TEST(direct_methods, module_method) {
    auto& h = hub();
    auto rm = service();
    auto dev = unique("mmeth");
    ASSERT_TRUE(rm.create_device(dev));
    ASSERT_TRUE(rm.create_module(dev, "m"));
    auto c = module_client::create_from_connection_string(*rm.module_connection_string(dev, "m"), dev_options(h));
    c->on_method("", [](const method_request& r) { return method_response{201, json::string(r.method_name)}; });
    ASSERT_TRUE(c->connect());
    auto r = rm.invoke_module_method(dev, "m", method_invocation{"anything", nullptr, 10, 0});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->payload, "anything");
}

TEST(query, paged_with_continuation) {
    auto rm = service();
    auto tag = unique("q");
    for (int i = 0; i < 5; ++i) {
        auto dev = tag + "-" + std::to_string(i);
        ASSERT_TRUE(rm.create_device(dev));
        ASSERT_TRUE(rm.update_twin(dev, json::object{{"tags", {{"batch", tag}}}}));
    }
    std::string sql = "SELECT * FROM devices WHERE tags.batch = '" + tag + "'";
    auto first = rm.query(sql, 2);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->items.size(), 2u);
    ASSERT_TRUE(first->continuation);
    auto all = rm.query_all(sql, 0, 2);
    ASSERT_TRUE(all) << all.error().message;
    EXPECT_EQ(all->size(), 5u);
    auto top = rm.query_all(sql, 3, 2);
    ASSERT_TRUE(top);
    EXPECT_EQ(top->size(), 3u);
    auto bad = rm.query("SELECT FROM WHERE");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
}

// A second twinhubd on the same data directory would serve its own diverging copy of the hub: it
// must refuse to start, name the running one, and leave it serving.
TEST(twinhubd, second_instance_on_the_same_data_dir_refuses_to_start) {
    auto& h = hub();
    const std::string out_file = (std::filesystem::temp_directory_path() / unique("second-hub.log")).string();
    // `timeout`: without the lock the second hub would serve until killed.
    const std::string cmd = "timeout 20 " + h.bin("twinhubd") + " --data-dir " + h.data_dir().string() + " --https-port " +
                            std::to_string(test_support::free_port()) + " --mqtt-port " +
                            std::to_string(test_support::free_port()) + " --amqp-port " +
                            std::to_string(test_support::free_port()) + " >" + out_file + " 2>&1";
    const int status = std::system(cmd.c_str());
    ASSERT_NE(status, -1);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_NE(WEXITSTATUS(status), 0);
    std::ifstream f(out_file);
    const std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::filesystem::remove(out_file);
    EXPECT_NE(out.find("is in use by another twinhubd (pid "), std::string::npos) << out;
    auto rm = service(h);
    auto dev = unique("still-serving");
    EXPECT_TRUE(rm.create_device(dev));
}

// Issue 12: `twinhubd ... > twinhubd.log 2>&1`, as the README starts it, left the iothubowner key
// in a file others could read. twinhubd narrows such a file to 0600 before printing the key.
TEST(twinhubd, log_file_others_could_read_is_narrowed_before_the_key_is_printed) {
    const auto tmp = std::filesystem::temp_directory_path() / unique("banner");
    std::filesystem::create_directories(tmp);
    const auto log = tmp / "twinhubd.log";
    { std::ofstream(log.string()) << ""; }
    std::filesystem::permissions(log, std::filesystem::perms(0644));
    const std::string cmd = "timeout -s KILL 20 " + hub().bin("twinhubd") + " --data-dir " + (tmp / "data").string() +
                            " --https-port " + std::to_string(test_support::free_port()) + " --mqtt-port " +
                            std::to_string(test_support::free_port()) + " --amqp-port " +
                            std::to_string(test_support::free_port()) + " >" + log.string() + " 2>&1 & echo $!";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    int pid = 0;
    ASSERT_EQ(std::fscanf(p, "%d", &pid), 1);
    ::pclose(p);
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (out.find("CA certificate:") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
        std::ifstream f(log.string());
        out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    ::kill(pid, SIGTERM);
    const auto mode = static_cast<unsigned>(std::filesystem::status(log).permissions()) & 0777;
    std::filesystem::remove_all(tmp);
    EXPECT_EQ(mode, 0600u);
    EXPECT_NE(out.find("Connection string (iothubowner): HostName="), std::string::npos) << "banner missing";
}
