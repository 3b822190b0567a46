// job_service over a real hub_service (memory store) and query engine: the state machine
// (queued/scheduled -> running -> completed; cancel; duplicate ids), twin updates through the twin
// service, method jobs without a reachable device, and persistence across a new job_service on
// the same hub (a scheduled job runs after the "restart", a finished one is still there).
#include "jobs/job_service.hpp"

#include "query/query_engine.hpp"
#include "service_test_support.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <thread>

namespace twinhub::jobs {
namespace {

namespace json = boost::json;
using service::testing::wait_for;

class jobs_fixture : public service::testing::hub_fixture {
protected:
    void SetUp() override {
        hub_fixture::SetUp();
        engine_ = std::make_unique<query::query_engine>(hub_->twins());
        engine_->set_job_rows([this] { return jobs_ ? jobs_->device_job_rows() : std::vector<json::object>{}; });
        start_jobs();
    }
    void TearDown() override {
        jobs_.reset();
        engine_.reset();
        hub_fixture::TearDown();
    }
    void start_jobs() {
        jobs_ = std::make_unique<job_service>(*hub_, *engine_, nullptr);
        jobs_->start();
    }
    result<json::object> create_job(std::string id, std::string_view body) {
        return wait_for<json::object>([&](auto h) { jobs_->create(id, json::parse(body), h); });
    }
    result<json::object> cancel(std::string id) {
        return wait_for<json::object>([&](auto h) { jobs_->cancel(id, h); });
    }
    // The job's status is the signal: polls get() until it is final.
    json::object finished(const std::string& id) {
        for (int i = 0; i < 1000; ++i) {
            auto j = jobs_->get(id);
            EXPECT_TRUE(j);
            if (!j) return {};
            std::string s(j->at("status").as_string());
            if (s == "completed" || s == "failed" || s == "cancelled") return *j;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ADD_FAILURE() << "job " << id << " did not finish";
        return {};
    }
    static std::string twin_job(std::string_view cond, std::string_view start = "") {
        std::string b = R"({"type":"scheduleUpdateTwin","queryCondition":")" + std::string(cond) +
                        R"(","updateTwin":{"etag":"*","tags":{"done":true},"properties":{"desired":{"fw":"2"}}})";
        if (!start.empty()) b += R"(,"startTime":")" + std::string(start) + "\"";
        return b + "}";
    }

    std::unique_ptr<query::query_engine> engine_;
    std::unique_ptr<job_service> jobs_;
};

TEST_F(jobs_fixture, a_twin_job_updates_every_matching_twin_and_completes) {
    for (auto id : {"a", "b", "c"}) ASSERT_TRUE(create(id));
    ASSERT_TRUE(patch({"a", {}}, R"({"tags":{"g":1}})"));
    ASSERT_TRUE(patch({"b", {}}, R"({"tags":{"g":1}})"));
    auto created = create_job("j1", twin_job("tags.g = 1"));
    ASSERT_TRUE(created) << created.error().message;
    EXPECT_EQ(created->at("status").as_string(), "queued");
    auto j = finished("j1");
    EXPECT_EQ(j.at("status").as_string(), "completed");
    EXPECT_EQ(json::serialize(j.at("deviceJobStatistics")),
              R"({"deviceCount":2,"failedCount":0,"succeededCount":2,"runningCount":0,"pendingCount":0})");
    EXPECT_TRUE(j.contains("endTime"));
    for (auto id : {"a", "b"}) {
        auto t = hub_->get_twin({id, {}});
        ASSERT_TRUE(t);
        EXPECT_EQ(json::serialize(t->at("tags")), R"({"g":1,"done":true})");
        EXPECT_EQ(t->at("properties").at("desired").at("fw").as_string(), "2");
    }
    EXPECT_FALSE(hub_->get_twin({"c", {}})->at("tags").as_object().contains("done"));
    // Desired changes went through the one notifier (what connected devices receive).
    EXPECT_GE(observer_.desired().size(), 2u);
    auto rows = jobs_->device_job_rows();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].at("status").as_string(), "completed");
    auto q = engine_->run("SELECT deviceId FROM devices.jobs WHERE devices.jobs.jobId = 'j1' AND status = 'completed'", 10, "");
    ASSERT_TRUE(q) << q.error().message;
    EXPECT_EQ(q->items.size(), 2u);
    EXPECT_EQ(q->item_type, "deviceJob");
}

