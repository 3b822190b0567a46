// twinhubd's configuration file (issue 17 item 4): the schema, errors with file, line and key, the
// precedence flag > environment > file > default, and --print-config's redaction.
#include "server/config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace twinhub::server {
namespace {

std::map<std::string, std::string>& fake_env() {
    static std::map<std::string, std::string> e;
    return e;
}
const char* lookup(const char* name) {
    auto it = fake_env().find(name);
    return it == fake_env().end() ? nullptr : it->second.c_str();
}

std::string write_temp(const std::string& text) {
    static int n = 0;
    auto p = std::filesystem::temp_directory_path() / ("twinhub_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".json");
    std::ofstream(p) << text;
    return p.string();
}

std::optional<config> parse(std::vector<std::string> args, int& code) {
    args.insert(args.begin(), "twinhubd");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_config(static_cast<int>(argv.size()), argv.data(), code, lookup);
}

// The error message apply_config_file throws for `text`, "" when it is accepted.
std::string error_of(const std::string& text) {
    config c;
    try {
        apply_config_file(c, text, "hub.json");
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

class config_file : public ::testing::Test {
protected:
    void SetUp() override { fake_env().clear(); }
};

TEST_F(config_file, the_documented_example_sets_every_key) {
    std::ifstream in(TWINHUB_SOURCE_DIR "/docs/twinhubd.example.json");
    ASSERT_TRUE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    config c;
    apply_config_file(c, text, "docs/twinhubd.example.json");
    EXPECT_EQ(c.data_dir, "/var/lib/twinhub");
    EXPECT_EQ(c.host_names, (std::vector<std::string>{"hub.local", "twinhub.example.com"}));
    EXPECT_EQ(c.bind_address, "0.0.0.0");
    EXPECT_EQ(c.https_port, 8443);
    EXPECT_EQ(c.mqtt_port, 18883);
    EXPECT_EQ(c.amqp_port, 15671);
    EXPECT_EQ(c.threads, 4u);
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.store, "");
    EXPECT_EQ(c.partitions, 8u);
    EXPECT_EQ(c.retention, std::chrono::hours(48));
    EXPECT_EQ(c.consumer_groups, (std::vector<std::string>{"dashboard", "archive"}));
    ASSERT_TRUE(c.routing);
    EXPECT_TRUE(c.routing->as_object().contains("routes"));
    EXPECT_EQ(c.routing_origin.substr(0, 27), "docs/twinhubd.example.json:");
    EXPECT_FALSE(c.fault_injection);
    EXPECT_EQ(c.metrics_port, 9464);
    EXPECT_EQ(c.metrics_bind, "127.0.0.1");
    EXPECT_EQ(c.metrics_token, "change-me");
    EXPECT_TRUE(c.console);
    EXPECT_EQ(c.console_dir, "");
    EXPECT_EQ(c.tls_certificate_file, "");
    EXPECT_EQ(c.storage_container, "fileupload");
    EXPECT_EQ(c.file_upload_sas_ttl, std::chrono::hours(1));
}

TEST_F(config_file, comments_and_trailing_commas_are_allowed) {
    EXPECT_EQ(error_of("{\n  // the hub's address\n  \"host_names\": [\"a\"], /* more later */\n}\n"), "");
}

TEST_F(config_file, syntax_error_names_its_line) {
    EXPECT_EQ(error_of("{\n  \"ports\": {\n    \"https\": 8443\n    \"mqtt\": 1\n  }\n}\n").rfind("config error: hub.json:4: (syntax): not valid JSON", 0), 0u);
}

TEST_F(config_file, unknown_key_names_key_and_line) {
    auto e = error_of("{\n  \"ports\": {\n    \"https\": 8443,\n    \"htps\": 1\n  }\n}\n");
    EXPECT_EQ(e.substr(0, e.find(" (known")), "config error: hub.json:4: ports.htps: unknown key");
    EXPECT_NE(e.find("https"), std::string::npos) << e;
    e = error_of("{\"data_dir\": \"/x\",\n\"colour\": \"blue\"}");
    EXPECT_EQ(e.substr(0, e.find(" (known")), "config error: hub.json:2: colour: unknown key");
}

TEST_F(config_file, wrong_type_names_key_and_line) {
    EXPECT_EQ(error_of("{\n\"ports\": {\"https\": \"8443\"}}"),
              "config error: hub.json:2: ports.https: must be an integer, not a string");
    EXPECT_EQ(error_of("{\"fault_injection\": 1}"),
              "config error: hub.json:1: fault_injection: must be true or false, not an integer");
    EXPECT_EQ(error_of("{\n\"host_names\": [\n\"a\",\n 7]}"),
              "config error: hub.json:4: host_names[1]: must be a string, not an integer");
    EXPECT_EQ(error_of("{\"metrics\": []}"), "config error: hub.json:1: metrics: must be an object, not an array");
    EXPECT_EQ(error_of("[1]"), "config error: hub.json:1: (top level): must be an object, not an array");
}

TEST_F(config_file, values_out_of_range_name_key_and_line) {
    EXPECT_EQ(error_of("{\n\n\"ports\": {\"mqtt\": 70000}}"),
              "config error: hub.json:3: ports.mqtt: must be between 1 and 65535, not 70000");
    EXPECT_EQ(error_of("{\"telemetry\": {\n\"partitions\": 1}}"),
              "config error: hub.json:2: telemetry.partitions: must be 0 (the default) or between 2 and 32, not 1");
    EXPECT_EQ(error_of("{\"telemetry\": {\"retention\": \"8d\"}}"),
              "config error: hub.json:1: telemetry.retention: '8d' is not a period between 1s and 7d (e.g. 90s, 12h, 1d)");
    EXPECT_EQ(error_of("{\"log_level\": \"loud\"}"),
              "config error: hub.json:1: log_level: 'loud' is not one of debug, info, warn, error, off");
    EXPECT_EQ(error_of("{\"store\": \"/var/db\"}"),
              "config error: hub.json:1: store: must be \"sqlite\" or a postgresql:// URL");
    EXPECT_EQ(error_of("{\"telemetry\": {\"consumer_groups\": [\"ok\",\n\"-bad\"]}}")
                  .rfind("config error: hub.json:2: telemetry.consumer_groups[1]: '-bad' is not a consumer group name", 0),
              0u);
    EXPECT_EQ(error_of("{\"tls\": {\"certificate_file\": \"/c.pem\"}}"),
              "config error: hub.json:1: tls: give both certificate_file and key_file, or neither");
}

TEST_F(config_file, a_key_given_twice_is_an_error) {
    EXPECT_EQ(error_of("{\"ports\": {\"https\": 1,\n \"https\": 2}}"), "config error: hub.json:2: ports.https: given twice");
}

TEST_F(config_file, parse_config_reports_the_error_and_exits_2) {
    auto file = write_temp("{\"ports\": {\"https\": true}}");
    int code = -1;
    EXPECT_FALSE(parse({"--config", file, "--data-dir", "/tmp/x"}, code));
    EXPECT_EQ(code, 2);
    code = -1;
    EXPECT_FALSE(parse({"--config", "/nonexistent/twinhub.json", "--data-dir", "/tmp/x"}, code));
    EXPECT_EQ(code, 2);
}

TEST_F(config_file, precedence_is_flag_then_environment_then_file_then_default) {
    auto file = write_temp(R"({"data_dir": "/from/file", "ports": {"https": 1001, "mqtt": 1002, "amqp": 1003},
                               "telemetry": {"retention": "2h"}, "console": {"enabled": false}})");
    int code = -1;
    // File over default.
    auto c = parse({"--config", file}, code);
    ASSERT_TRUE(c) << code;
    EXPECT_EQ(c->data_dir, "/from/file");
    EXPECT_EQ(c->https_port, 1001);
    EXPECT_EQ(c->mqtt_port, 1002);
    EXPECT_EQ(c->retention, std::chrono::hours(2));
    EXPECT_FALSE(c->console);
    EXPECT_EQ(c->metrics_bind, "127.0.0.1");  // default, the file is silent
    EXPECT_EQ(c->config_file, file);
    // Environment over file, flag over environment.
    fake_env()["TWINHUB_HTTPS_PORT"] = "2001";
    fake_env()["TWINHUB_MQTT_PORT"] = "2002";
    fake_env()["TWINHUB_RETENTION"] = "3h";
    fake_env()["TWINHUB_CONSOLE"] = "1";
    c = parse({"--config", file, "--https-port", "3001", "--retention", "4h"}, code);
    ASSERT_TRUE(c) << code;
    EXPECT_EQ(c->https_port, 3001);
    EXPECT_EQ(c->mqtt_port, 2002);
    EXPECT_EQ(c->amqp_port, 1003);
    EXPECT_EQ(c->retention, std::chrono::hours(4));
    EXPECT_TRUE(c->console);
    c = parse({"--config", file, "--no-console"}, code);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->console);
    EXPECT_EQ(c->retention, std::chrono::hours(3));
}

TEST_F(config_file, twinhub_config_names_the_file_and_the_flag_wins) {
    auto a = write_temp(R"({"data_dir": "/a"})");
    auto b = write_temp(R"({"data_dir": "/b"})");
    fake_env()["TWINHUB_CONFIG"] = a;
    int code = -1;
    auto c = parse({}, code);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->data_dir, "/a");
    c = parse({"--config", b}, code);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->data_dir, "/b");
}

