#include "telemetry/routing_condition.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <string>

namespace twinhub::telemetry {
namespace {

// The message of Azure's routing query page: JSON body, app and system properties, and a twin.
struct routing_condition : ::testing::Test {
    boost::json::value twin = boost::json::parse(R"({
        "tags": {"deploymentLocation": {"building": "43", "floor": 1}, "env": "prod"},
        "properties": {
            "desired": {"telemetryConfig": {"sendFrequency": "5m"}, "$version": 1},
            "reported": {"telemetryConfig": {"sendFrequency": "5m", "status": "success"}, "batteryLevel": 55,
                         "$version": 4}}})");
    routing_message m;

    routing_condition() {
        m.body = R"({"Weather":{"Temperature":50,"Time":"2017-03-09T00:00:00.000Z","PrevTemperatures":[20,30,40],
                     "IsEnabled":true,"Location":{"Street":"One Microsoft Way","City":"Redmond","State":"WA"},
                     "HistoricalData":[{"Month":"Feb","Temperature":40},{"Month":"Jan","Temperature":30}],
                     "Nothing":null,"Label":"Hot Day"}})";
        m.content_type = "application/json";
        m.content_encoding = "utf-8";
        m.app_properties = {{"processingPath", "hot"},     {"level", "critical"}, {"severity", "3"},
                            {"processing-path", "dashed"}, {"a.b", "dotted"},     {"$custom", "app-dollar"}};
        m.system = {{"$connectionDeviceId", "d1"},
                    {"$connectionModuleId", "m1"},
                    {"$messageId", "msg-1"},
                    {"$correlationId", "corr-7"},
                    {"$userId", "u"},
                    {"$enqueuedTime", "2026-12-07T12:00:00Z"},
                    {"$dt-dataschema", "dtmi:com:example:Thermostat;1"},
                    {"$iothub-connection-auth-method", "sas"}};
        m.twin = &twin;
    }

    bool eval(std::string_view text) {
        auto c = condition::compile(text);
        EXPECT_TRUE(c.has_value()) << text << " -> " << (c ? "" : c.error().message);
        return c && c->matches(m);
    }

    std::string fail(std::string_view text) {
        auto c = condition::compile(text);
        EXPECT_FALSE(c.has_value()) << text;
        if (c) return {};
        EXPECT_EQ(c.error().code, errc::invalid_argument);
        return c.error().message;
    }
};

TEST_F(routing_condition, literal_true_false_and_blank) {
    EXPECT_TRUE(eval("true"));
    EXPECT_TRUE(eval("TRUE"));
    EXPECT_FALSE(eval("false"));
    EXPECT_TRUE(eval(""));
    EXPECT_TRUE(eval("   "));
    EXPECT_FALSE(eval("null"));
    EXPECT_FALSE(eval("undefined"));
    EXPECT_FALSE(eval("1"));  // any constant but true is false
    EXPECT_FALSE(eval("'true'"));
}

TEST_F(routing_condition, app_property_by_bare_name) {
    EXPECT_TRUE(eval("processingPath = 'hot'"));
    EXPECT_FALSE(eval("processingPath = 'cold'"));
    EXPECT_TRUE(eval("level = 'critical'"));
    EXPECT_TRUE(eval("level != 'info'"));
    EXPECT_TRUE(eval("level <> 'info'"));
    EXPECT_TRUE(eval("processing-path = 'dashed'"));  // '-' between letters is part of a name
    EXPECT_TRUE(eval("a.b = 'dotted'"));
    EXPECT_TRUE(eval("PROCESSINGPATH = 'hot'"));   // names are not case-sensitive on IoT Hub
    EXPECT_FALSE(eval("processingPath = 'HOT'"));  // values are
    EXPECT_FALSE(eval("missing = 'x'"));
    EXPECT_FALSE(eval("missing != 'x'"));  // undefined, not true
}