TEST_F(jobs_fixture, duplicate_ids_and_bad_conditions_are_refused) {
    ASSERT_TRUE(create_job("dup", twin_job("deviceId = 'x'")));
    auto again = create_job("dup", twin_job("deviceId = 'x'"));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::device_already_exists);  // the REST head answers 409 JobAlreadyExists
    auto bad = create_job("bad", twin_job("deviceId = = 'x'"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    EXPECT_FALSE(jobs_->get("bad"));
    EXPECT_EQ(jobs_->get("nope").error().code, errc::not_found);
    EXPECT_EQ(finished("dup").at("deviceJobStatistics").at("deviceCount").as_int64(), 0);
}

TEST_F(jobs_fixture, a_scheduled_job_waits_and_can_be_cancelled) {
    ASSERT_TRUE(create("a"));
    ASSERT_TRUE(create_job("later", twin_job("deviceId = 'a'", "2099-01-01T00:00:00Z")));
    EXPECT_EQ(jobs_->get("later")->at("status").as_string(), "scheduled");
    auto c = cancel("later");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->at("status").as_string(), "cancelled");
    EXPECT_FALSE(hub_->get_twin({"a", {}})->at("tags").as_object().contains("done"));
    // Cancelling a finished job changes nothing.
    EXPECT_EQ(cancel("later")->at("status").as_string(), "cancelled");
    EXPECT_EQ(cancel("nope").error().code, errc::not_found);
    EXPECT_EQ(jobs_->list("scheduleUpdateTwin", "cancelled").size(), 1u);
    EXPECT_EQ(jobs_->list("scheduleDeviceMethod", "").size(), 0u);
}

TEST_F(jobs_fixture, a_method_job_on_unreachable_devices_fails_them_and_completes) {
    ASSERT_TRUE(create("a"));
    ASSERT_TRUE(create_job("m", R"({"type":"scheduleDeviceMethod","queryCondition":"deviceId = 'a'",
        "cloudToDeviceMethod":{"methodName":"reboot"}})"));
    auto j = finished("m");
    EXPECT_EQ(j.at("status").as_string(), "completed");
    EXPECT_EQ(j.at("deviceJobStatistics").at("failedCount").as_int64(), 1);
    auto rows = jobs_->device_job_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("error").at("code").as_string(), "DeviceNotOnline");
}

TEST_F(jobs_fixture, jobs_persist_and_a_scheduled_job_runs_after_a_restart) {
    ASSERT_TRUE(create("a"));
    ASSERT_TRUE(create_job("first", twin_job("deviceId = 'a'")));
    finished("first");
    const auto start = format_time(now() + std::chrono::milliseconds(300));
    ASSERT_TRUE(create_job("second", twin_job("deviceId = 'a'", start)));
    jobs_.reset();  // the "restart": a new service over the same hub settings
    start_jobs();
    auto first = jobs_->get("first");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->at("status").as_string(), "completed");
    EXPECT_EQ(first->at("deviceJobStatistics").at("succeededCount").as_int64(), 1);
    auto second = finished("second");
    EXPECT_EQ(second.at("status").as_string(), "completed");
    EXPECT_EQ(second.at("deviceJobStatistics").at("succeededCount").as_int64(), 1);
    EXPECT_EQ(jobs_->device_job_rows().size(), 2u);
}

}  // namespace
}  // namespace twinhub::jobs
