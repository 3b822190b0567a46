#include "query/query_evaluator.hpp"
#include "query/query_parser.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace twinhub::query {
namespace {

boost::json::object twin(std::string_view json) { return boost::json::parse(json).as_object(); }

// The sample twin of Azure's query documentation.
boost::json::object doc_twin(std::string id, std::string region, int freq, std::string status, std::string connectivity) {
    auto o = twin(R"({"deviceId":"","etag":"AAAAAAAAAAc=","status":"enabled","statusUpdateTime":"0001-01-01T00:00:00",
      "connectionState":"Disconnected","lastActivityTime":"2021-05-07T00:50:38.0543092Z","cloudToDeviceMessageCount":0,
      "authenticationType":"sas","x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"version":2,
      "capabilities":{"iotEdge":false},
      "tags":{"location":{"region":"","plant":"Redmond43"}},
      "properties":{"desired":{"telemetryConfig":{"configId":"db00","sendFrequencyInSecs":300},"$metadata":{"$lastUpdated":"2021-05-07T00:50:38Z"},"$version":4},
                    "reported":{"connectivity":{"type":"cellular"},"telemetryConfig":{"configId":"db00","sendFrequencyInSecs":0,"status":""},"$metadata":{},"$version":7}}})");
    o["deviceId"] = id;
    o["tags"].as_object()["location"].as_object()["region"] = region;
    auto& rep = o["properties"].as_object()["reported"].as_object();
    rep["telemetryConfig"].as_object()["sendFrequencyInSecs"] = freq;
    rep["telemetryConfig"].as_object()["status"] = status;
    if (connectivity.empty()) rep.erase("connectivity");
    else rep["connectivity"] = connectivity;
    return o;
}

std::vector<boost::json::object> fleet() {
    return {doc_twin("d1", "US", 300, "Success", "wifi"), doc_twin("d2", "US", 30, "Success", "wired"),
            doc_twin("d3", "EU", 60, "Pending", ""), doc_twin("d4", "EU", 600, "Success", "cellular"),
            doc_twin("d5", "US", 90, "Pending", "wifi"), doc_twin("d6", "AS", 10, "Error", "")};
}

query_plan plan_of(std::string_view sql) {
    auto r = parse(sql);
    EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().message);
    return r ? std::move(*r) : query_plan{};
}

// Runs a query over documents the simple way: filter, then project or aggregate.
boost::json::array run(std::string_view sql, const std::vector<boost::json::object>& docs) {
    auto plan = plan_of(sql);
    boost::json::array out;
    if (plan.aggregated) {
        aggregator agg(plan);
        for (auto& d : docs) {
            json_row row(plan, d);
            if (matches(plan, row)) agg.add(row);
        }
        return agg.finish();
    }
    for (auto& d : docs) {
        json_row row(plan, d);
        if (matches(plan, row)) out.emplace_back(project(plan, row));
    }
    return out;
}

std::vector<std::string> ids(const boost::json::array& a) {
    std::vector<std::string> r;
    for (auto& v : a) r.emplace_back(v.at("deviceId").as_string());
    return r;
}

using sv = std::vector<std::string>;

TEST(query_evaluator, equality_on_tag) {
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE tags.location.region = 'US'", fleet())), (sv{"d1", "d2", "d5"}));
}

TEST(query_evaluator, documentation_and_with_range) {
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE tags.location.region = 'US' AND "
                      "properties.reported.telemetryConfig.sendFrequencyInSecs >= 60",
                      fleet())),
              (sv{"d1", "d5"}));
}

TEST(query_evaluator, in_and_nin_with_array_constants) {
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']", fleet())),
              (sv{"d1", "d2", "d5"}));
    // NIN on an undefined value is undefined, so d3 and d6 (no connectivity) are not returned.
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE properties.reported.connectivity NIN ['wired', 'wifi']", fleet())),
              (sv{"d4"}));
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE properties.reported.connectivity NOT IN ['wired', 'wifi']", fleet())),
              (sv{"d4"}));
}

TEST(query_evaluator, is_defined) {
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE is_defined(properties.reported.connectivity)", fleet())),
              (sv{"d1", "d2", "d4", "d5"}));
    EXPECT_EQ(ids(run("SELECT * FROM devices WHERE NOT IS_DEFINED(properties.reported.connectivity)", fleet())),
              (sv{"d3", "d6"}));
    // null counts as defined.
    auto d = twin(R"({"deviceId":"n","tags":{"a":null}})");
    EXPECT_EQ(run("SELECT * FROM devices WHERE IS_DEFINED(tags.a)", {d}).size(), 1u);
    EXPECT_EQ(run("SELECT * FROM devices WHERE tags.a = null", {d}).size(), 1u);
}

