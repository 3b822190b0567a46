// Link addresses and CBS audiences as the SDKs send them (docs: ../shared/spec/iothub-amqp.md 2, 3, 4).
#include "amqp/address.hpp"

#include <gtest/gtest.h>

namespace twinhub::amqp {
namespace {

struct link_case {
    const char* address;
    std::optional<link_kind> kind;
    const char* device = "";
    const char* module = "";
};

class link_address_table : public ::testing::TestWithParam<link_case> {};

TEST_P(link_address_table, parses_what_the_sdks_send) {
    const auto& c = GetParam();
    auto a = parse_link_address(c.address);
    ASSERT_EQ(a.has_value(), c.kind.has_value()) << c.address;
    if (!a) return;
    EXPECT_EQ(a->kind, *c.kind) << c.address;
    EXPECT_EQ(a->identity.device_id, c.device) << c.address;
    EXPECT_EQ(a->identity.module_id, c.module) << c.address;
}

INSTANTIATE_TEST_SUITE_P(
    amqp_address, link_address_table,
    ::testing::Values(
        link_case{"$cbs", link_kind::cbs}, link_case{"/$cbs", link_kind::cbs},
        link_case{"/devices/d1/messages/events", link_kind::telemetry, "d1"},
        link_case{"/devices/d1/modules/m1/messages/events", link_kind::telemetry, "d1", "m1"},
        link_case{"/devices/d1/messages/devicebound", link_kind::c2d, "d1"},
        link_case{"/devices/d1/modules/m1/messages/devicebound", link_kind::c2d, "d1", "m1"},
        link_case{"/devices/d1/twin", link_kind::twin, "d1"},
        link_case{"/devices/d1/modules/m1/twin", link_kind::twin, "d1", "m1"},
        link_case{"/devices/d1/methods/devicebound", link_kind::methods, "d1"},
        link_case{"/devices/d1/modules/m1/methods/devicebound", link_kind::methods, "d1", "m1"},
        link_case{"/messages/devicebound", link_kind::service_c2d},
        link_case{"/messages/serviceBound/feedback", link_kind::service_feedback},
        link_case{"/messages/servicebound/feedback", link_kind::service_feedback},
        link_case{"/messages/serviceBound/filenotifications", link_kind::service_file_notifications},
        // The C SDK sends full URIs; ids may be percent-encoded.
        link_case{"amqps://hub.local:5671/devices/d1/messages/events", link_kind::telemetry, "d1"},
        link_case{"/devices/a%20b/twin", link_kind::twin, "a b"},
        // Not addresses of this hub.
        link_case{"", std::nullopt}, link_case{"/", std::nullopt}, link_case{"/devices", std::nullopt},
        link_case{"/devices//twin", std::nullopt}, link_case{"/devices/d1", std::nullopt},
        link_case{"/devices/d1/twin/extra", std::nullopt}, link_case{"/devices/d1/modules/m1", std::nullopt},
        link_case{"/devices/%zz/twin", std::nullopt}, link_case{"/messages/serviceBound/other", std::nullopt},
        link_case{"amqps://hub.local", std::nullopt}));

TEST(amqp_address, c2d_destination_is_a_device_or_module_devicebound_address) {
    auto d = parse_c2d_destination("/devices/dev%2B1/messages/devicebound");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->device_id, "dev+1");
    EXPECT_EQ(d->module_id, "");
    auto m = parse_c2d_destination("/devices/d/modules/m/messages/devicebound");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->module_id, "m");
    EXPECT_FALSE(parse_c2d_destination("/devices/d/messages/events"));
    EXPECT_FALSE(parse_c2d_destination("/devices/d/twin"));
}

TEST(amqp_audience, hub_and_identity_audiences_of_this_hub_only) {
    const std::vector<std::string> hosts{"hub.local", "localhost"};
    auto hub = parse_audience("hub.local", hosts);
    ASSERT_TRUE(hub);
    EXPECT_TRUE(hub->hub);
    auto eh = parse_audience("sb://hub.local/messages/events", hosts);
    ASSERT_TRUE(eh);
    EXPECT_TRUE(eh->hub);
    auto dev = parse_audience("localhost:5671/devices/d1", hosts);
    ASSERT_TRUE(dev);
    EXPECT_FALSE(dev->hub);
    EXPECT_EQ(dev->identity.device_id, "d1");
    auto mod = parse_audience("HUB.LOCAL%2Fdevices%2Fd1%2Fmodules%2Fm1", hosts);
    ASSERT_TRUE(mod);
    EXPECT_EQ(mod->identity.module_id, "m1");
    EXPECT_FALSE(parse_audience("other.hub/devices/d1", hosts));
    EXPECT_FALSE(parse_audience("hub.local/devices", hosts));
    EXPECT_FALSE(parse_audience("hub.local/devices/d1/twin", hosts));
    EXPECT_FALSE(parse_audience("", hosts));
}

}  // namespace
}  // namespace twinhub::amqp
