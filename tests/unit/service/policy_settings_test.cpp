// policy_service and settings_service on their own (no façade), over the write pipeline.
#include "service_parts.hpp"
#include "service/policy_service.hpp"
#include "service/settings_service.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace twinhub::service {
namespace {

using testing::service_parts;
using testing::wait_for;

auth::shared_access_policy named(std::string name) {
    auth::shared_access_policy p;
    p.key_name = std::move(name);
    p.rights = auth::device_connect;
    return p;
}

TEST(policy_service, writes_are_serialized_durable_and_notified_before_their_handler) {
    service_parts parts;
    policy_service policies(parts.pipeline, parts.notifier);
    {
        auto defaults = auth::default_policies();  // what hub_service::open() does on first start
        store::write_batch b;
        for (auto& p : defaults) b.put_policy(p);
        ASSERT_TRUE(parts.store->commit_sync(std::move(b)));
        policies.load(std::move(defaults));
    }
    testing::recording_observer obs;
    parts.notifier.add_observer(&obs);
    const std::size_t defaults = policies.size();
    // Concurrent writers: each write is computed from the committed set, none is lost.
    std::vector<std::thread> writers;
    for (int i = 0; i < 8; ++i)
        writers.emplace_back([&, i] {
            auto r = wait_for<auth::shared_access_policy>(
                [&](auto h) { policies.put(named("p" + std::to_string(i)), h); });
            EXPECT_TRUE(r) << r.error().message;
            EXPECT_FALSE(r->primary_key.empty()) << "empty keys are generated";
        });
    for (auto& t : writers) t.join();
    EXPECT_EQ(policies.size(), defaults + 8);
    EXPECT_EQ(obs.policies_changed(), 8);
    auto stored = parts.store->load_policies();
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->size(), defaults + 8);

    auto seen_in_handler = wait_for<int>([&](auto h) {
        policies.put(named("p8"), [&obs, h](result<auth::shared_access_policy> r) {
            EXPECT_TRUE(r);
            h(obs.policies_changed());
        });
    });
    EXPECT_EQ(seen_in_handler.value(), 9) << "the observers hear of a change before its handler runs";
    ASSERT_TRUE(wait_for<void>([&](auto h) { policies.remove("p8", h); }));
    EXPECT_EQ(obs.policies_changed(), 10);

    auto missing = wait_for<void>([&](auto h) { policies.remove("nope", h); });
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, errc::not_found);
    EXPECT_EQ(obs.policies_changed(), 10) << "a refused write tells nobody";
    ASSERT_TRUE(wait_for<void>([&](auto h) { policies.remove("p3", h); }));
    EXPECT_EQ(policies.size(), defaults + 7);
    EXPECT_EQ(parts.store->load_policies()->size(), defaults + 7);
    parts.notifier.remove_observer(&obs);
}

TEST(policy_service, the_last_policy_cannot_be_removed) {
    service_parts parts;
    policy_service policies(parts.pipeline, parts.notifier);
    policies.load({named("only")});
    auto r = wait_for<void>([&](auto h) { policies.remove("only", h); });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(policies.size(), 1u);
}

TEST(settings_service, put_is_committed_then_readable_and_empty_deletes) {
    service_parts parts;
    settings_service settings(parts.pipeline);
    settings.load({{"a/1", "{}"}});
    ASSERT_TRUE(wait_for<void>([&](auto h) {
        settings.put("a/2", R"({"x":1})", [&settings, h](result<void> r) {
            EXPECT_EQ(settings.get("a/2"), std::optional<std::string>(R"({"x":1})")) << "not readable in its handler";
            h(r);
        });
    }));
    ASSERT_TRUE(wait_for<void>([&](auto h) { settings.put("b", "[]", h); }));
    auto a = settings.with_prefix("a/");
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].first, "a/1");
    EXPECT_EQ(a[1].first, "a/2");
    ASSERT_TRUE(wait_for<void>([&](auto h) { settings.put("a/1", "", h); }));
    ASSERT_TRUE(wait_for<void>([&](auto h) { settings.put("never", "", h); })) << "deleting an absent key is no error";
    EXPECT_FALSE(settings.get("a/1"));
    auto snap = parts.store->load();
    ASSERT_TRUE(snap);
    std::vector<std::string> keys;
    for (auto& [k, _] : snap->settings) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"a/2", "b"}));
}

}  // namespace
}  // namespace twinhub::service
