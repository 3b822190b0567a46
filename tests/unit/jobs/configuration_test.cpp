// Configurations: the body rules, the per-twin decision (priority, ties, the configurations
// section, content already present), [[id]] expansion, and the service over a real hub: applied
// on create, followed on tag changes, metrics, etags.
#include "jobs/configuration_content.hpp"
#include "jobs/configuration_service.hpp"

#include "query/query_engine.hpp"
#include "service_test_support.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace twinhub::jobs {
namespace {

namespace json = boost::json;
using service::testing::wait_for;

std::shared_ptr<const configuration> config(std::string id, std::string_view body, time_point t) {
    auto c = parse_configuration(id, json::parse(body), t);
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return std::make_shared<const configuration>(std::move(*c));
}

json::object twin(std::string_view tags, std::string_view desired = "{}", std::string_view section = "") {
    std::string s = R"({"deviceId":"d","tags":)" + std::string(tags) + R"(,"properties":{"desired":)" + std::string(desired) +
                    R"(,"reported":{}})";
    if (!section.empty()) s += R"(,"configurations":)" + std::string(section);
    return json::parse(s + "}").as_object();
}

TEST(configuration_content, bodies) {
    const time_point t = now();
    EXPECT_TRUE(parse_configuration("c1", json::parse(R"({"content":{"moduleContent":{"properties.desired":{}}},"targetCondition":""})"), t));
    for (auto body : {R"({"content":{}})", R"({"content":{"deviceContent":{"properties.reported.x":1}}})",
                      R"({"content":{"deviceContent":{"properties.desired":5}}})",
                      R"({"content":{"deviceContent":{},"moduleContent":{}}})",
                      R"({"content":{"deviceContent":{}},"targetCondition":"tags.a = = 1"})",
                      R"({"content":{"deviceContent":{}},"priority":1.5})",
                      R"({"content":{"deviceContent":{}},"labels":{"a":1}})",
                      R"({"content":{"deviceContent":{}},"metrics":{"queries":{"m":"SELECT FROM"}}})"}) {
        auto c = parse_configuration("c1", json::parse(body), t);
        ASSERT_FALSE(c) << body;
        EXPECT_EQ(c.error().code, errc::invalid_argument);
    }
    EXPECT_FALSE(parse_configuration("Upper", json::parse(R"({"content":{"deviceContent":{}}})"), t));
    EXPECT_EQ(expand_configuration_refs("SELECT deviceId FROM devices WHERE configurations.[[c1]].status = 'Applied'"),
              "SELECT deviceId FROM devices WHERE configurations['c1'].status = 'Applied'");
}

TEST(configuration_content, priority_ties_section_and_idempotence) {
    const time_point t = now();
    auto low = config("low", R"({"content":{"deviceContent":{"properties.desired.a":{"v":1}}},"targetCondition":"tags.x = 1","priority":1})", t);
    auto high = config("high", R"({"content":{"deviceContent":{"properties.desired.a":{"v":2}}},"targetCondition":"tags.x = 1","priority":9})", t);
    auto newer = config("newer", R"({"content":{"deviceContent":{"properties.desired":{"b":3}}},"targetCondition":"tags.x = 1","priority":9})",
                        t + std::chrono::seconds(1));
    auto other = config("other", R"({"content":{"deviceContent":{"properties.desired.z":1}},"targetCondition":"tags.x = 2"})", t);
    auto none = config("none", R"({"content":{"deviceContent":{"properties.desired.z":1}},"targetCondition":""})", t);

    auto d = decide(twin(R"({"x":1})"), false, {low, high, other, none});
    ASSERT_TRUE(d);
    EXPECT_EQ(json::serialize(d->patch), R"({"properties":{"desired":{"a":{"v":2}}}})");
    EXPECT_EQ(json::serialize(d->section), R"({"low":{"status":"Targeted"},"high":{"status":"Applied"}})");
    // Already applied: nothing to write (an extra key in the twin does not matter).
    EXPECT_FALSE(decide(twin(R"({"x":1})", R"({"a":{"v":2,"w":0},"$version":3})", json::serialize(d->section)), false,
                        {low, high, other, none}));
    // A tie goes to the newest.
    auto tie = decide(twin(R"({"x":1})"), false, {low, high, newer});
    ASSERT_TRUE(tie);
    EXPECT_EQ(json::serialize(tie->patch), R"({"properties":{"desired":{"b":3}}})");
    EXPECT_EQ(tie->section.at("newer").at("status").as_string(), "Applied");
    EXPECT_EQ(tie->section.at("high").at("status").as_string(), "Targeted");
    // No longer targeted: the section entry goes, no desired write.
    auto gone = decide(twin(R"({"x":3})", R"({"a":{"v":2}})", R"({"high":{"status":"Applied"}})"), false, {low, high});
    ASSERT_TRUE(gone);
    EXPECT_TRUE(gone->patch.is_null());
    EXPECT_TRUE(gone->section.empty());
    // Module configurations do not target device twins.
    auto mod = config("mod", R"({"content":{"moduleContent":{"properties.desired.a":1}},"targetCondition":"tags.x = 1"})", t);
    EXPECT_FALSE(decide(twin(R"({"x":1})"), false, {mod}));
}

TEST(configuration_content, apply_requests) {
    auto p = parse_apply_request(json::parse(R"({"modulesContent":{"$edgeAgent":{"properties.desired":{"a":1}}}})"));
    ASSERT_TRUE(p);
    ASSERT_EQ(p->modules.size(), 1u);
    EXPECT_EQ(p->modules[0].first, "$edgeAgent");
    auto d = parse_apply_request(json::parse(R"({"deviceContent":{"properties.desired.x.y":1}})"));
    ASSERT_TRUE(d);
    EXPECT_EQ(json::serialize(*d->device_patch), R"({"properties":{"desired":{"x":{"y":1}}}})");
    EXPECT_FALSE(parse_apply_request(json::parse(R"({})")));
    EXPECT_FALSE(parse_apply_request(json::parse(R"({"modulesContent":{"m":{"properties.desired":1}}})")));
    EXPECT_FALSE(parse_apply_request(json::parse(R"({"moduleContent":{}})")));
}

class config_fixture : public service::testing::hub_fixture {
protected:
    void SetUp() override {
        hub_fixture::SetUp();
        engine_ = std::make_unique<query::query_engine>(hub_->twins());
        configs_ = std::make_unique<configuration_service>(*hub_, *engine_);
        configs_->start();
    }
    void TearDown() override {
        configs_.reset();
        engine_.reset();
        hub_fixture::TearDown();
    }
    result<json::object> put(std::string id, std::string_view body, std::optional<std::string> if_match = std::nullopt) {
        return wait_for<json::object>([&](auto h) { configs_->put(id, json::parse(body), if_match, h); });
    }
    std::unique_ptr<query::query_engine> engine_;
    std::unique_ptr<configuration_service> configs_;
};

TEST_F(config_fixture, applied_on_create_and_on_tag_changes_with_metrics_and_etags) {
    ASSERT_TRUE(create("a"));
    ASSERT_TRUE(create("b"));
    ASSERT_TRUE(patch({"a", {}}, R"({"tags":{"env":"prod"}})"));
    auto c = put("c1", R"({"content":{"deviceContent":{"properties.desired.mode":"eco"}},"targetCondition":"tags.env = 'prod'",
                          "metrics":{"queries":{"eco":"SELECT deviceId FROM devices WHERE configurations.[[c1]].status = 'Applied'"}}})");
    ASSERT_TRUE(c) << c.error().message;
    configs_->wait_idle();
    auto ta = hub_->get_twin({"a", {}});
    EXPECT_EQ(ta->at("properties").at("desired").at("mode").as_string(), "eco");
    EXPECT_EQ(json::serialize(ta->at("configurations")), R"({"c1":{"status":"Applied"}})");
    EXPECT_FALSE(hub_->get_twin({"b", {}})->contains("configurations"));

