// hub_service: twins (spec 4) over the memory store: etags, versions, desired notifications and
// their order, read-your-writes.
#include "service_test_support.hpp"
#include "../../support/fault_injecting_store.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

namespace twinhub::service {
namespace {

using testing::hub_fixture;
using testing::wait_for;

using hub_service_twins = hub_fixture;

TEST_F(hub_service_twins, service_json_has_the_fields_of_spec_4_1) {
    ASSERT_TRUE(create("dev1"));
    auto t = hub_->get_twin({"dev1", {}});
    ASSERT_TRUE(t);
    for (auto k : {"deviceId", "etag", "deviceEtag", "status", "statusReason", "statusUpdateTime", "connectionState",
                   "lastActivityTime", "cloudToDeviceMessageCount", "authenticationType", "x509Thumbprint",
                   "modelId", "version", "tags", "properties", "capabilities"})
        EXPECT_TRUE(t->contains(k)) << k;
    EXPECT_EQ(t->at("connectionState"), "Disconnected");
    EXPECT_EQ(t->at("authenticationType"), "sas");
    EXPECT_EQ(testing::str(t->at("statusUpdateTime")), never_time);
    EXPECT_EQ(t->at("properties").at("desired").at("$version"), 1);
    EXPECT_EQ(t->at("properties").at("reported").at("$version"), 1);
    EXPECT_EQ(t->at("capabilities").at("iotEdge"), false);
    EXPECT_FALSE(t->contains("moduleId"));
}

TEST_F(hub_service_twins, patch_with_matching_etag_returns_the_new_twin) {
    ASSERT_TRUE(create("dev1"));
    auto before = hub_->get_twin({"dev1", {}});
    ASSERT_TRUE(before);
    std::string etag(before->at("etag").as_string());
    auto t = patch({"dev1", {}}, R"({"tags":{"region":"eu"},"properties":{"desired":{"rate":5}}})", testing::quoted(etag));
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_NE(t->at("etag"), before->at("etag"));
    EXPECT_EQ(t->at("version"), 3);
    EXPECT_EQ(t->at("tags").at("region"), "eu");
    EXPECT_EQ(t->at("properties").at("desired").at("rate"), 5);
    EXPECT_EQ(t->at("properties").at("desired").at("$version"), 2);
    EXPECT_EQ(hub_->get_twin({"dev1", {}}).value(), *t);
}

TEST_F(hub_service_twins, patch_with_stale_etag_fails_with_precondition_failed) {
    ASSERT_TRUE(create("dev1"));
    std::string etag(hub_->get_twin({"dev1", {}})->at("etag").as_string());
    ASSERT_TRUE(patch({"dev1", {}}, R"({"tags":{"a":1}})", testing::quoted(etag)));
    auto stale = patch({"dev1", {}}, R"({"tags":{"a":2}})", testing::quoted(etag));
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::precondition_failed);
    auto junk = patch({"dev1", {}}, R"({"tags":{"a":2}})", "\"abc\"");
    ASSERT_FALSE(junk);
    EXPECT_EQ(junk.error().code, errc::precondition_failed);
    EXPECT_EQ(hub_->get_twin({"dev1", {}})->at("tags").at("a"), 1);
    EXPECT_TRUE(patch({"dev1", {}}, R"({"tags":{"a":3}})", "*"));
    EXPECT_TRUE(patch({"dev1", {}}, R"({"tags":{"a":4}})", ""));
}

TEST_F(hub_service_twins, invalid_patch_fails_and_changes_nothing) {
    ASSERT_TRUE(create("dev1"));
    auto bad = patch({"dev1", {}}, R"({"properties":{"reported":{"x":1}}})");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    EXPECT_EQ(hub_->get_twin({"dev1", {}})->at("version"), 2);
    EXPECT_TRUE(observer_.desired().empty());
}

TEST_F(hub_service_twins, patch_of_missing_twin_fails_with_not_found_codes) {
    ASSERT_TRUE(create("dev1"));
    EXPECT_EQ(patch({"ghost", {}}, R"({"tags":{"a":1}})").error().code, errc::device_not_found);
    EXPECT_EQ(patch({"dev1", "m"}, R"({"tags":{"a":1}})").error().code, errc::module_not_found);
    EXPECT_EQ(report({"ghost", {}}, R"({"a":1})").error().code, errc::device_not_found);
}

TEST_F(hub_service_twins, desired_change_is_notified_after_commit_with_version_and_nulls) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(patch({"dev1", {}}, R"({"properties":{"desired":{"a":1,"b":{"c":2}}}})"));
    ASSERT_TRUE(patch({"dev1", {}}, R"({"properties":{"desired":{"a":null}}})"));
    ASSERT_TRUE(patch({"dev1", {}}, R"({"tags":{"t":1}})"));  // tags only: no notification
    auto got = observer_.desired();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].first, (store::identity_key{"dev1", ""}));
    EXPECT_EQ(got[0].second.version, 2);
    EXPECT_EQ(got[0].second.patch, boost::json::parse(R"({"a":1,"b":{"c":2},"$version":2})").as_object());
    EXPECT_EQ(got[1].second.version, 3);
    EXPECT_EQ(got[1].second.patch, boost::json::parse(R"({"a":null,"$version":3})").as_object());
}

