#include "query/query_parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twinhub::query {
namespace {

query_plan ok(std::string_view sql) {
    auto r = parse(sql);
    EXPECT_TRUE(r.has_value()) << sql << " -> " << (r ? "" : r.error().message);
    return r ? std::move(*r) : query_plan{};
}

std::string fail(std::string_view sql) {
    auto r = parse(sql);
    EXPECT_FALSE(r.has_value()) << sql;
    if (r) return {};
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    return r.error().message;
}

TEST(query_parser, select_star_from_devices) {
    auto p = ok("SELECT * FROM devices");
    EXPECT_TRUE(p.select_all);
    EXPECT_EQ(p.from, collection::devices);
    EXPECT_FALSE(p.where);
    EXPECT_FALSE(p.aggregated);
    EXPECT_STREQ(p.item_type(), "twin");
}

TEST(query_parser, keywords_are_case_insensitive) {
    auto p = ok("select top 5 * from DEVICES.Modules where Tags.x = 1 AND NOT is_defined(tags.y)");
    EXPECT_EQ(p.from, collection::modules);
    ASSERT_TRUE(p.top);
    EXPECT_EQ(*p.top, 5u);
    ASSERT_TRUE(p.where);
    EXPECT_EQ(p.where->op, binary_op::logical_and);
}

TEST(query_parser, devices_jobs_is_deviceJob_items) {
    auto p = ok("SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'myDeviceId'");
    EXPECT_EQ(p.from, collection::jobs);
    EXPECT_STREQ(p.item_type(), "deviceJob");
    ASSERT_EQ(p.paths.size(), 1u);
    EXPECT_EQ(p.paths[0].text, "deviceId");  // the collection prefix is dropped
}

TEST(query_parser, documentation_queries_parse) {
    for (const char* q : {
             "SELECT * FROM devices",
             "SELECT COUNT() as totalNumberOfDevices FROM devices",
             "SELECT * FROM devices WHERE tags.location.region = 'US'",
             "SELECT * FROM devices\n  WHERE tags.location.region = 'US'\n    AND properties.reported.telemetryConfig.sendFrequencyInSecs >= 60",
             "SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']",
             "SELECT * FROM devices WHERE is_defined(properties.reported.connectivity)",
             "SELECT properties.reported.telemetryConfig.status AS status,\n    COUNT() AS numberOfDevices\n  FROM devices\n  GROUP BY properties.reported.telemetryConfig.status",
             "SELECT DeviceId, LastActivityTime FROM devices WHERE status = 'enabled' AND connectionState = 'Disconnected'",
             "SELECT * FROM devices.modules",
             "SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning'",
             "SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning' AND deviceId IN ['device1', 'device2']",
             "SELECT * FROM devices WHERE capabilities.iotEdge = true",
             "SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'myDeviceId' AND devices.jobs.jobType = 'scheduleTwinUpdate' AND devices.jobs.status = 'completed' AND devices.jobs.createdTimeUtc > '2016-09-01'",
             "SELECT * FROM devices WHERE properties.desired.config = properties.reported.config",
         })
        ok(q);
}

TEST(query_parser, projections_are_named_by_alias_or_last_segment) {
    auto p = ok("SELECT deviceId, properties.reported.x, tags.a AS b, COUNT() FROM devices GROUP BY deviceId, properties.reported.x, tags.a");
    ASSERT_EQ(p.projections.size(), 4u);
    EXPECT_EQ(p.projections[0].name, "deviceId");
    EXPECT_EQ(p.projections[1].name, "x");
    EXPECT_EQ(p.projections[2].name, "b");
    EXPECT_TRUE(p.projections[2].named_by_alias);
    EXPECT_EQ(p.projections[3].name, "$1");
    EXPECT_TRUE(p.projections[3].has_aggregate);
    EXPECT_TRUE(p.aggregated);
    EXPECT_STREQ(p.item_type(), "raw");
}

TEST(query_parser, string_literals_with_both_quotes_and_escapes) {
    auto p = ok(R"(SELECT * FROM devices WHERE tags.a = 'it\'s' OR tags.b = "say \"hi\"" OR tags.c = 'back\\slash' OR tags.d = '\u00e9\u20AC')");
    std::vector<std::string> seen;
    std::function<void(const expr&)> walk = [&](const expr& e) {
        if (e.kind == expr_kind::constant && e.constant.is_string()) seen.emplace_back(e.constant.get_string());
        for (auto& c : e.children) walk(c);
    };
    walk(*p.where);
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[0], "it's");
    EXPECT_EQ(seen[1], "say \"hi\"");
    EXPECT_EQ(seen[2], "back\\slash");
    EXPECT_EQ(seen[3], "\xC3\xA9\xE2\x82\xAC");
}