TEST_F(routing_condition, app_properties_are_strings) {
    // severity arrives as the string "3": comparing it with a number is undefined (false).
    EXPECT_FALSE(eval("severity = 3"));
    EXPECT_FALSE(eval("severity > 2"));
    EXPECT_TRUE(eval("severity = '3'"));
    EXPECT_TRUE(eval("AS_NUMBER(severity) > 2"));
    EXPECT_TRUE(eval("as_number(severity) + 1 = 4"));
    EXPECT_TRUE(eval("IS_STRING(severity)"));
}

TEST_F(routing_condition, system_properties_with_dollar) {
    EXPECT_TRUE(eval("$contentType = 'application/json'"));
    EXPECT_TRUE(eval("$contentEncoding = 'utf-8'"));
    EXPECT_TRUE(eval("$connectionDeviceId = 'd1'"));
    EXPECT_TRUE(eval("$connectionModuleId = 'm1'"));
    EXPECT_TRUE(eval("$messageId = 'msg-1'"));
    EXPECT_TRUE(eval("$correlationId = 'corr-7'"));
    EXPECT_TRUE(eval("$userId = 'u'"));
    EXPECT_TRUE(eval("$dt-dataschema = 'dtmi:com:example:Thermostat;1'"));
    EXPECT_TRUE(eval("$iothub-connection-auth-method = 'sas'"));
    EXPECT_TRUE(eval("$enqueuedTime = '2026-12-07T12:00:00Z'"));
    EXPECT_TRUE(eval("$iothub-enqueuedtime = '2026-12-07T12:00:00Z'"));  // alias
    EXPECT_TRUE(eval("$iothub-connection-device-id = 'd1'"));
    EXPECT_TRUE(eval("$CONNECTIONDEVICEID = 'd1'"));
    EXPECT_FALSE(eval("$connectionDeviceId = 'd2'"));
    EXPECT_FALSE(eval("IS_DEFINED($to)"));
    // Not a system property: looked up among the app properties, as IoT Hub does.
    EXPECT_TRUE(eval("$custom = 'app-dollar'"));
    m.content_type.clear();
    EXPECT_FALSE(eval("IS_DEFINED($contentType)"));
}

TEST_F(routing_condition, body_paths) {
    EXPECT_TRUE(eval("$body.Weather.HistoricalData[0].Month = 'Feb'"));
    EXPECT_TRUE(eval("$body.Weather.HistoricalData[1].Temperature = 30"));
    EXPECT_TRUE(eval("$body.Weather.Temperature = 50 AND $body.Weather.IsEnabled"));
    EXPECT_TRUE(eval("length($body.Weather.Location.State) = 2"));
    EXPECT_TRUE(eval("$body.Weather.Temperature = 50 AND processingPath = 'hot'"));
    EXPECT_TRUE(eval("$body.Weather.Temperature > 49.5"));
    EXPECT_TRUE(eval("$body.Weather.PrevTemperatures[2] = 40"));
    EXPECT_FALSE(eval("$body.Weather.PrevTemperatures[3] = 40"));  // past the end: undefined
    EXPECT_TRUE(eval("$body.weather.temperature = 50"));           // members match case-insensitively
    EXPECT_FALSE(eval("$body.Weather.Missing.Deeper = 1"));
    EXPECT_FALSE(eval("$body.Weather.Temperature.x = 1"));  // member of a number
    EXPECT_FALSE(eval("$body.Weather.Location[0] = 1"));    // index of an object
    EXPECT_TRUE(eval("IS_OBJECT($body.Weather.Location)"));
    EXPECT_TRUE(eval("IS_ARRAY($body.Weather.PrevTemperatures)"));
    EXPECT_TRUE(eval("IS_NULL($body.Weather.Nothing)"));
    EXPECT_TRUE(eval("IS_DEFINED($body.Weather.Nothing)"));
    // The whole body is not queryable (Azure: "$body[0] = 'Feb'" is undefined).
    EXPECT_FALSE(eval("IS_DEFINED($body)"));
    EXPECT_FALSE(eval("IS_DEFINED($body[0])"));
}