TEST_F(hub_service_twins, handler_sees_its_own_write) {
    ASSERT_TRUE(create("dev1"));
    auto seen = wait_for<boost::json::object>([&](auto h) {
        hub_->patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"x":42}}})"), "*",
                         [this, h](result<boost::json::object> r) {
                             // Inside the handler (store thread): the write is already readable.
                             auto t = hub_->get_twin({"dev1", {}});
                             if (!r || !t) return h(r);
                             h(*t);
                         });
    });
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->at("properties").at("desired").at("x"), 42);
    auto view = hub_->get_device_twin_view({"dev1", {}});
    ASSERT_TRUE(view);
    EXPECT_EQ(view->at("desired").at("x"), 42);
    EXPECT_EQ(view->at("desired").at("$version"), 2);
}

TEST_F(hub_service_twins, concurrent_patches_are_notified_in_version_order) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    constexpr int threads = 4;
    constexpr int per_thread = 50;
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                store::identity_key id{"dev1", i % 2 ? "m1" : ""};
                std::string body = R"({"properties":{"desired":{"t)" + std::to_string(t) + R"(":)" +
                                   std::to_string(i) + "}}}";
                // Fire without waiting, so that many writes are in flight at once.
                hub_->patch_twin(id, boost::json::parse(body), "*", [&](result<boost::json::object> r) {
                    if (r) ++ok;
                });
            }
        });
    }
    for (auto& t : ts) t.join();
    for (int i = 0; i < 500 && ok < threads * per_thread; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(ok.load(), threads * per_thread);

    std::int64_t last_device = 1, last_module = 1;
    int n = 0;
    for (auto& [id, c] : observer_.desired()) {
        auto& last = id.is_module() ? last_module : last_device;
        EXPECT_EQ(c.version, last + 1);  // no gaps, no reordering
        EXPECT_EQ(c.patch.at("$version"), c.version);
        last = c.version;
        ++n;
    }
    EXPECT_EQ(n, threads * per_thread);
    auto twin = hub_->get_twin({"dev1", {}});
    EXPECT_EQ(twin->at("properties").at("desired").at("$version"), last_device);
    for (int t = 0; t < threads; ++t)
        EXPECT_EQ(twin->at("properties").at("desired").at("t" + std::to_string(t)), per_thread - 2);
}

TEST_F(hub_service_twins, replace_swaps_tags_and_desired_wholesale) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(patch({"dev1", {}}, R"({"tags":{"a":1,"b":2},"properties":{"desired":{"x":1,"y":2}}})"));
    auto t = replace({"dev1", {}}, R"({"tags":{"c":3},"properties":{"desired":{"z":3}}})");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->at("tags"), boost::json::parse(R"({"c":3})"));
    EXPECT_FALSE(t->at("properties").at("desired").as_object().contains("x"));
    auto got = observer_.desired();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].second.patch, boost::json::parse(R"({"x":null,"y":null,"z":3,"$version":3})").as_object());
}