TEST(query_evaluator, documentation_group_by_status) {
    auto r = run("SELECT properties.reported.telemetryConfig.status AS status, COUNT() AS numberOfDevices FROM devices "
                 "GROUP BY properties.reported.telemetryConfig.status",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r),
              R"([{"status":"Success","numberOfDevices":3},{"status":"Pending","numberOfDevices":2},{"status":"Error","numberOfDevices":1}])");
}

TEST(query_evaluator, count_over_whole_collection_and_over_nothing) {
    EXPECT_EQ(boost::json::serialize(run("SELECT COUNT() as totalNumberOfDevices FROM devices", fleet())),
              R"([{"totalNumberOfDevices":6}])");
    EXPECT_EQ(boost::json::serialize(run("SELECT COUNT() AS numberOfDevices FROM devices WHERE tags.x = 1", fleet())),
              R"([{"numberOfDevices":0}])");
    // AVG/SUM/MIN/MAX over no values are undefined and left out.
    EXPECT_EQ(boost::json::serialize(run("SELECT COUNT() AS n, AVG(tags.x) AS a, SUM(tags.x) AS s FROM devices", {})),
              R"([{"n":0}])");
}

TEST(query_evaluator, aggregates_sum_avg_min_max) {
    auto r = run("SELECT SUM(properties.reported.telemetryConfig.sendFrequencyInSecs) AS s, "
                 "AVG(properties.reported.telemetryConfig.sendFrequencyInSecs) AS a, "
                 "MIN(properties.reported.telemetryConfig.sendFrequencyInSecs) AS lo, "
                 "MAX(properties.reported.telemetryConfig.sendFrequencyInSecs) AS hi, "
                 "MIN(deviceId) AS firstId, MAX(tags.location.region) AS lastRegion FROM devices",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r), R"([{"s":1090,"a":1.8166666666666666E2,"lo":10,"hi":600,"firstId":"d1","lastRegion":"US"}])");
}

TEST(query_evaluator, group_by_with_aggregate_arithmetic_and_sum) {
    auto r = run("SELECT tags.location.region AS region, COUNT() AS n, SUM(properties.reported.telemetryConfig.sendFrequencyInSecs) / COUNT() AS mean "
                 "FROM devices GROUP BY tags.location.region",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r),
              R"([{"region":"US","n":3,"mean":140},{"region":"EU","n":2,"mean":330},{"region":"AS","n":1,"mean":10}])");
}

TEST(query_evaluator, group_by_undefined_key_is_its_own_group_without_the_key) {
    auto r = run("SELECT properties.reported.connectivity AS c, COUNT() AS n FROM devices GROUP BY properties.reported.connectivity",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r), R"([{"c":"wifi","n":2},{"c":"wired","n":1},{"n":2},{"c":"cellular","n":1}])");
}

TEST(query_evaluator, projection_keys_by_last_segment_and_document_spelling) {
    auto r = run("SELECT DeviceId, LastActivityTime FROM devices WHERE status = 'enabled' AND connectionState = 'Disconnected' AND deviceId = 'd1'",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r), R"([{"deviceId":"d1","lastActivityTime":"2021-05-07T00:50:38.0543092Z"}])");
    auto p = run("SELECT deviceId, properties.reported.connectivity, tags.location AS loc FROM devices WHERE deviceId IN ['d3','d4']", fleet());
    EXPECT_EQ(boost::json::serialize(p),
              R"([{"deviceId":"d3","loc":{"region":"EU","plant":"Redmond43"}},{"deviceId":"d4","connectivity":"cellular","loc":{"region":"EU","plant":"Redmond43"}}])");
}

TEST(query_evaluator, projection_of_computed_values) {
    auto r = run("SELECT deviceId, properties.reported.telemetryConfig.sendFrequencyInSecs * 2 AS twice, "
                 "properties.reported.telemetryConfig.sendFrequencyInSecs / 7 AS frac, tags.nothing + 1 AS gone FROM devices WHERE deviceId = 'd2'",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r), R"([{"deviceId":"d2","twice":60,"frac":4.285714285714286E0}])");
}