TEST_F(routing_condition, body_of_twin_change_events) {
    m.source = route_source::twin_change;
    m.body = R"({"version":3,"properties":{"desired":{"telemetryConfig":{"sendFrequency":12}}}})";
    EXPECT_TRUE(eval("$body.properties.desired.telemetryConfig.sendFrequency > 10"));
    EXPECT_TRUE(eval("is_defined($body.properties.desired.telemetryConfig.sendFrequency)"));
    EXPECT_FALSE(eval("is_defined($body.properties.reported)"));
}

TEST_F(routing_condition, body_not_json_makes_body_conditions_false) {
    m.body = "not json {";
    EXPECT_FALSE(eval("$body.Weather.Temperature = 50"));
    EXPECT_FALSE(eval("NOT ($body.Weather.Temperature = 50)"));  // undefined stays undefined
    EXPECT_TRUE(eval("processingPath = 'hot'"));                 // the rest of the message still routes
    EXPECT_TRUE(eval("$body.Weather.Temperature = 50 OR processingPath = 'hot'"));
}

TEST_F(routing_condition, body_needs_json_content_type_and_utf_encoding) {
    m.content_type = "text/plain";
    EXPECT_FALSE(eval("$body.Weather.Temperature = 50"));
    m.content_type = "Application/JSON; charset=utf-8";
    EXPECT_TRUE(eval("$body.Weather.Temperature = 50"));
    m.content_encoding = "";
    EXPECT_FALSE(eval("$body.Weather.Temperature = 50"));
    m.content_encoding = "base64";
    EXPECT_FALSE(eval("$body.Weather.Temperature = 50"));
    m.content_encoding = "UTF-8";
    EXPECT_TRUE(eval("$body.Weather.Temperature = 50"));
}

TEST_F(routing_condition, twin_tags_desired_reported) {
    EXPECT_TRUE(eval("$twin.properties.desired.telemetryConfig.sendFrequency = '5m'"));
    EXPECT_TRUE(eval("$twin.properties.reported.telemetryConfig.status = 'success'"));
    EXPECT_TRUE(eval("$twin.properties.reported.batteryLevel >= 50"));
    EXPECT_TRUE(eval("$twin.tags.deploymentLocation.floor = 1"));
    EXPECT_TRUE(eval("$twin.tags.deploymentLocation.building = '43'"));
    EXPECT_FALSE(eval("$twin.tags.deploymentLocation.building = 43"));  // a string tag is no number
    EXPECT_TRUE(eval("$twin.properties.desired.$version = 1"));
    EXPECT_TRUE(
        eval("$body.Weather.Temperature = 50 AND $twin.properties.desired.telemetryConfig.sendFrequency = '5m'"));
    EXPECT_FALSE(eval("$twin.tags.nothing = 1"));
    m.twin = nullptr;
    EXPECT_FALSE(eval("$twin.tags.env = 'prod'"));
    EXPECT_FALSE(eval("IS_DEFINED($twin.tags)"));
}

TEST_F(routing_condition, logic_and_precedence) {
    EXPECT_TRUE(eval("level = 'critical' AND processingPath = 'hot'"));
    EXPECT_FALSE(eval("level = 'critical' AND processingPath = 'cold'"));
    EXPECT_TRUE(eval("level = 'info' OR processingPath = 'hot'"));
    EXPECT_TRUE(eval("NOT level = 'info'"));
    EXPECT_TRUE(eval("not (level = 'info')"));
    // AND binds tighter than OR.
    EXPECT_TRUE(eval("true OR false AND false"));
    EXPECT_FALSE(eval("(true OR false) AND false"));
    EXPECT_TRUE(eval("NOT false AND true"));
    EXPECT_FALSE(eval("NOT (false OR true)"));
    // Arithmetic binds tighter than comparison, * before +, left to right.
    EXPECT_TRUE(eval("1 + 2 * 3 = 7"));
    EXPECT_TRUE(eval("(1 + 2) * 3 = 9"));
    EXPECT_TRUE(eval("10 - 4 - 3 = 3"));
    EXPECT_TRUE(eval("7 % 4 = 3"));
    EXPECT_TRUE(eval("9 / 2 = 4.5"));
    EXPECT_TRUE(eval("-$body.Weather.Temperature = -50"));
    EXPECT_TRUE(eval("$body.Weather.Temperature - 50 = 0"));
    EXPECT_TRUE(eval("0x1F = 31"));
    EXPECT_TRUE(eval("1.5e2 = 150"));
    EXPECT_TRUE(eval("'abc' < 'abd'"));
    EXPECT_TRUE(eval("2 <= 2 AND 3 >= 2 AND 1 < 2 AND 3 > 2"));
}