TEST(query_parser, numbers_decimal_hex_exponent_negative) {
    auto p = ok("SELECT * FROM devices WHERE tags.a IN [1, -2.5, 0x1F, 1e3, true, false, null, 'x']");
    const auto& a = p.where->constant.get_array();
    ASSERT_EQ(a.size(), 8u);
    EXPECT_EQ(a[0].as_int64(), 1);
    EXPECT_DOUBLE_EQ(a[1].as_double(), -2.5);
    EXPECT_EQ(a[2].as_int64(), 31);
    EXPECT_EQ(a[3].as_int64(), 1000);
    EXPECT_TRUE(a[4].as_bool());
    EXPECT_FALSE(a[5].as_bool());
    EXPECT_TRUE(a[6].is_null());
    EXPECT_EQ(a[7].as_string(), "x");
}

TEST(query_parser, operator_precedence) {
    // a OR b AND c parses as a OR (b AND c); 1 + 2 * 3 as 1 + (2 * 3).
    auto p = ok("SELECT * FROM devices WHERE tags.a = 1 OR tags.b = 2 AND tags.c = 3");
    EXPECT_EQ(p.where->op, binary_op::logical_or);
    EXPECT_EQ(p.where->children[1].op, binary_op::logical_and);
    auto q = ok("SELECT * FROM devices WHERE tags.a = 1 + 2 * 3");
    const expr& rhs = q.where->children[1];
    EXPECT_EQ(rhs.op, binary_op::add);
    EXPECT_EQ(rhs.children[1].op, binary_op::mul);
}

TEST(query_parser, all_comparison_and_arithmetic_operators) {
    ok("SELECT * FROM devices WHERE tags.a = 1 AND tags.a != 2 AND tags.a <> 3 AND tags.a < 4 AND tags.a > 0 "
       "AND tags.a <= 4 AND tags.a >= 0 AND (tags.a + 1) * 2 - 3 / 1 % 2 > -1 AND tags.b NIN ['x'] AND "
       "tags.b NOT IN ['y']");
}

TEST(query_parser, bracket_paths_and_dollar_members) {
    auto p = ok("SELECT * FROM devices WHERE tags['my key'] = 1 AND properties.reported.$version > 2 AND "
                "properties.reported.list[0] = 'a' AND tags['a.b'] = 2 AND tags.a.b = 3");
    ASSERT_EQ(p.paths.size(), 5u);
    EXPECT_EQ(p.paths[0].text, "tags['my key']");
    EXPECT_EQ(p.paths[1].text, "properties.reported.$version");
    EXPECT_EQ(p.paths[2].text, "properties.reported.list[0]");
    EXPECT_NE(p.paths[3].text, p.paths[4].text);
}

TEST(query_parser, keywords_as_nested_member_names) {
    auto p = ok("SELECT * FROM devices WHERE properties.reported.from = 1 AND tags.select.count = 2");
    EXPECT_EQ(p.paths[0].text, "properties.reported.from");
}