TEST_F(config_file, every_flag_has_its_key) {
    auto file = write_temp(R"({"data_dir": "/d", "host_names": ["h1", "h2"], "store": "postgresql://u@h/db", "bind": "127.0.0.1",
        "ports": {"https": 1, "mqtt": 2, "amqp": 3}, "threads": 3, "log_level": "warn",
        "telemetry": {"partitions": 6, "retention": "90s"}, "fault_injection": true,
        "metrics": {"port": 9, "bind": "0.0.0.0", "token": "t"}, "console": {"enabled": false, "dir": "/c"},
        "tls": {"certificate_file": "/s.pem", "key_file": "/s.key"},
        "file_upload": {"storage_connection_string": "AccountName=a;AccountKey=k", "container": "up", "ca_file": "/ca.pem",
                        "sas_ttl": "30m"}})");
    int code = -1;
    auto c = parse({"--config", file}, code);
    ASSERT_TRUE(c) << code;
    EXPECT_EQ(c->host_names, (std::vector<std::string>{"h1", "h2"}));
    EXPECT_EQ(c->store, "postgresql://u@h/db");
    EXPECT_EQ(c->bind_address, "127.0.0.1");
    EXPECT_EQ(c->amqp_port, 3);
    EXPECT_EQ(c->threads, 3u);
    EXPECT_EQ(c->log_level, "warn");
    EXPECT_EQ(c->partitions, 6u);
    EXPECT_EQ(c->retention, std::chrono::seconds(90));
    EXPECT_TRUE(c->fault_injection);
    EXPECT_EQ(c->metrics_port, 9);
    EXPECT_EQ(c->metrics_bind, "0.0.0.0");
    EXPECT_EQ(c->metrics_token, "t");
    EXPECT_EQ(c->console_dir, "/c");
    EXPECT_EQ(c->tls_certificate_file, "/s.pem");
    EXPECT_EQ(c->tls_key_file, "/s.key");
    EXPECT_EQ(c->storage_connection_string, "AccountName=a;AccountKey=k");
    EXPECT_EQ(c->storage_container, "up");
    EXPECT_EQ(c->storage_ca_file, "/ca.pem");
    EXPECT_EQ(c->file_upload_sas_ttl, std::chrono::minutes(30));
}