TEST_F(routing_condition, undefined_semantics) {
    // Three-valued logic: false AND undefined is false, true OR undefined is true, the rest undefined.
    EXPECT_FALSE(eval("missing = 'x' OR false"));
    EXPECT_TRUE(eval("missing = 'x' OR true"));
    EXPECT_FALSE(eval("NOT (missing = 'x')"));
    EXPECT_TRUE(eval("NOT (missing = 'x' AND false)"));
    EXPECT_FALSE(eval("NOT (missing = 'x' AND true)"));
    EXPECT_FALSE(eval("1 = '1'"));  // different types: undefined
    EXPECT_FALSE(eval("1 != '1'"));
    EXPECT_FALSE(eval("1 / 0 = 1"));
    EXPECT_FALSE(eval("IS_DEFINED(1 / 0)"));
    EXPECT_FALSE(eval("'a' + 1 = 1"));
    EXPECT_TRUE(eval("null = null"));
    EXPECT_FALSE(eval("null < null"));
    EXPECT_FALSE(eval("true < false"));
    EXPECT_TRUE(eval("$body.Weather.Location = $body.weather.location"));  // objects compare by value
    EXPECT_FALSE(eval("level"));                                           // a string is not true
    EXPECT_FALSE(eval("NOT level"));
}

TEST_F(routing_condition, type_checking_functions) {
    EXPECT_TRUE(eval("IS_DEFINED(level)"));
    EXPECT_FALSE(eval("IS_DEFINED(nothing)"));
    EXPECT_TRUE(eval("IS_BOOL($body.Weather.IsEnabled)"));
    EXPECT_TRUE(eval("IS_NUMBER($body.Weather.Temperature)"));
    EXPECT_FALSE(eval("IS_NUMBER(severity)"));
    EXPECT_TRUE(eval("IS_PRIMITIVE(null) AND IS_PRIMITIVE('s') AND NOT IS_PRIMITIVE($body.Weather)"));
    EXPECT_FALSE(eval("IS_STRING(nothing)"));
    EXPECT_TRUE(eval("AS_NUMBER('12.5') = 12.5"));
    EXPECT_FALSE(eval("IS_DEFINED(AS_NUMBER('12abc'))"));
    EXPECT_FALSE(eval("IS_DEFINED(AS_NUMBER(''))"));
    EXPECT_TRUE(eval("AS_NUMBER(7) = 7"));
}

TEST_F(routing_condition, math_functions) {
    EXPECT_TRUE(eval("ABS(-3) = 3"));
    EXPECT_TRUE(eval("EXP(0) = 1"));
    EXPECT_TRUE(eval("POWER(2, 10) = 1024"));
    EXPECT_TRUE(eval("SQUARE(-4) = 16"));
    EXPECT_TRUE(eval("CEILING(1.2) = 2"));
    EXPECT_TRUE(eval("FLOOR(-1.2) = -2"));
    EXPECT_TRUE(eval("SIGN(-7) = -1 AND SIGN(0) = 0 AND SIGN(3) = 1"));
    EXPECT_TRUE(eval("SQRT(81) = 9"));
    EXPECT_FALSE(eval("IS_DEFINED(SQRT(-1))"));
    EXPECT_FALSE(eval("IS_DEFINED(EXP(100000))"));  // overflow is undefined, never infinity
    EXPECT_FALSE(eval("IS_DEFINED(ABS('3'))"));
    EXPECT_TRUE(eval("floor($body.Weather.Temperature / 7) = 7"));
}