TEST_F(hub_service_twins, reported_patch_returns_the_new_version_and_does_not_notify) {
    ASSERT_TRUE(create("dev1"));
    auto etag = hub_->get_twin({"dev1", {}})->at("etag");
    auto v = report({"dev1", {}}, R"({"temp":21.5})");
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(*v, 2);
    v = report({"dev1", {}}, R"({"temp":null,"hum":40})");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 3);
    auto t = hub_->get_twin({"dev1", {}});
    EXPECT_EQ(t->at("properties").at("reported").at("hum"), 40);
    EXPECT_FALSE(t->at("properties").at("reported").as_object().contains("temp"));
    EXPECT_EQ(t->at("etag"), etag);  // reported writes keep the twin etag
    EXPECT_EQ(t->at("version"), 4);
    EXPECT_TRUE(observer_.desired().empty());
    auto view = hub_->get_device_twin_view({"dev1", {}});
    EXPECT_EQ(view->at("reported").at("$version"), 3);
    EXPECT_EQ(report({"dev1", {}}, "[1]").error().code, errc::invalid_argument);
}

TEST_F(hub_service_twins, module_twins_are_separate_from_the_device_twin) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    ASSERT_TRUE(patch({"dev1", "m1"}, R"({"properties":{"desired":{"m":1}}})"));
    EXPECT_FALSE(hub_->get_twin({"dev1", {}})->at("properties").at("desired").as_object().contains("m"));
    EXPECT_EQ(hub_->get_twin({"dev1", "m1"})->at("properties").at("desired").at("m"), 1);
    auto got = observer_.desired();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, (store::identity_key{"dev1", "m1"}));
}

TEST_F(hub_service_twins, for_each_twin_visits_devices_or_modules) {
    ASSERT_TRUE(create("a"));
    ASSERT_TRUE(create("b"));
    ASSERT_TRUE(create_module("a", "m1"));
    ASSERT_TRUE(create_module("b", "m2"));
    std::vector<std::string> devices, modules;
    hub_->for_each_twin(false, [&](const boost::json::object& t) {
        devices.emplace_back(t.at("deviceId").as_string());
        return true;
    });
    hub_->for_each_twin(true, [&](const boost::json::object& t) {
        modules.emplace_back(t.at("moduleId").as_string());
        return true;
    });
    EXPECT_EQ(devices, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(modules, (std::vector<std::string>{"m1", "m2"}));
    int visited = 0;
    hub_->for_each_twin(false, [&](const boost::json::object&) { return ++visited < 1; });
    EXPECT_EQ(visited, 1);
}

TEST_F(hub_service_twins, writes_in_flight_are_not_visible_to_readers_but_build_on_each_other) {
    ASSERT_TRUE(create("dev1"));
    // Issue two dependent writes back to back; both succeed because the second builds on the
    // first's head, and each handler sees at least its own write.
    auto first = std::make_shared<std::promise<std::int64_t>>();
    auto second = std::make_shared<std::promise<std::int64_t>>();
    hub_->patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"a":1}}})"), "*",
                     [first](result<boost::json::object> r) {
                         first->set_value(r ? r->at("properties").at("desired").at("$version").as_int64() : -1);
                     });
    hub_->patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"b":2}}})"), "*",
                     [second](result<boost::json::object> r) {
                         second->set_value(r ? r->at("properties").at("desired").at("$version").as_int64() : -1);
                     });
    EXPECT_EQ(first->get_future().get(), 2);
    EXPECT_EQ(second->get_future().get(), 3);
}

}  // namespace
}  // namespace twinhub::service