TEST_F(config_file, bad_environment_values_are_refused) {
    fake_env()["TWINHUB_HTTPS_PORT"] = "44x3";
    int code = -1;
    EXPECT_FALSE(parse({"--data-dir", "/d"}, code));
    EXPECT_EQ(code, 2);
}

TEST_F(config_file, print_config_redacts_secrets) {
    auto file = write_temp(R"({"data_dir": "/d", "store": "postgresql://twinhub:s3cret@db:5432/hub?pool=2&password=other",
        "metrics": {"token": "tok3n"},
        "file_upload": {"storage_connection_string": "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=a2V5;EndpointSuffix=core.windows.net"},
        "telemetry": {"routing": {"endpoints": {"eventHubs": [{"name": "hot",
            "connectionString": "Endpoint=sb://x/;SharedAccessKeyName=send;SharedAccessKey=ZWg="}]},
            "routes": [{"name": "r", "source": "DeviceMessages", "condition": "true", "endpointNames": ["hot"], "isEnabled": true}]}}})");
    int code = -1;
    auto c = parse({"--config", file, "--print-config"}, code);
    ASSERT_TRUE(c) << code;
    EXPECT_TRUE(c->print_config);
    const std::string out = boost::json::serialize(to_json(*c));
    for (const char* secret : {"s3cret", "other", "tok3n", "a2V5", "ZWg="}) EXPECT_EQ(out.find(secret), std::string::npos) << secret << " in " << out;
    auto j = to_json(*c);
    EXPECT_EQ(j.at("store").as_string(), "postgresql://twinhub:<redacted>@db:5432/hub?pool=2&password=<redacted>");
    EXPECT_EQ(j.at("metrics").at("token").as_string(), "<redacted>");
    EXPECT_EQ(j.at("file_upload").at("storage_connection_string").as_string(),
              "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=<redacted>;EndpointSuffix=core.windows.net");
    EXPECT_EQ(j.at("telemetry").at("routing").at("endpoints").at("eventHubs").at(0).at("connectionString").as_string(),
              "Endpoint=sb://x/;SharedAccessKeyName=send;SharedAccessKey=<redacted>");
}