TEST(query_evaluator, different_types_never_compare) {
    auto d = twin(R"({"deviceId":"t","tags":{"n":5,"s":"5","b":true,"o":{"x":1},"a":[1]}})");
    const std::vector<boost::json::object> one{d};
    for (const char* q : {"tags.n = '5'", "tags.s = 5", "tags.n != '5'", "tags.b = 1", "tags.s > 4", "tags.o = 1",
                          "tags.a = 1", "tags.missing != 1", "tags.missing = tags.missing", "tags.o != tags.o",
                          "tags.n / 0 = 1", "tags.n % 0 = 0", "tags.s + 1 = 6", "NOT tags.missing = 1", "tags.n AND true",
                          "5", "'true'", "null", "undefined", "tags.b = undefined"}) {
        EXPECT_TRUE(run(std::string("SELECT * FROM devices WHERE ") + q, one).empty()) << q;
    }
    for (const char* q : {"tags.n = 5", "tags.n = 5.0", "tags.s = '5'", "tags.b = true", "tags.b", "tags.n > 4.5",
                          "tags.s < '6'", "tags.s >= '5'", "tags.n <> 6", "tags.n + 1 = 6", "tags.n * 2 - 1 = 9",
                          "tags.n % 3 = 2", "-tags.n = -5", "tags.n / 2 = 2.5", "true", "NOT false", "tags.n = 0x5",
                          "tags.missing = 1 OR true", "NOT (tags.missing = 1 AND false)", "tags.b > false",
                          "tags.n IN [1, 5]", "tags.s NIN ['x', 5]"}) {
        EXPECT_EQ(run(std::string("SELECT * FROM devices WHERE ") + q, one).size(), 1u) << q;
    }
}

TEST(query_evaluator, identity_fields_and_version_paths) {
    auto r = run("SELECT deviceId FROM devices WHERE properties.reported.$version = 7 AND properties.desired.$version >= 4 "
                 "AND version = 2 AND etag = 'AAAAAAAAAAc=' AND capabilities.iotEdge = false AND "
                 "properties.desired.$metadata.$lastUpdated > '2021' AND x509Thumbprint.primaryThumbprint = null AND tags.location.region = 'AS'",
                 fleet());
    EXPECT_EQ(boost::json::serialize(r), R"([{"deviceId":"d6"}])");
}

TEST(query_evaluator, modules_query_with_device_in_list) {
    std::vector<boost::json::object> mods{
        twin(R"({"deviceId":"device1","moduleId":"m","properties":{"reported":{"status":"scanning"}}})"),
        twin(R"({"deviceId":"device2","moduleId":"m","properties":{"reported":{"status":"idle"}}})"),
        twin(R"({"deviceId":"device3","moduleId":"m","properties":{"reported":{"status":"scanning"}}})")};
    auto r = run("SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning' AND deviceId IN ['device1', 'device2']", mods);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].at("deviceId"), "device1");
    auto m = run("SELECT deviceId, moduleId FROM devices.modules WHERE moduleId = 'm' AND deviceId = 'device3'", mods);
    EXPECT_EQ(boost::json::serialize(m), R"([{"deviceId":"device3","moduleId":"m"}])");
}

TEST(query_evaluator, array_index_and_bracket_member_paths) {
    auto d = twin(R"({"deviceId":"a","tags":{"my key":"v","a.b":1},"properties":{"reported":{"errs":["Power Failure","Sensor Failure"]}}})");
    EXPECT_EQ(run("SELECT * FROM devices WHERE properties.reported.errs[1] = 'Sensor Failure' AND tags['my key'] = 'v' AND tags['a.b'] = 1", {d}).size(), 1u);
    EXPECT_TRUE(run("SELECT * FROM devices WHERE properties.reported.errs[5] = 'x'", {d}).empty());
    EXPECT_TRUE(run("SELECT * FROM devices WHERE tags.a.b = 1", {d}).empty());
}

TEST(query_evaluator, group_by_two_paths) {
    auto r = run("SELECT tags.location.region AS r, properties.reported.telemetryConfig.status AS s, COUNT() AS n FROM devices "
                 "GROUP BY tags.location.region, properties.reported.telemetryConfig.status",
                 fleet());
    EXPECT_EQ(r.size(), 5u);  // US/Success, EU/Pending, EU/Success, US/Pending, AS/Error
    EXPECT_EQ(boost::json::serialize(r[0]), R"({"r":"US","s":"Success","n":2})");
}

TEST(query_evaluator, group_by_numbers_merges_int_and_double) {
    std::vector<boost::json::object> d{twin(R"({"deviceId":"a","tags":{"v":1}})"), twin(R"({"deviceId":"b","tags":{"v":1.0}})"),
                                       twin(R"({"deviceId":"c","tags":{"v":"1"}})")};
    auto r = run("SELECT tags.v AS v, COUNT() AS n FROM devices GROUP BY tags.v", d);
    EXPECT_EQ(boost::json::serialize(r), R"([{"v":1,"n":2},{"v":"1","n":1}])");
}

}  // namespace
}  // namespace twinhub::query
