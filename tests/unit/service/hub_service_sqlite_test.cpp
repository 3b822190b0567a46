// hub_service over the SQLite store: what was acknowledged is there after a reopen.
#include "service_test_support.hpp"

#include "store/sqlite_store.hpp"

#include <atomic>
#include <cstdlib>
#include <thread>
#include <filesystem>

namespace twinhub::service {
namespace {

using testing::device_request;
using testing::module_request;
using testing::wait_for;

class temp_dir {
public:
    temp_dir() {
        std::string t = (std::filesystem::temp_directory_path() / "twinhub-service-XXXXXX").string();
        if (!::mkdtemp(t.data())) std::abort();
        path_ = t;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const char* name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

struct opened {
    std::unique_ptr<store::store> st;
    std::unique_ptr<hub_service> hub;
    ~opened() {
        if (st) st->close();
    }
};

void open(opened& o, const std::string& path) {
    log::set_level(log::level::warn);
    auto st = store::open_sqlite_store(path);
    ASSERT_TRUE(st) << st.error().message;
    o.st = std::move(*st);
    auto hub = hub_service::open(*o.st, {});
    ASSERT_TRUE(hub) << hub.error().message;
    o.hub = std::move(*hub);
}

TEST(hub_service_sqlite, state_survives_a_reopen) {
    temp_dir dir;
    const std::string db = dir.file("hub.db");
    registry::device_identity dev1;
    std::vector<auth::shared_access_policy> policies;
    {
        opened o;
        ASSERT_NO_FATAL_FAILURE(open(o, db));
        auto& hub = *o.hub;
        policies = hub.policies();
        auto d = wait_for<registry::device_identity>([&](auto h) { hub.create_device(device_request("dev1"), h); });
        ASSERT_TRUE(d) << d.error().message;
        dev1 = *d;
        ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { hub.create_device(device_request("gone"), h); }));
        ASSERT_TRUE(wait_for<registry::module_identity>(
            [&](auto h) { hub.create_module(module_request("dev1", "m1"), h); }));
        ASSERT_TRUE(wait_for<registry::module_identity>(
            [&](auto h) { hub.create_module(module_request("gone", "m2"), h); }));
        auto t = wait_for<boost::json::object>([&](auto h) {
            hub.patch_twin({"dev1", {}}, boost::json::parse(R"({"tags":{"site":"lab"},"properties":{"desired":{"r":1}}})"),
                           "*", h);
        });
        ASSERT_TRUE(t) << t.error().message;
        ASSERT_TRUE(wait_for<std::int64_t>(
            [&](auto h) { hub.patch_reported({"dev1", "m1"}, boost::json::parse(R"({"fw":"1.2"})"), h); }));
        ASSERT_TRUE(wait_for<void>([&](auto h) { hub.put_session({"dev1", {{"$iothub/twin/res/#", 1}}}, h); }));
        ASSERT_TRUE(wait_for<void>([&](auto h) { hub.delete_device("gone", "*", h); }));
        hub.set_connection_state({"dev1", {}}, true);
        auto u = dev1;
        u.status_reason = "kept";
        auto updated = wait_for<registry::device_identity>([&](auto h) { hub.update_device(u, "*", h); });
        ASSERT_TRUE(updated);
        dev1 = *updated;
    }
    opened o;
    ASSERT_NO_FATAL_FAILURE(open(o, db));
    auto& hub = *o.hub;
    auto again = hub.policies();
    ASSERT_EQ(again.size(), policies.size());
    auto d = hub.get_device("dev1");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->etag, dev1.etag);
    EXPECT_EQ(d->generation_id, dev1.generation_id);
    EXPECT_EQ(d->status_reason, "kept");
    EXPECT_EQ(d->authentication.symmetric_key.primary_key, dev1.authentication.symmetric_key.primary_key);
    EXPECT_EQ(d->connection_state, registry::connection_state::disconnected);  // nobody is connected after a restart
    EXPECT_FALSE(hub.get_device("gone"));
    EXPECT_EQ(hub.get_module("gone", "m2").error().code, errc::device_not_found);
    EXPECT_TRUE(hub.get_module("dev1", "m1"));
    auto t = hub.get_twin({"dev1", {}});
    ASSERT_TRUE(t);
    EXPECT_EQ(t->at("tags").at("site"), "lab");
    EXPECT_EQ(t->at("properties").at("desired").at("r"), 1);
    EXPECT_EQ(t->at("properties").at("desired").at("$version"), 2);
    auto mt = hub.get_twin({"dev1", "m1"});
    ASSERT_TRUE(mt);
    EXPECT_EQ(mt->at("properties").at("reported").at("fw"), "1.2");
    auto s = hub.get_session("dev1");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->subscriptions.size(), 1u);
    EXPECT_EQ(hub.statistics().total_device_count, 1);

    // Writes continue from the stored revisions.
    std::string etag(t->at("etag").as_string());
    auto p = wait_for<boost::json::object>([&](auto h) {
        hub.patch_twin({"dev1", {}}, boost::json::parse(R"({"properties":{"desired":{"r":2}}})"), "\"" + etag + "\"", h);
    });
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->at("properties").at("desired").at("$version"), 3);
    auto u = wait_for<registry::device_identity>([&](auto h) { hub.update_device(*d, "*", h); });
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->etag, dev1.etag + 1);
}

TEST(hub_service_sqlite, concurrent_patches_commit_in_version_order_and_survive_a_reopen) {
    temp_dir dir;
    const std::string db = dir.file("hub.db");
    constexpr int threads = 4, per_thread = 25;
    testing::recording_observer obs;
    {
        opened o;
        ASSERT_NO_FATAL_FAILURE(open(o, db));
        o.hub->add_observer(&obs);
        ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { o.hub->create_device(device_request("d"), h); }));
        std::atomic<int> ok{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i)
                    o.hub->patch_twin({"d", {}},
                                      boost::json::parse(R"({"properties":{"desired":{"k)" + std::to_string(t) +
                                                         R"(":)" + std::to_string(i) + "}}}"),
                                      "*", [&](result<boost::json::object> r) { ok += r ? 1 : 0; });
            });
        for (auto& t : ts) t.join();
        o.hub.reset();  // waits for the writes in flight
        EXPECT_EQ(ok.load(), threads * per_thread);
    }
    auto changes = obs.desired();
    ASSERT_EQ(changes.size(), static_cast<std::size_t>(threads * per_thread));
    for (std::size_t i = 0; i < changes.size(); ++i) EXPECT_EQ(changes[i].second.version, static_cast<std::int64_t>(i) + 2);

    opened o;
    ASSERT_NO_FATAL_FAILURE(open(o, db));
    auto t = o.hub->get_twin({"d", {}});
    ASSERT_TRUE(t);
    EXPECT_EQ(t->at("properties").at("desired").at("$version"), threads * per_thread + 1);
    for (int k = 0; k < threads; ++k)
        EXPECT_EQ(t->at("properties").at("desired").at("k" + std::to_string(k)), per_thread - 1);
}

}  // namespace
}  // namespace twinhub::service
