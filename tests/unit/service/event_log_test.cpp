// event_log (the telemetry append path) and change_notifier on their own.
#include "service_parts.hpp"

#include <gtest/gtest.h>

namespace twinhub::service {
namespace {

using testing::service_parts;
using testing::wait_for;

class partition_observer final : public change_observer {
public:
    void on_events_appended(std::uint32_t partition) override {
        std::lock_guard l(m);
        partitions.push_back(partition);
    }
    std::mutex m;
    std::vector<std::uint32_t> partitions;
};

TEST(event_log, appends_to_each_identitys_partition_then_tells_the_observers) {
    service_parts p;
    partition_observer obs;
    p.notifier.add_observer(&obs);
    std::vector<store::event_record> events(3);
    events[0].source = {"dev1", {}};
    events[1].source = {"dev1", {}};
    events[2].source = {"dev2", "m"};
    events[2].enqueued_time_ns = 42;  // stamped by the head at arrival: kept
    for (int i = 0; i < 3; ++i) events[i].body = "e" + std::to_string(i);
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.events.append(events, h); }));
    const auto p1 = store::partition_of({"dev1", {}}, 4);
    const auto p2 = store::partition_of({"dev2", "m"}, 4);
    auto read1 = p.events.read(p1, 0, 10);
    ASSERT_TRUE(read1);
    ASSERT_GE(read1->size(), 2u);
    EXPECT_EQ((*read1)[0].body, "e0");
    EXPECT_EQ((*read1)[1].body, "e1");
    EXPECT_GT((*read1)[0].enqueued_time_ns, 42);
    auto read2 = p.events.read(p2, 0, 10);
    ASSERT_TRUE(read2);
    EXPECT_EQ(read2->back().body, "e2");
    EXPECT_EQ(read2->back().enqueued_time_ns, 42);
    EXPECT_EQ(p.events.partition_info(p1)->last_sequence_number, static_cast<std::int64_t>(read1->size()) - 1);
    p.pipeline.wait_idle();  // the notifications follow the handler
    std::lock_guard l(obs.m);
    std::vector<std::uint32_t> want{p1};
    if (p2 != p1) want.push_back(p2);
    EXPECT_EQ(obs.partitions, want) << "once per partition touched";
    p.notifier.remove_observer(&obs);
}

// Drops everything: the append is still acknowledged, as IoT Hub acknowledges a message no route wants.
class drop_all final : public event_router {
public:
    std::vector<store::event_record> route_telemetry(std::vector<store::event_record>) override { return {}; }
    bool wants_twin_changes() const override { return false; }
    bool wants_lifecycle() const override { return false; }
    void on_twin_change(const store::identity_key&, std::string, boost::json::object) override {}
    void on_lifecycle(const store::identity_key&, std::string, boost::json::object) override {}
};

TEST(event_log, the_router_decides_and_an_unwanted_message_is_acknowledged) {
    service_parts p;
    drop_all r;
    p.events.set_router(&r);
    std::vector<store::event_record> one(1);
    one[0].source = {"dev1", {}};
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.events.append(one, h); }));
    for (std::uint32_t i = 0; i < p.events.partition_count(); ++i) EXPECT_TRUE(p.events.read(i, 0, 10)->empty());
}

TEST(event_log, trim_deletes_old_events_but_keeps_each_partitions_last) {
    service_parts p;
    std::vector<store::event_record> ev(3);
    for (int i = 0; i < 3; ++i) {
        ev[i].source = {"dev1", {}};
        ev[i].enqueued_time_ns = 100 + i;
    }
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.events.append(ev, h); }));
    const auto part = store::partition_of({"dev1", {}}, 4);
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.events.trim({part}, 1000, 100, h); }));
    auto left = p.events.read(part, 0, 10);
    ASSERT_TRUE(left);
    ASSERT_EQ(left->size(), 1u);
    EXPECT_EQ(left->front().sequence_number, 2u);
}

class counting_observer final : public change_observer {
public:
    void on_policies_changed() override { ++policies; }
    int policies = 0;
};

TEST(change_notifier, observers_are_called_in_registration_order_until_removed) {
    change_notifier n;
    counting_observer a, b;
    n.policies_changed();  // nobody registered: nothing happens
    n.add_observer(&a);
    n.add_observer(&b);
    n.policies_changed();
    n.remove_observer(&a);
    n.policies_changed();
    n.credentials_changed({"d", {}});  // not overridden: a no-op
    EXPECT_EQ(a.policies, 1);
    EXPECT_EQ(b.policies, 2);
}

}  // namespace
}  // namespace twinhub::service
