// job_state: the JobRequest body as IoT Hub accepts it, the state helpers, the statistics and the
// stored forms.
#include "jobs/job_state.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace twinhub::jobs {
namespace {

namespace json = boost::json;

result<job_request> parse(std::string_view body, std::string_view id = "j1") {
    return parse_job_request(id, json::parse(body), now());
}

TEST(job_request, twin_update_keeps_tags_and_desired_and_drops_an_empty_reported) {
    auto r = parse(R"({"jobId":"j1","type":"scheduleUpdateTwin","queryCondition":"deviceId = 'a'",
        "updateTwin":{"etag":"*","tags":{"a":1},"properties":{"desired":{"x":2},"reported":{}}},
        "startTime":"2030-01-02T03:04:05.678Z","maxExecutionTimeInSeconds":120})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->type, job_type::update_twin);
    EXPECT_EQ(json::serialize(r->twin_patch), R"({"tags":{"a":1},"properties":{"desired":{"x":2}}})");
    EXPECT_EQ(r->max_execution_s, 120);
    EXPECT_EQ(format_time(r->start_time), "2030-01-02T03:04:05.6780000Z");
}

TEST(job_request, device_method_defaults) {
    auto r = parse(R"({"type":"scheduleDeviceMethod","queryCondition":"tags.x = 1",
        "cloudToDeviceMethod":{"methodName":"reboot","payload":{"a":[1]}}})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->method_name, "reboot");
    EXPECT_EQ(r->payload, R"({"a":[1]})");
    EXPECT_EQ(r->response_timeout_s, 30);
    EXPECT_EQ(r->connect_timeout_s, 0);
    EXPECT_EQ(r->max_execution_s, 3600);
}

TEST(job_request, bad_bodies_are_invalid_argument_naming_the_field) {
    struct c { const char* body; const char* field; };
    const c cases[] = {
        {R"([])", "JSON object"},
        {R"({"type":"import","queryCondition":"a = 1"})", "import"},
        {R"({"queryCondition":"a = 1"})", "type"},
        {R"({"type":"scheduleUpdateTwin","queryCondition":"a = 1","updateTwin":{"tags":{}}})", "etag"},
        {R"({"type":"scheduleUpdateTwin","queryCondition":"a = 1","updateTwin":{"etag":"*","properties":{"reported":{"a":1}}}})", "reported"},
        {R"({"type":"scheduleUpdateTwin","queryCondition":" ","updateTwin":{"etag":"*"}})", "queryCondition"},
        {R"({"type":"scheduleUpdateTwin","jobId":"other","queryCondition":"a = 1","updateTwin":{"etag":"*"}})", "jobId"},
        {R"({"type":"scheduleUpdateTwin","queryCondition":"a = 1","updateTwin":{"etag":"*"},"startTime":"soon"})", "startTime"},
        {R"({"type":"scheduleUpdateTwin","queryCondition":"a = 1","updateTwin":{"etag":"*"},"maxExecutionTimeInSeconds":0})", "maxExecutionTimeInSeconds"},
        {R"({"type":"scheduleDeviceMethod","queryCondition":"a = 1","cloudToDeviceMethod":{}})", "methodName"},
        {R"({"type":"scheduleDeviceMethod","queryCondition":"a = 1","cloudToDeviceMethod":{"methodName":"m","responseTimeoutInSeconds":301}})", "responseTimeoutInSeconds"},
    };
    for (const auto& x : cases) {
        auto r = parse(x.body);
        ASSERT_FALSE(r) << x.body;
        EXPECT_EQ(r.error().code, errc::invalid_argument) << x.body;
        EXPECT_NE(r.error().message.find(x.field), std::string::npos) << r.error().message;
    }
    EXPECT_FALSE(parse(R"({"type":"scheduleUpdateTwin","queryCondition":"a = 1","updateTwin":{"etag":"*"}})", "bad/id"));
}

TEST(job_state, waiting_terminal_and_statistics) {
    const time_point t = now();
    EXPECT_EQ(waiting_status(t + std::chrono::seconds(1), t), job_status::scheduled);
    EXPECT_EQ(waiting_status(t, t), job_status::queued);
    for (auto s : {job_status::completed, job_status::failed, job_status::cancelled}) EXPECT_TRUE(is_terminal(s));
    for (auto s : {job_status::queued, job_status::scheduled, job_status::running}) EXPECT_FALSE(is_terminal(s));
    EXPECT_EQ(parse_job_status("running"), job_status::running);
    EXPECT_FALSE(parse_job_status("enqueued"));

    std::vector<device_outcome> d(6);
    d[0].status = device_status::completed;
    d[1].status = device_status::completed;
    d[2].status = device_status::failed;
    d[3].status = device_status::running;
    d[4].status = device_status::cancelled;
    auto s = count(d);
    EXPECT_EQ(s.device_count, 6);
    EXPECT_EQ(s.succeeded, 2);
    EXPECT_EQ(s.failed, 2);
    EXPECT_EQ(s.running, 1);
    EXPECT_EQ(s.pending, 1);
}

TEST(job_state, storage_round_trip_and_wire_form) {
    auto r = parse(R"({"type":"scheduleDeviceMethod","queryCondition":"tags.x = 1",
        "cloudToDeviceMethod":{"methodName":"reboot","payload":null,"responseTimeoutInSeconds":10}})");
    ASSERT_TRUE(r);
    job_record j;
    j.req = *r;
    j.status = job_status::running;
    j.created_time = now();
    j.run_time = j.created_time;
    j.resolved = true;
    j.devices.resize(2);
    j.devices[0].device_id = "a";
    j.devices[0].status = device_status::completed;
    j.devices[0].method_status = 200;
    j.devices[0].payload = R"({"ok":true})";
    j.devices[1].device_id = "b";
    j.devices[1].status = device_status::failed;
    j.devices[1].error_code = "DeviceNotOnline";

    std::size_t chunks = 0;
    auto back = from_storage(json::parse(json::serialize(to_storage(j, 1))), chunks);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(chunks, 1u);
    EXPECT_EQ(back->status, job_status::running);
    EXPECT_EQ(back->req.method_name, "reboot");
    EXPECT_EQ(back->req.response_timeout_s, 10);
    EXPECT_TRUE(back->resolved);
    std::vector<device_outcome> devs;
    ASSERT_TRUE(chunk_from_storage(json::parse(json::serialize(chunk_to_storage(j.devices, 0, 2))), devs));
    ASSERT_EQ(devs.size(), 2u);
    EXPECT_EQ(devs[1].error_code, "DeviceNotOnline");
    EXPECT_FALSE(chunk_from_storage(json::parse(R"([["a",9,0,0,0,"","",""]])"), devs));
    std::size_t n = 0;
    EXPECT_FALSE(from_storage(json::parse(R"({"jobId":"x"})"), n));

    auto wire = to_json(j);
    EXPECT_EQ(wire.at("type").as_string(), "scheduleDeviceMethod");
    EXPECT_EQ(wire.at("status").as_string(), "running");
    EXPECT_EQ(json::serialize(wire.at("deviceJobStatistics")),
              R"({"deviceCount":2,"failedCount":1,"succeededCount":1,"runningCount":0,"pendingCount":0})");
    auto row = device_row(j, j.devices[0]);
    EXPECT_EQ(json::serialize(row.at("outcome")), R"({"deviceMethodResponse":{"status":200,"payload":{"ok":true}}})");
    EXPECT_EQ(device_row(j, j.devices[1]).at("error").at("code").as_string(), "DeviceNotOnline");
}

}  // namespace
}  // namespace twinhub::jobs
