// query_engine: paging and continuations over the column index, TOP across pages, aggregates,
// errors; and, attached to a real hub_service over the memory store, read-your-writes.
#include "query/query_engine.hpp"

#include "service_test_support.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace twinhub::query {
namespace {

boost::json::object device(int i) {
    boost::json::object o;
    o["deviceId"] = "dev" + std::to_string(i);
    o["status"] = "enabled";
    o["tags"] = boost::json::object{{"region", i % 3 == 0 ? "US" : (i % 3 == 1 ? "EU" : "AS")}, {"n", i}};
    boost::json::object reported{{"temp", static_cast<double>(i) / 2}, {"$version", 1}};
    if (i % 2 == 0) reported["fw"] = "1.0";
    o["properties"] = boost::json::object{{"desired", boost::json::object{{"$version", 1}}}, {"reported", reported}};
    return o;
}

struct collected {
    std::vector<boost::json::value> items;
    std::size_t pages = 0;
    std::string item_type;
};

collected all_pages(query_engine& e, std::string_view sql, std::size_t page_size) {
    collected c;
    std::string token;
    do {
        auto p = e.run(sql, page_size, token);
        EXPECT_TRUE(p) << (p ? "" : p.error().message);
        if (!p) break;
        ++c.pages;
        c.item_type = p->item_type;
        EXPECT_LE(p->items.size(), page_size);
        for (auto& v : p->items) c.items.push_back(v);
        if (p->continuation) {
            EXPECT_FALSE(p->continuation->empty());
            EXPECT_FALSE(p->items.empty()) << "a page with a continuation must not be empty";
        }
        token = p->continuation.value_or("");
        if (c.pages > 10000) break;
    } while (!token.empty());
    return c;
}

class engine_fixture : public ::testing::Test {
protected:
    void SetUp() override {
        for (int i = 0; i < 10000; ++i) engine_.upsert_twin(device(i));
    }
    query_engine engine_;
};

TEST_F(engine_fixture, select_star_pages_cover_every_twin_once) {
    auto c = all_pages(engine_, "SELECT * FROM devices", 1000);
    EXPECT_EQ(c.items.size(), 10000u);
    EXPECT_EQ(c.pages, 10u);  // exactly full pages: the last one carries no continuation
    EXPECT_EQ(c.item_type, "twin");
    std::set<std::string> ids;
    for (auto& v : c.items) ids.insert(std::string(v.at("deviceId").as_string()));
    EXPECT_EQ(ids.size(), 10000u);
}

TEST_F(engine_fixture, filtered_pages_with_indexed_equality_and_range) {
    auto eq = all_pages(engine_, "SELECT * FROM devices WHERE tags.region = 'US'", 333);
    EXPECT_EQ(eq.items.size(), 3334u);
    for (auto& v : eq.items) EXPECT_EQ(v.at("tags").at("region"), "US");
    auto range = all_pages(engine_, "SELECT deviceId FROM devices WHERE properties.reported.temp >= 4000 AND tags.region != 'EU'", 100);
    // temp = i/2 >= 4000 -> i >= 8000: 2000 twins, minus the EU third.
    std::size_t expected = 0;
    for (int i = 8000; i < 10000; ++i) expected += (i % 3 != 1);
    EXPECT_EQ(range.items.size(), expected);
    EXPECT_EQ(range.item_type, "raw");
    auto defined = all_pages(engine_, "SELECT * FROM devices WHERE IS_DEFINED(properties.reported.fw)", 1000);
    EXPECT_EQ(defined.items.size(), 5000u);
    auto in = all_pages(engine_, "SELECT * FROM devices WHERE tags.n IN [1, 5, 9999, 20000]", 2);
    EXPECT_EQ(in.items.size(), 3u);
    EXPECT_EQ(in.pages, 2u);
}

TEST_F(engine_fixture, top_limits_across_pages) {
    auto c = all_pages(engine_, "SELECT TOP 250 * FROM devices WHERE tags.region = 'EU'", 100);
    EXPECT_EQ(c.items.size(), 250u);
    EXPECT_EQ(c.pages, 3u);
    auto exact = all_pages(engine_, "SELECT TOP 200 * FROM devices", 100);
    EXPECT_EQ(exact.items.size(), 200u);
    EXPECT_EQ(exact.pages, 2u);
    EXPECT_TRUE(all_pages(engine_, "SELECT TOP 0 * FROM devices", 100).items.empty());
}

TEST_F(engine_fixture, group_by_over_the_fleet_and_paged_aggregates) {
    auto c = all_pages(engine_, "SELECT tags.region AS region, COUNT() AS n FROM devices GROUP BY tags.region", 2);
    ASSERT_EQ(c.items.size(), 3u);
    EXPECT_EQ(c.pages, 2u);
    std::int64_t total = 0;
    for (auto& v : c.items) total += v.at("n").as_int64();
    EXPECT_EQ(total, 10000);
    auto count = all_pages(engine_, "SELECT COUNT() AS numberOfDevices FROM devices", 100);
    ASSERT_EQ(count.items.size(), 1u);
    EXPECT_EQ(boost::json::serialize(count.items[0]), R"({"numberOfDevices":10000})");
}

TEST_F(engine_fixture, updates_and_deletes_are_seen_by_the_next_page) {
    auto first = engine_.run("SELECT * FROM devices WHERE tags.region = 'US'", 10, "");
    ASSERT_TRUE(first && first->continuation);
    // dev3 (already returned) and dev9999 (ahead) change region; dev30 (ahead) is deleted.
    auto d = device(9999);
    d["tags"].as_object()["region"] = "EU";
    engine_.upsert_twin(d);
    engine_.erase_twin({"dev30", {}});
    std::set<std::string> ids;
    for (auto& v : first->items) ids.insert(std::string(v.at("deviceId").as_string()));
    std::optional<std::string> token = first->continuation;
    while (token) {
        auto rest = engine_.run("SELECT * FROM devices WHERE tags.region = 'US'", 1000, *token);
        ASSERT_TRUE(rest);
        for (auto& v : rest->items) EXPECT_TRUE(ids.insert(std::string(v.at("deviceId").as_string())).second) << "repeated";
        token = rest->continuation;
    }
    EXPECT_EQ(ids.size(), 3334u - 2u);
    EXPECT_FALSE(ids.count("dev9999"));
    EXPECT_FALSE(ids.count("dev30"));
}

TEST_F(engine_fixture, errors_are_invalid_argument) {
    auto bad = engine_.run("SELECT * FROM devices WHER x", 10, "");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    EXPECT_NE(bad.error().message.find("Syntax error at position 22"), std::string::npos);
    auto token = engine_.run("SELECT * FROM devices", 10, "");
    ASSERT_TRUE(token && token->continuation);
    auto other = engine_.run("SELECT * FROM devices.modules", 10, *token->continuation);
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code, errc::invalid_argument);
    EXPECT_FALSE(engine_.run("SELECT * FROM devices", 10, "not-a-token"));
}