namespace twinhub::service {
namespace {

// A hub whose store fails the commits a test arms (tests/support/fault_injecting_store.hpp).
class hub_service_failures : public testing::hub_fixture {
protected:
    std::unique_ptr<store::store> make_store() override {
        auto s = std::make_unique<twinhub::testing::fault_injecting_store>(store::make_memory_store());
        faults_ = s.get();
        return s;
    }
    twinhub::testing::fault_injecting_store* faults_ = nullptr;
};

// Holds the store's completion thread inside a handler until release(), so that the writes issued
// meanwhile are all in flight at once.
class completion_gate {
public:
    explicit completion_gate(hub_service& hub, const std::string& device_id) {
        auto f = gate_.get_future().share();
        hub.patch_twin({device_id, {}}, boost::json::parse(R"({"tags":{"gate":1}})"), "*",
                       [f](result<boost::json::object>) { f.wait(); });
    }
    void release() { gate_.set_value(); }

private:
    std::promise<void> gate_;
};

template <class T>
std::pair<std::shared_ptr<std::promise<result<T>>>, handler<T>> capture() {
    auto p = std::make_shared<std::promise<result<T>>>();
    return {p, [p](result<T> r) { p->set_value(std::move(r)); }};
}

TEST_F(hub_service_failures, a_failed_write_fails_the_writes_built_on_it_with_storage_error) {
    auto dev = create("dev1");
    ASSERT_TRUE(dev);
    ASSERT_TRUE(create("other"));
    completion_gate gate(*hub_, "other");
    faults_->fail_next_commits(1);  // the disk fails the next commit: the first patch of dev1
    auto [a, a_done] = capture<boost::json::object>();
    auto [c, c_done] = capture<boost::json::object>();
    auto [u, u_done] = capture<registry::device_identity>();
    hub_->patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"x":1}}})"), "*", a_done);
    hub_->patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"x":2}}})"), "*", c_done);
    auto req = *dev;
    req.status_reason = "independent";
    hub_->update_device(req, "*", u_done);  // another record of the same device: independent of them
    gate.release();

    auto ra = a->get_future().get();
    ASSERT_FALSE(ra);
    EXPECT_EQ(ra.error().code, errc::storage_error);
    EXPECT_NE(ra.error().message.find("injected"), std::string::npos) << ra.error().message;  // the store's own error
    auto rc = c->get_future().get();
    ASSERT_FALSE(rc);
    EXPECT_EQ(rc.error().code, errc::storage_error);  // failed only because the write before it failed
    auto ru = u->get_future().get();
    ASSERT_TRUE(ru) << ru.error().message;
    EXPECT_EQ(hub_->get_device("dev1")->status_reason, "independent");
    EXPECT_EQ(hub_->get_device("dev1")->etag, dev->etag + 1);
    auto t = hub_->get_twin({"dev1", {}});
    EXPECT_FALSE(t->at("properties").at("desired").as_object().contains("x"));  // nothing half-applied
    EXPECT_TRUE(observer_.desired().empty());
}

TEST_F(hub_service_failures, writes_validate_against_writes_in_flight) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create("other"));
    completion_gate gate(*hub_, "other");
    // The device delete is not committed yet when the module create is validated: readers still see
    // dev1, but the create builds on the delete and fails.
    auto [d, d_done] = capture<void>();
    auto [m, m_done] = capture<registry::module_identity>();
    hub_->delete_device("dev1", "*", d_done);
    hub_->create_module(testing::module_request("dev1", "m1"), m_done);
    EXPECT_TRUE(hub_->get_device("dev1"));
    gate.release();
    ASSERT_TRUE(d->get_future().get());
    auto rm = m->get_future().get();
    ASSERT_FALSE(rm);
    EXPECT_EQ(rm.error().code, errc::device_not_found);
    // The device can be created again at once, with a fresh twin.
    ASSERT_TRUE(create("dev1"));
    EXPECT_TRUE(create_module("dev1", "m1"));
    EXPECT_EQ(hub_->get_twin({"dev1", {}})->at("version"), 2);
}

TEST_F(hub_service_failures, destroying_the_hub_waits_for_writes_in_flight) {
    ASSERT_TRUE(create("dev1"));
    auto done = std::make_shared<std::atomic<int>>(0);
    for (int i = 0; i < 100; ++i)
        hub_->patch_twin({"dev1", {}}, boost::json::parse(R"({"tags":{"n":1}})"), "*",
                         [done](result<boost::json::object>) { ++*done; });
    hub_.reset();
    EXPECT_EQ(done->load(), 100);
}