TEST_F(config_file, printed_configuration_reads_back_as_a_configuration_file) {
    auto file = write_temp(R"({"data_dir": "/d", "host_names": ["h"], "telemetry": {"retention": "36h", "consumer_groups": ["a"]}})");
    int code = -1;
    auto c = parse({"--config", file}, code);
    ASSERT_TRUE(c);
    config back;
    apply_config_file(back, boost::json::serialize(to_json(*c)), "printed");
    EXPECT_EQ(back.data_dir, c->data_dir);
    EXPECT_EQ(back.host_names, c->host_names);
    EXPECT_EQ(back.retention, c->retention);
    EXPECT_EQ(back.consumer_groups, c->consumer_groups);
    EXPECT_EQ(back.https_port, c->https_port);
}

// docs/twinhubd.schema.json names exactly the keys the parser takes (every key --print-config
// prints, plus $schema and the routing_file/routing alternative).
TEST_F(config_file, the_json_schema_names_every_key_and_no_other) {
    std::ifstream in(TWINHUB_SOURCE_DIR "/docs/twinhubd.schema.json");
    ASSERT_TRUE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto schema = boost::json::parse(text).as_object();
    std::set<std::string> in_schema;
    for (auto& [k, v] : schema.at("properties").as_object()) {
        in_schema.insert(std::string(k));
        if (auto* p = v.as_object().if_contains("properties"))
            for (auto& [k2, v2] : p->as_object()) in_schema.insert(std::string(k) + "." + std::string(k2));
    }
    config c;
    c.data_dir = "/d";
    std::set<std::string> printed{"$schema", "telemetry.routing"};
    for (auto& [k, v] : to_json(c)) {
        printed.insert(std::string(k));
        if (v.is_object())
            for (auto& [k2, v2] : v.as_object()) printed.insert(std::string(k) + "." + std::string(k2));
    }
    EXPECT_EQ(in_schema, printed);
    // And the parser takes each of them: a file with every schema key set to its printed value.
    auto full = to_json(c);
    full["$schema"] = "docs/twinhubd.schema.json";
    EXPECT_EQ(error_of(boost::json::serialize(full)), "");
}

TEST(config_redaction, url_without_password_is_unchanged) {
    EXPECT_EQ(redact_url("postgresql://u@h/db?pool=4"), "postgresql://u@h/db?pool=4");
    EXPECT_EQ(redact_connection_string("HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=abc"),
              "HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=<redacted>");
}

}  // namespace
}  // namespace twinhub::server
