#include "registry/identity.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::registry;
namespace json = boost::json;

namespace {

time_point at_ns(std::int64_t ns) { return time_point(std::chrono::nanoseconds(ns)); }

device_identity full_device() {
    device_identity d;
    d.device_id = "dev$1";
    d.generation_id = "637534345627501371";
    d.etag = 42;
    d.status = device_status::disabled;
    d.status_reason = "because";
    d.status_updated_time = at_ns(1'700'000'000'123'456'789);
    d.connection_state = connection_state::connected;
    d.connection_state_updated_time = at_ns(1'700'000'001'000'000'001);
    d.last_activity_time = at_ns(1'700'000'002'999'999'999);
    d.cloud_to_device_message_count = 7;
    d.authentication.type = auth_type::self_signed;
    d.authentication.symmetric_key = {"a2V5MQ==", "a2V5Mg=="};
    d.authentication.x509_thumbprint = {std::string(40, 'a'), std::string(64, 'b')};
    d.iot_edge = true;
    d.device_scope = "ms-azure-iot-edge://dev-1";
    d.parent_scopes = {"p1", "p2"};
    return d;
}

void expect_same(const device_identity& a, const device_identity& b) {
    EXPECT_EQ(a.device_id, b.device_id);
    EXPECT_EQ(a.generation_id, b.generation_id);
    EXPECT_EQ(a.etag, b.etag);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.status_reason, b.status_reason);
    EXPECT_EQ(a.status_updated_time, b.status_updated_time);
    EXPECT_EQ(a.connection_state, b.connection_state);
    EXPECT_EQ(a.connection_state_updated_time, b.connection_state_updated_time);
    EXPECT_EQ(a.last_activity_time, b.last_activity_time);
    EXPECT_EQ(a.cloud_to_device_message_count, b.cloud_to_device_message_count);
    EXPECT_EQ(a.authentication.type, b.authentication.type);
    EXPECT_EQ(a.authentication.symmetric_key.primary_key, b.authentication.symmetric_key.primary_key);
    EXPECT_EQ(a.authentication.symmetric_key.secondary_key, b.authentication.symmetric_key.secondary_key);
    EXPECT_EQ(a.authentication.x509_thumbprint.primary_thumbprint, b.authentication.x509_thumbprint.primary_thumbprint);
    EXPECT_EQ(a.authentication.x509_thumbprint.secondary_thumbprint,
              b.authentication.x509_thumbprint.secondary_thumbprint);
    EXPECT_EQ(a.iot_edge, b.iot_edge);
    EXPECT_EQ(a.device_scope, b.device_scope);
    EXPECT_EQ(a.parent_scopes, b.parent_scopes);
}

}  // namespace

TEST(identity_storage, device_round_trips_every_field_exactly) {
    auto d = full_device();
    auto text = json::serialize(to_storage_json(d));
    auto back = device_from_storage_json(json::parse(text));
    ASSERT_TRUE(back) << back.error().message;
    expect_same(d, *back);
}

TEST(identity_storage, default_device_round_trips) {
    device_identity d;
    d.device_id = "d";
    auto back = device_from_storage_json(to_storage_json(d));
    ASSERT_TRUE(back) << back.error().message;
    expect_same(d, *back);
}

TEST(identity_storage, module_round_trips_every_field) {
    module_identity m;
    m.device_id = "dev1";
    m.module_id = "$edgeAgent";
    m.managed_by = "IotEdge";
    m.generation_id = "1";
    m.etag = 3;
    m.connection_state = connection_state::connected;
    m.connection_state_updated_time = at_ns(5);
    m.last_activity_time = at_ns(-5);
    m.cloud_to_device_message_count = 2;
    m.authentication.type = auth_type::none;
    auto back = module_from_storage_json(json::parse(json::serialize(to_storage_json(m))));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->device_id, m.device_id);
    EXPECT_EQ(back->module_id, m.module_id);
    EXPECT_EQ(back->managed_by, m.managed_by);
    EXPECT_EQ(back->generation_id, m.generation_id);
    EXPECT_EQ(back->etag, m.etag);
    EXPECT_EQ(back->connection_state, m.connection_state);
    EXPECT_EQ(back->connection_state_updated_time, m.connection_state_updated_time);
    EXPECT_EQ(back->last_activity_time, m.last_activity_time);
    EXPECT_EQ(back->cloud_to_device_message_count, 2);
    EXPECT_EQ(back->authentication.type, auth_type::none);
}

TEST(identity_storage, corrupt_records_fail_with_corrupt_data) {
    auto bad = [](json::value v) {
        auto r = device_from_storage_json(v);
        EXPECT_FALSE(r);
        if (!r) {
            EXPECT_EQ(r.error().code, errc::corrupt_data);
            return r.error().message;
        }
        return std::string();
    };
    bad(json::parse("[]"));
    auto o = to_storage_json(full_device());
    o.erase("generation_id");
    EXPECT_NE(bad(o).find("generation_id"), std::string::npos);
    o = to_storage_json(full_device());
    o["status"] = "paused";
    bad(o);
    o = to_storage_json(full_device());
    o["v"] = 99;
    bad(o);
    o = to_storage_json(full_device());
    o["authentication"].as_object()["type"] = "x";
    bad(o);
    o = to_storage_json(full_device());
    o["etag"] = -1;
    bad(o);
    auto m = module_from_storage_json(json::parse(R"({"v":1})"));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, errc::corrupt_data);
}