TEST_F(engine_fixture, page_size_default_and_cap) {
    auto def = engine_.run("SELECT * FROM devices", 0, "");
    ASSERT_TRUE(def);
    EXPECT_EQ(def->items.size(), default_page_items);
    auto capped = engine_.run("SELECT * FROM devices", 50000, "");
    ASSERT_TRUE(capped);
    EXPECT_EQ(capped->items.size(), max_page_items);
}

TEST(query_engine, modules_are_their_own_collection_and_jobs_are_empty) {
    query_engine e;
    e.upsert_twin(device(1));
    auto m = device(1);
    m["moduleId"] = "m1";
    e.upsert_twin(m);
    auto mods = e.run("SELECT * FROM devices.modules", 10, "");
    ASSERT_TRUE(mods);
    ASSERT_EQ(mods->items.size(), 1u);
    EXPECT_EQ(mods->items[0].at("moduleId"), "m1");
    auto jobs = e.run("SELECT * FROM devices.jobs", 10, "");
    ASSERT_TRUE(jobs);
    EXPECT_TRUE(jobs->items.empty());
    EXPECT_EQ(jobs->item_type, "deviceJob");
}

// ---- attached to a real hub ----

using attached = service::testing::hub_fixture;

TEST_F(attached, acknowledged_writes_are_in_the_next_query) {
    ASSERT_TRUE(create("a"));
    query_engine engine(hub_->twins());  // loads "a"
    ASSERT_TRUE(create("b"));
    ASSERT_TRUE(create_module("b", "m1"));
    ASSERT_TRUE(patch({"a", {}}, R"({"tags":{"region":"US"}})"));
    ASSERT_TRUE(report({"b", "m1"}, R"({"fw":"2.0"})"));

    auto us = engine.run("SELECT deviceId FROM devices WHERE tags.region = 'US'", 10, "");
    ASSERT_TRUE(us);
    EXPECT_EQ(boost::json::serialize(us->items), R"([{"deviceId":"a"}])");
    auto count = engine.run("SELECT COUNT() AS n FROM devices", 10, "");
    ASSERT_TRUE(count);
    EXPECT_EQ(boost::json::serialize(count->items), R"([{"n":2}])");
    auto mods = engine.run("SELECT deviceId, moduleId FROM devices.modules WHERE properties.reported.fw = '2.0'", 10, "");
    ASSERT_TRUE(mods);
    EXPECT_EQ(boost::json::serialize(mods->items), R"([{"deviceId":"b","moduleId":"m1"}])");

    // Presence is queryable and fresh.
    hub_->set_connection_state({"b", {}}, true);
    auto connected = engine.run("SELECT deviceId FROM devices WHERE connectionState = 'Connected'", 10, "");
    ASSERT_TRUE(connected);
    EXPECT_EQ(boost::json::serialize(connected->items), R"([{"deviceId":"b"}])");

    // Deleting a device removes it and its module twins.
    ASSERT_TRUE(remove("b"));
    auto after = engine.run("SELECT COUNT() AS n FROM devices.modules", 10, "");
    ASSERT_TRUE(after);
    EXPECT_EQ(boost::json::serialize(after->items), R"([{"n":0}])");
    auto devs = engine.run("SELECT deviceId FROM devices", 10, "");
    ASSERT_TRUE(devs);
    EXPECT_EQ(boost::json::serialize(devs->items), R"([{"deviceId":"a"}])");
}

