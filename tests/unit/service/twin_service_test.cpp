// twin_service on its own (no façade): the one desired-change notifier and its order, the twin
// change signal for the query index (under the cache's lock), twin change events for routes.
#include "service_parts.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <future>

namespace twinhub::service {
namespace {

using testing::service_parts;
using testing::wait_for;

// Records every notification in one sequence, and whether the cache lock was held.
class sequence_observer final : public change_observer {
public:
    explicit sequence_observer(record_cache& c) : cache_(c) {}
    void on_desired_change(const store::identity_key& id, const twin::desired_change& c) override {
        add("desired " + describe_key(id) + " v" + std::to_string(c.version));
    }
    void on_twin_changed(const store::identity_key& id) override {
        // Asked from another thread: this one may own the lock, and may not try it again.
        const bool locked = !std::async(std::launch::async, [this] {
                                 const bool got = cache_.mu.try_lock_shared();
                                 if (got) cache_.mu.unlock_shared();
                                 return got;
                             }).get();
        add(std::string(locked ? "" : "UNLOCKED ") + "twin " + describe_key(id));
    }
    void add(std::string s) {
        std::lock_guard l(m_);
        seen_.push_back(std::move(s));
    }
    std::vector<std::string> take() {
        std::lock_guard l(m_);
        return std::exchange(seen_, {});
    }

private:
    record_cache& cache_;
    std::mutex m_;
    std::vector<std::string> seen_;
};

result<boost::json::object> patch(service_parts& p, store::identity_key id, std::string_view body) {
    return wait_for<boost::json::object>(
        [&](auto h) { p.twins.patch_twin(std::move(id), boost::json::parse(body), "*", h); });
}

TEST(twin_service, one_notifier_reports_the_index_change_then_the_desired_change_then_the_handler) {
    service_parts p;
    sequence_observer obs(p.cache);
    ASSERT_TRUE(p.create("dev1"));
    ASSERT_TRUE(p.create_module("dev1", "m1"));
    p.twins.add_observer(&obs);
    auto t = wait_for<boost::json::object>([&](auto h) {
        p.twins.patch_twin({"dev1", "m1"}, boost::json::parse(R"({"properties":{"desired":{"rate":5}}})"), "*",
                           [&obs, h](result<boost::json::object> r) {
                               obs.add("handler");
                               h(std::move(r));
                           });
    });
    ASSERT_TRUE(t) << t.error().message;
    // A module's write re-indexes its device entry (device twin and every module twin).
    EXPECT_EQ(obs.take(), (std::vector<std::string>{"twin dev1", "twin dev1/m1", "desired dev1/m1 v2", "handler"}));

    ASSERT_TRUE(patch(p, {"dev1", {}}, R"({"tags":{"a":1}})"));
    EXPECT_EQ(obs.take(), (std::vector<std::string>{"twin dev1", "twin dev1/m1"})) << "tags only: no desired change";

    auto v = wait_for<std::int64_t>(
        [&](auto h) { p.twins.patch_reported({"dev1", {}}, boost::json::parse(R"({"temp":20})"), h); });
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 2);
    EXPECT_EQ(obs.take(), (std::vector<std::string>{"twin dev1", "twin dev1/m1"}));

    p.presence.set_model_id({"dev1", "m1"}, "dtmi:x;1");
    EXPECT_EQ(obs.take(), (std::vector<std::string>{"twin dev1/m1"}));
    EXPECT_EQ(p.twins.get_twin({"dev1", "m1"})->at("modelId"), "dtmi:x;1");

    p.twins.remove_observer(&obs);
    ASSERT_TRUE(patch(p, {"dev1", {}}, R"({"properties":{"desired":{"rate":6}}})"));
    EXPECT_TRUE(obs.take().empty()) << "removed observers hear nothing";
}

TEST(twin_service, desired_changes_reach_observers_in_version_order) {
    service_parts p;
    testing::recording_observer obs;
    ASSERT_TRUE(p.create("dev1"));
    p.twins.add_observer(&obs);
    constexpr int n = 50;
    std::vector<std::promise<void>> done(n);
    for (int i = 0; i < n; ++i)
        p.twins.patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"n":)" + std::to_string(i) + "}}}"),
                           "*", [&done, i](result<boost::json::object> r) {
                               EXPECT_TRUE(r);
                               done[i].set_value();
                           });
    for (auto& d : done) d.get_future().wait();
    auto seen = obs.desired();
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(seen[i].second.version, 2 + i);
    p.twins.remove_observer(&obs);
}

// A route that wants twin change events.
class twin_events final : public event_router {
public:
    std::vector<store::event_record> route_telemetry(std::vector<store::event_record> e) override { return e; }
    bool wants_twin_changes() const override { return true; }
    bool wants_lifecycle() const override { return false; }
    void on_twin_change(const store::identity_key& id, std::string op, boost::json::object body) override {
        std::lock_guard l(m);
        seen.push_back(op + " " + boost::json::serialize(body));
    }
    void on_lifecycle(const store::identity_key&, std::string, boost::json::object) override { ADD_FAILURE(); }
    std::mutex m;
    std::vector<std::string> seen;
};

TEST(twin_service, routes_get_twin_change_events_with_the_new_versions) {
    service_parts p;
    twin_events r;
    p.events.set_router(&r);
    ASSERT_TRUE(p.create("dev1"));  // no lifecycle event: the route does not want them
    ASSERT_TRUE(patch(p, {"dev1", {}}, R"({"properties":{"desired":{"a":1}}})"));
    ASSERT_TRUE(wait_for<std::int64_t>(
        [&](auto h) { p.twins.patch_reported({"dev1", {}}, boost::json::parse(R"({"b":2})"), h); }));
    std::lock_guard l(r.m);
    EXPECT_EQ(r.seen, (std::vector<std::string>{
                          R"(updateTwin {"version":3,"properties":{"desired":{"a":1,"$version":2}}})",
                          R"(updateTwin {"version":4,"properties":{"reported":{"b":2,"$version":2}}})"}));
}

TEST(twin_service, for_each_twin_walks_devices_or_modules_in_id_order) {
    service_parts p;
    for (auto id : {"b", "a", "c"}) ASSERT_TRUE(p.create(id));
    ASSERT_TRUE(p.create_module("b", "m2"));
    ASSERT_TRUE(p.create_module("a", "m1"));
    std::vector<std::string> devices, modules;
    p.twins.for_each_twin(false, [&](const boost::json::object& t) {
        devices.emplace_back(t.at("deviceId").as_string());
        return devices.size() < 2;  // stops after two
    });
    p.twins.for_each_twin(true, [&](const boost::json::object& t) {
        modules.emplace_back(std::string(t.at("deviceId").as_string()) + "/" + std::string(t.at("moduleId").as_string()));
        return true;
    });
    EXPECT_EQ(devices, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(modules, (std::vector<std::string>{"a/m1", "b/m2"}));
}

}  // namespace
}  // namespace twinhub::service