TEST_F(hub_service_failures, a_failed_twin_commit_changes_nothing_and_the_next_write_succeeds) {
    ASSERT_TRUE(create("dev1"));
    auto before = hub_->get_twin({"dev1", {}});
    ASSERT_TRUE(before);
    const auto desired_version = before->at("properties").at("desired").at("$version").as_int64();
    const auto reported_version = before->at("properties").at("reported").at("$version").as_int64();

    faults_->fail_next_commits(1);
    auto failed = patch({"dev1", {}}, R"({"properties":{"desired":{"x":1}},"tags":{"t":1}})");
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, errc::storage_error);
    auto after = hub_->get_twin({"dev1", {}});
    EXPECT_EQ(boost::json::serialize(*after), boost::json::serialize(*before));  // version, etag, tags, desired
    EXPECT_TRUE(observer_.desired().empty());  // no notification for a write that did not land

    auto ok = patch({"dev1", {}}, R"({"properties":{"desired":{"x":2}}})");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->at("properties").at("desired").at("$version").as_int64(), desired_version + 1);
    EXPECT_EQ(ok->at("properties").at("desired").at("x"), 2);
    ASSERT_EQ(observer_.desired().size(), 1u);

    faults_->fail_next_commits(1);
    auto rfailed = report({"dev1", {}}, R"({"r":1})");
    ASSERT_FALSE(rfailed);
    EXPECT_EQ(rfailed.error().code, errc::storage_error);
    EXPECT_FALSE(hub_->get_twin({"dev1", {}})->at("properties").at("reported").as_object().contains("r"));
    auto rok = report({"dev1", {}}, R"({"r":2})");
    ASSERT_TRUE(rok) << rok.error().message;
    EXPECT_EQ(*rok, reported_version + 1);
    EXPECT_EQ(faults_->injected_failures(), 2);
}

TEST_F(hub_service_failures, a_failed_identity_commit_leaves_the_registry_as_it_was) {
    faults_->fail_next_commits(1);
    auto c = create("dev2");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, errc::storage_error);
    EXPECT_FALSE(hub_->get_device("dev2"));
    EXPECT_FALSE(hub_->get_twin({"dev2", {}}));
    ASSERT_TRUE(create("dev2"));  // the id is free: nothing half-written

    ASSERT_TRUE(create_module("dev2", "m1"));
    faults_->fail_next_commits(1);
    auto rm = remove("dev2");
    ASSERT_FALSE(rm);
    EXPECT_EQ(rm.error().code, errc::storage_error);
    EXPECT_TRUE(hub_->get_device("dev2"));
    EXPECT_TRUE(hub_->get_twin({"dev2", "m1"}));
    EXPECT_TRUE(observer_.revoked().empty());  // sessions are cut only when the delete landed
    ASSERT_TRUE(remove("dev2"));
    EXPECT_FALSE(hub_->get_device("dev2"));
}

}  // namespace
}  // namespace twinhub::service

namespace twinhub::service {
namespace {

class recording_listener : public change_observer {
public:
    void on_twin_changed(const store::identity_key& id) override {
        std::lock_guard l(m_);
        keys_.push_back(id);
    }
    std::vector<store::identity_key> keys() const {
        std::lock_guard l(m_);
        return keys_;
    }
    void clear() {
        std::lock_guard l(m_);
        keys_.clear();
    }

private:
    mutable std::mutex m_;
    std::vector<store::identity_key> keys_;
};

using hub_service_twin_listener = testing::hub_fixture;

TEST_F(hub_service_twin_listener, changed_twins_are_reported_before_the_handler_runs) {
    recording_listener l;
    hub_->add_observer(&l);
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    l.clear();
    auto seen_in_handler = wait_for<std::size_t>([&](auto h) {
        hub_->patch_twin({"dev1", "m1"}, boost::json::parse(R"({"tags":{"a":1}})"), "*",
                         [&l, h](result<boost::json::object>) { h(l.keys().size()); });
    });
    ASSERT_TRUE(seen_in_handler);
    EXPECT_GE(*seen_in_handler, 1u);
    auto keys = l.keys();
    EXPECT_NE(std::find(keys.begin(), keys.end(), store::identity_key{"dev1", "m1"}), keys.end());

    l.clear();
    hub_->set_connection_state({"dev1", {}}, true);
    hub_->set_model_id({"dev1", "m1"}, "dtmi:x;1");
    EXPECT_EQ(l.keys(), (std::vector<store::identity_key>{{"dev1", ""}, {"dev1", "m1"}}));

    l.clear();
    ASSERT_TRUE(remove("dev1"));
    keys = l.keys();
    EXPECT_NE(std::find(keys.begin(), keys.end(), store::identity_key{"dev1", ""}), keys.end());
    EXPECT_NE(std::find(keys.begin(), keys.end(), store::identity_key{"dev1", "m1"}), keys.end());
    hub_->remove_observer(&l);
}

}  // namespace
}  // namespace twinhub::service