TEST_F(attached, every_write_in_a_stream_is_visible_when_acknowledged) {
    ASSERT_TRUE(create("d"));
    query_engine engine(hub_->twins());
    for (int i = 1; i <= 50; ++i) {
        ASSERT_TRUE(patch({"d", {}}, R"({"tags":{"n":)" + std::to_string(i) + "}}"));
        auto r = engine.run("SELECT tags.n AS n FROM devices WHERE deviceId = 'd'", 10, "");
        ASSERT_TRUE(r);
        ASSERT_EQ(r->items.size(), 1u);
        EXPECT_EQ(r->items[0].at("n").as_int64(), i);
    }
}

}  // namespace
}  // namespace twinhub::query

// ---- the request layer of POST /devices/query ----
#include "query/query_request.hpp"

namespace twinhub::query {
namespace {

TEST_F(engine_fixture, request_body_headers_and_continuation) {
    auto p = run_query_request(engine_, R"({"query":"SELECT * FROM devices"})", std::string_view("3"), std::nullopt);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->items.size(), 3u);
    EXPECT_EQ(p->item_type, "twin");
    ASSERT_TRUE(p->continuation);
    auto p2 = run_query_request(engine_, R"({"query":"SELECT * FROM devices"})", std::string_view(" 3 "),
                                std::string_view(*p->continuation));
    ASSERT_TRUE(p2);
    EXPECT_NE(p2->items[0].at("deviceId"), p->items[0].at("deviceId"));
    auto def = run_query_request(engine_, R"({"query":"SELECT * FROM devices"})", std::nullopt, std::nullopt);
    ASSERT_TRUE(def);
    EXPECT_EQ(def->items.size(), default_page_items);
    auto huge = run_query_request(engine_, R"({"query":"SELECT * FROM devices"})", std::string_view("99999999999999999999999"), std::nullopt);
    ASSERT_TRUE(huge);
    EXPECT_EQ(huge->items.size(), max_page_items);
}

TEST_F(engine_fixture, request_errors_are_invalid_argument) {
    for (auto body : {"", "[]", "{}", R"({"query":5})", "{not json"}) {
        auto r = run_query_request(engine_, body, std::nullopt, std::nullopt);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().code, errc::invalid_argument);
    }
    for (auto n : {"0", "-1", "abc", "", "10x"}) {
        auto r = run_query_request(engine_, R"({"query":"SELECT * FROM devices"})", std::string_view(n), std::nullopt);
        ASSERT_FALSE(r) << n;
        EXPECT_NE(r.error().message.find("x-ms-max-item-count"), std::string::npos);
    }
    auto syntax = run_query_request(engine_, R"({"query":"SELECT * FROM devices WHER x"})", std::nullopt, std::nullopt);
    ASSERT_FALSE(syntax);
    EXPECT_NE(syntax.error().message.find("Syntax error at position 22"), std::string::npos);
}

}  // namespace
}  // namespace twinhub::query