TEST(query_parser, syntax_error_names_position_and_expectation) {
    EXPECT_EQ(fail("SELECT * WHER devices"), "Syntax error at position 9 (line 1, column 10): expected FROM, found 'WHER'");
    EXPECT_EQ(fail("SELECT * FROM devices WHER x = 1"),
              "Syntax error at position 22 (line 1, column 23): expected WHERE, GROUP BY or end of query, found 'WHER'");
    EXPECT_EQ(fail("SELECT *\nFROM devices\nWHERE tags.x ="),
              "Syntax error at position 36 (line 3, column 15): expected an expression, found end of query");
    EXPECT_NE(fail("").find("expected SELECT, found end of query"), std::string::npos);
    EXPECT_NE(fail("SELECT FROM devices").find("expected a projection or '*', found 'FROM'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM things").find("expected 'devices' or 'devices.modules'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices.other").find("expected 'modules' or 'jobs'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE (tags.a = 1").find("expected ')'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a IN 'x'").find("expected an array constant"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a IN [tags.b]").find("expected a constant in the array"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = 'open").find("unterminated string literal"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = 'bad \\q'").find("invalid escape"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = '\\u12'").find("4 hexadecimal digits"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = 0x").find("hexadecimal digits"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = 12abc").find("invalid number"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a ! 1").find("unexpected character '!'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = 1 ;").find("unexpected character ';'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags. = 1").find("expected a property name after '.'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices GROUP tags.a").find("expected BY"), std::string::npos);
    EXPECT_NE(fail("SELECT TOP x * FROM devices").find("expected a number after TOP"), std::string::npos);
    EXPECT_NE(fail("SELECT deviceId AS FROM devices").find("expected an alias after AS"), std::string::npos);
}

TEST(query_parser, type_errors) {
    EXPECT_NE(fail("SELECT * FROM devices WHERE IS_DEFINED(1)").find("Type error at position 39"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE IS_DEFINED(1)").find("IS_DEFINED expects a property path"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE LOWER(tags.a) = 'x'").find("unknown function 'LOWER'"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE COUNT() > 1").find("not allowed in WHERE"), std::string::npos);
    EXPECT_NE(fail("SELECT SUM(COUNT()) FROM devices").find("cannot be nested"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a + 'x' = 1").find("operator '+' needs numbers, found string"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE tags.a = ['x']").find("compares primitive values only"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices WHERE -'x' = 1").find("unary '-' needs a number"), std::string::npos);
    EXPECT_NE(fail("SELECT TOP 1.5 * FROM devices").find("TOP needs a non-negative integer"), std::string::npos);
    EXPECT_NE(fail("SELECT * FROM devices GROUP BY tags.a").find("GROUP BY needs a projection list"), std::string::npos);
    EXPECT_NE(fail("SELECT deviceId, COUNT() FROM devices").find("unless the query groups by it"), std::string::npos);
    EXPECT_NE(fail("SELECT deviceId, COUNT() FROM devices GROUP BY tags.a").find("must appear in GROUP BY"), std::string::npos);
    EXPECT_NE(fail("SELECT tags.x, properties.reported.x FROM devices").find("two projections are named 'x'"), std::string::npos);
    EXPECT_NE(fail("SELECT AVG('x') FROM devices").find("AVG() needs numbers"), std::string::npos);
    EXPECT_NE(fail("SELECT AVG() FROM devices").find("expected an argument for AVG()"), std::string::npos);
    EXPECT_NE(fail("SELECT COUNT(tags.a) FROM devices").find("COUNT() takes no argument"), std::string::npos);
}

TEST(query_parser, limits_length_and_depth) {
    std::string longq = "SELECT * FROM devices WHERE tags.a = '" + std::string(9000, 'x') + "'";
    EXPECT_NE(fail(longq).find("limit is 8192"), std::string::npos);
    std::string deep = "SELECT * FROM devices WHERE " + std::string(300, '(') + "tags.a = 1" + std::string(300, ')');
    EXPECT_NE(fail(deep).find("nested too deeply"), std::string::npos);
    std::string nots = "SELECT * FROM devices WHERE ";
    for (int i = 0; i < 300; ++i) nots += "NOT ";
    nots += "tags.a = 1";
    EXPECT_NE(fail(nots).find("nested too deeply"), std::string::npos);
    std::string ors = "SELECT * FROM devices WHERE tags.a = 0";
    for (int i = 1; i < 200; ++i) ors += " OR tags.a = " + std::to_string(i);
    ok(ors);  // 200 alternatives are fine
}

TEST(query_parser, count_star_and_top_zero) {
    auto p = ok("SELECT TOP 0 COUNT(*) AS n FROM devices");
    EXPECT_EQ(*p.top, 0u);
    EXPECT_EQ(p.projections[0].name, "n");
}

}  // namespace
}  // namespace twinhub::query