TEST_F(routing_condition, string_functions) {
    EXPECT_TRUE(eval("CONCAT('a', 'b', level) = 'abcritical'"));
    EXPECT_FALSE(eval("IS_DEFINED(CONCAT('a', 1))"));
    EXPECT_TRUE(eval("LENGTH('') = 0 AND LENGTH(level) = 8"));
    EXPECT_TRUE(eval("LENGTH('h\\u00e9') = 2"));  // characters, not bytes
    EXPECT_TRUE(eval("LOWER($body.Weather.Label) = 'hot day'"));
    EXPECT_TRUE(eval("UPPER(level) = 'CRITICAL'"));
    EXPECT_TRUE(eval("SUBSTRING('Redmond', 3) = 'mond'"));
    EXPECT_TRUE(eval("SUBSTRING('Redmond', 0, 3) = 'Red'"));
    EXPECT_TRUE(eval("SUBSTRING('Redmond', 5, 100) = 'nd'"));
    EXPECT_TRUE(eval("SUBSTRING('Redmond', 50) = ''"));
    EXPECT_TRUE(eval("SUBSTRING('h\\u00e9llo', 1, 2) = '\\u00e9l'"));
    EXPECT_TRUE(eval("INDEX_OF('Redmond', 'mo') = 3"));
    EXPECT_TRUE(eval("INDEX_OF('Redmond', 'x') = -1"));
    EXPECT_TRUE(eval("STARTS_WITH($connectionDeviceId, 'd') AND STARTSWITH(level, 'crit')"));
    EXPECT_TRUE(eval("ENDS_WITH(level, 'cal') AND ENDSWITH(level, 'ical')"));
    EXPECT_TRUE(eval("CONTAINS($body.Weather.Location.Street, 'Microsoft')"));
    EXPECT_FALSE(eval("CONTAINS($body.Weather.Location.Street, 'microsoft')"));
    EXPECT_FALSE(eval("IS_DEFINED(STARTS_WITH(1, 'x'))"));
    EXPECT_TRUE(eval("starts_with(lower(level), 'cr')"));  // function names are case-insensitive
}

TEST_F(routing_condition, string_literals_and_escapes) {
    m.app_properties.emplace_back("quote", "it's \"here\"\\");
    EXPECT_TRUE(eval("quote = 'it\\'s \"here\"\\\\'"));
    EXPECT_TRUE(eval("quote = \"it's \\\"here\\\"\\\\\""));
    EXPECT_TRUE(eval("'\\uD83D\\uDE00' = '\xF0\x9F\x98\x80'"));  // a surrogate pair
}

