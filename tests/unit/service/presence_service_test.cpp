// presence_service and session_service on their own (no façade).
#include "service_parts.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace twinhub::service {
namespace {

using testing::service_parts;
using testing::wait_for;

TEST(presence_service, connection_state_is_memory_only_and_survives_identity_writes) {
    service_parts p;
    ASSERT_TRUE(p.create("dev1"));
    ASSERT_TRUE(p.create("dev2"));
    p.presence.set_connection_state({"dev1", {}}, true);
    p.presence.set_connection_state({"nobody", {}}, true);  // ignored
    EXPECT_EQ(p.presence.connected_device_count(), 1);
    auto d = p.registry.get_device("dev1");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->connection_state, registry::connection_state::connected);
    ASSERT_TRUE(d->last_activity_time);
    // An identity write completing keeps the in-memory presence (it is never rolled back).
    ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { p.registry.update_device(*d, "*", h); }));
    EXPECT_EQ(p.registry.get_device("dev1")->connection_state, registry::connection_state::connected);
    EXPECT_EQ(p.twins.get_twin({"dev1", {}})->at("connectionState"), "Connected");
    p.presence.set_connection_state({"dev1", {}}, false);
    EXPECT_EQ(p.presence.connected_device_count(), 0);
}

TEST(presence_service, touch_activity_has_a_resolution_of_one_second) {
    service_parts p;
    ASSERT_TRUE(p.create("dev1"));
    ASSERT_TRUE(p.create_module("dev1", "m1"));
    EXPECT_FALSE(p.registry.get_module("dev1", "m1")->last_activity_time);
    p.presence.touch_activity({"dev1", "m1"});
    auto first = p.registry.get_module("dev1", "m1")->last_activity_time;
    ASSERT_TRUE(first);
    p.presence.touch_activity({"dev1", "m1"});
    EXPECT_EQ(p.registry.get_module("dev1", "m1")->last_activity_time, first) << "within the second: unchanged";
    EXPECT_FALSE(p.registry.get_device("dev1")->last_activity_time) << "a module's activity is its own";
}

TEST(presence_service, credentials_follow_the_device_status) {
    service_parts p;
    auto d = p.create("dev1");
    ASSERT_TRUE(d);
    ASSERT_TRUE(p.create_module("dev1", "m1"));
    auto c = p.presence.credentials({"dev1", "m1"});
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->enabled);
    EXPECT_EQ(c->authentication.symmetric_key.primary_key,
              p.registry.get_module("dev1", "m1")->authentication.symmetric_key.primary_key);
    auto missing = p.presence.credentials({"dev1", "m2"});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, errc::module_not_found);
    EXPECT_EQ(p.presence.credentials({"dev9", {}}).error().code, errc::device_not_found);
}

TEST(session_service, records_are_committed_then_readable_and_cascade_with_their_identity) {
    service_parts p;
    store::session_record s{"dev1/m1", {{"devices/dev1/modules/m1/messages/devicebound/#", 1}}};
    ASSERT_TRUE(wait_for<void>([&](auto h) {
        p.sessions.put(s, [&p, h](result<void> r) {
            EXPECT_TRUE(p.sessions.get("dev1/m1")) << "not readable in its own handler";
            h(r);
        });
    }));
    EXPECT_EQ(p.sessions.get("dev1/m1")->subscriptions, s.subscriptions);
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.sessions.put({"dev1", {}}, h); }));
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.sessions.put({"dev1x/m1", {}}, h); }));
    p.sessions.drop_sessions_of("dev1", {});
    EXPECT_FALSE(p.sessions.get("dev1"));
    EXPECT_FALSE(p.sessions.get("dev1/m1"));
    EXPECT_TRUE(p.sessions.get("dev1x/m1")) << "another device with the same prefix";
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.sessions.remove("dev1x/m1", h); }));
    EXPECT_FALSE(p.sessions.get("dev1x/m1"));
    auto snap = p.store->load();
    ASSERT_TRUE(snap);
    // remove() is durable; drop_sessions_of() only mirrors the store's cascade, it writes nothing.
    std::vector<std::string> stored;
    for (auto& x : snap->sessions) stored.push_back(x.client_id);
    std::sort(stored.begin(), stored.end());
    EXPECT_EQ(stored, (std::vector<std::string>{"dev1", "dev1/m1"}));
}

}  // namespace
}  // namespace twinhub::service