    ASSERT_TRUE(patch({"b", {}}, R"({"tags":{"env":"prod"}})"));
    configs_->wait_idle();
    EXPECT_EQ(hub_->get_twin({"b", {}})->at("properties").at("desired").at("mode").as_string(), "eco");
    auto got = configs_->get("c1");
    ASSERT_TRUE(got);
    EXPECT_EQ(json::serialize(got->at("systemMetrics").at("results")), R"({"targetedCount":2,"appliedCount":2})");
    EXPECT_EQ(json::serialize(got->at("metrics").at("results")), R"({"eco":2})");

    // Create-only without If-Match; a stale etag is refused; the current one works.
    EXPECT_EQ(put("c1", R"({"content":{"deviceContent":{"properties.desired.mode":"eco"}}})").error().code,
              errc::device_already_exists);
    const std::string etag(c->at("etag").as_string());
    auto up = put("c1", R"({"content":{"deviceContent":{"properties.desired.mode":"eco"}},"targetCondition":"tags.env = 'prod'","priority":5})",
                  "\"" + etag + "\"");
    ASSERT_TRUE(up) << up.error().message;
    EXPECT_NE(up->at("etag").as_string(), etag);
    EXPECT_EQ(put("c1", R"({"content":{"deviceContent":{"properties.desired.mode":"eco"}}})", etag).error().code,
              errc::precondition_failed);
    EXPECT_EQ(put("c1", R"({"content":{"deviceContent":{"properties.desired.mode":"x"}}})", "*").error().code,
              errc::invalid_argument);

    // Removed: the section entries go, the desired value stays.
    ASSERT_TRUE(wait_for<void>([&](auto h) { configs_->remove("c1", std::nullopt, h); }));
    configs_->wait_idle();
    ta = hub_->get_twin({"a", {}});
    EXPECT_FALSE(ta->contains("configurations"));
    EXPECT_EQ(ta->at("properties").at("desired").at("mode").as_string(), "eco");
    EXPECT_EQ(configs_->get("c1").error().code, errc::not_found);
}

TEST_F(config_fixture, configurations_survive_a_restart) {
    ASSERT_TRUE(put("keep", R"({"content":{"deviceContent":{"properties.desired.k":1}},"targetCondition":"tags.k = 1"})"));
    configs_.reset();
    configs_ = std::make_unique<configuration_service>(*hub_, *engine_);
    configs_->start();
    ASSERT_TRUE(configs_->get("keep"));
    ASSERT_TRUE(create("late"));
    ASSERT_TRUE(patch({"late", {}}, R"({"tags":{"k":1}})"));
    configs_->wait_idle();
    EXPECT_EQ(hub_->get_twin({"late", {}})->at("properties").at("desired").at("k").as_int64(), 1);
}

}  // namespace
}  // namespace twinhub::jobs