TEST_F(routing_condition, syntax_errors_name_the_position) {
    EXPECT_EQ(fail("level = "),
              "Syntax error at position 8 (line 1, column 9): expected an operand, found the end of the condition");
    EXPECT_EQ(fail("level = 'x' AND"),
              "Syntax error at position 15 (line 1, column 16): expected an operand, found the end of the condition");
    EXPECT_EQ(fail("(level = 'x'"),
              "Syntax error at position 12 (line 1, column 13): expected ')' to close the '(' at position 0, found the "
              "end of the condition");
    EXPECT_EQ(
        fail("level = 'x')"),
        "Syntax error at position 11 (line 1, column 12): expected AND, OR or the end of the condition, found ')'");
    EXPECT_EQ(fail("level = 'x"), "Syntax error at position 8 (line 1, column 9): unterminated string literal in ''x'");
    EXPECT_EQ(fail("level == 'x'"), "Syntax error at position 7 (line 1, column 8): expected an operand, found '='");
    EXPECT_EQ(fail("a = 1\nAND b = ]"),
              "Syntax error at position 14 (line 2, column 9): expected an operand, found ']'");
    EXPECT_EQ(fail("FOO(level)"), "Syntax error at position 0 (line 1, column 1): unknown function 'FOO'");
    EXPECT_EQ(fail("LENGTH(a, b)"), "Syntax error at position 0 (line 1, column 1): LENGTH takes 1 argument, found 2");
    EXPECT_EQ(fail("CONCAT('a')"),
              "Syntax error at position 0 (line 1, column 1): CONCAT takes at least 2 arguments, found 1");
    EXPECT_EQ(fail("SUBSTRING('a')"),
              "Syntax error at position 0 (line 1, column 1): SUBSTRING takes 2 or 3 arguments, found 1");
    EXPECT_EQ(fail("$body.a[x] = 1"),
              "Syntax error at position 8 (line 1, column 9): expected an array index (a non-negative integer) after "
              "'[', found 'x'");
    EXPECT_EQ(fail("$body. = 1"),
              "Syntax error at position 6 (line 1, column 7): expected a property name after '.', found '='");
    EXPECT_EQ(
        fail("level ! 'x'"),
        "Syntax error at position 6 (line 1, column 7): '!' must be followed by '=' (use NOT for negation) in '!'");
    EXPECT_EQ(fail("'a\\n' = 'a'"),
              "Syntax error at position 0 (line 1, column 1): unsupported escape '\\n' (allowed: \\' \\\" \\\\ "
              "\\uXXXX) in ''a\\n'");
    EXPECT_EQ(fail("12ab = 1"), "Syntax error at position 0 (line 1, column 1): malformed number in '12a'");
    EXPECT_EQ(fail("level = [1, 2]"),
              "Syntax error at position 8 (line 1, column 9): array literals are not supported in route conditions");
    EXPECT_EQ(
        fail("level IN ('a')"),
        "Syntax error at position 6 (line 1, column 7): expected AND, OR or the end of the condition, found 'IN'");
    EXPECT_EQ(fail("AND"), "Syntax error at position 0 (line 1, column 1): expected an operand, found 'AND'");
    EXPECT_EQ(fail("severity[0] = 1"),
              "Syntax error at position 0 (line 1, column 1): 'severity' is a message property (a string); it has no "
              "array elements");
}

TEST_F(routing_condition, limits_bound_length_and_depth) {
    std::string longest(max_condition_length, ' ');
    longest.replace(0, 4, "true");
    EXPECT_TRUE(eval(longest));
    EXPECT_EQ(fail(std::string(max_condition_length + 1, ' ')),
              "condition is 1025 bytes long; at most 1024 are allowed");
    std::string nested = std::string(max_condition_depth - 1, '(') + "true" + std::string(max_condition_depth - 1, ')');
    EXPECT_TRUE(eval(nested));
    std::string deeper = std::string(max_condition_depth + 1, '(') + "true" + std::string(max_condition_depth + 1, ')');
    EXPECT_NE(fail(deeper).find("nested too deeply"), std::string::npos);
    std::string nots;
    for (std::uint32_t i = 0; i <= max_condition_depth; ++i) nots += "NOT ";
    EXPECT_NE(fail(nots + "true").find("nested too deeply"), std::string::npos);
    std::string sum = "1";
    for (std::uint32_t i = 0; i <= max_condition_depth; ++i) sum += "+1";
    EXPECT_NE(fail(sum + " = 0").find("nested too deeply"), std::string::npos);
    // OR/AND chains cost no depth: a condition as long as allowed may list a hundred alternatives.
    std::string alternatives = "a='0'";
    for (int i = 1; i < 100; ++i) alternatives += " OR a='" + std::to_string(i) + "'";
    ASSERT_LE(alternatives.size(), max_condition_length);
    EXPECT_FALSE(eval(alternatives));
    m.app_properties.emplace_back("a", "99");
    EXPECT_TRUE(eval(alternatives));
    EXPECT_FALSE(eval(alternatives + " AND false"));
}

}  // namespace
}  // namespace twinhub::telemetry
