// Import/export jobs: the pure parts (JobProperties request, container URLs, devices.txt lines)
// and import_export_service over a real hub_service (memory store) with an in-memory blob store:
// export/import round trip, a malformed line that leaves the registry untouched, one active job
// at a time, cancel while storage is slow, and jobs reloaded by a new service on the same hub.
#include "jobs/import_export.hpp"
#include "jobs/import_export_service.hpp"

#include "service/file_upload_service.hpp"
#include "service_test_support.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace twinhub::jobs {
namespace {

namespace json = boost::json;
using service::testing::wait_for;

TEST(import_export, request_needs_type_and_https_container_uris) {
    EXPECT_FALSE(parse_ie_request(json::parse(R"({"outputBlobContainerUri":"https://h/c?sig=x"})")));
    EXPECT_FALSE(parse_ie_request(json::parse(R"({"type":"backup","outputBlobContainerUri":"https://h/c"})")));
    auto plain = parse_ie_request(json::parse(R"({"type":"export","outputBlobContainerUri":"http://h/c?sig=x"})"));
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().code, errc::invalid_argument);
    EXPECT_FALSE(parse_ie_request(json::parse(R"({"type":"export","outputBlobContainerUri":"https://h/"})")));
    EXPECT_FALSE(parse_ie_request(json::parse(R"({"type":"import","outputBlobContainerUri":"https://h/c"})")));
    EXPECT_FALSE(parse_ie_request(json::parse(
        R"({"type":"export","outputBlobContainerUri":"https://h/c","storageAuthenticationType":"identityBased"})")));
    auto ok = parse_ie_request(json::parse(R"({"type":"Export","outputBlobContainerUri":"https://h:1/a/c?sv=1&sig=2","excludeKeysInExport":true})"));
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_TRUE(ok->exclude_keys);
    EXPECT_EQ(ok->output_blob, "devices.txt");
}

TEST(import_export, blob_url_keeps_the_container_sas) {
    auto c = parse_container_url("https://127.0.0.1:10000/devstoreaccount1/in/?sv=2020&sig=a%2Bb", "x");
    ASSERT_TRUE(c);
    EXPECT_EQ(blob_url(*c, "devices.txt"), "https://127.0.0.1:10000/devstoreaccount1/in/devices.txt?sv=2020&sig=a%2Bb");
    EXPECT_EQ(blob_url(*c, "a b.txt"), "https://127.0.0.1:10000/devstoreaccount1/in/a%20b.txt?sv=2020&sig=a%2Bb");
}

TEST(import_export, blob_lines_split_on_crlf_and_lf_and_skip_blank_lines) {
    auto lines = blob_lines("\xEF\xBB\xBF{\"id\":\"a\"}\r\n\r\n{\"id\":\"b\"}\n  \n{\"id\":\"c\"}");
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].first, 1u);
    EXPECT_EQ(lines[0].second, "{\"id\":\"a\"}");
    EXPECT_EQ(lines[1].first, 3u);
    EXPECT_EQ(lines[2].first, 5u);
}

TEST(import_export, import_line_defaults_to_create_or_update_and_checks_fields) {
    auto e = parse_import_line(R"({"id":"d1","authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null}}})", 1);
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->mode, "createorupdate");
    EXPECT_FALSE(e->twin);
    auto t = parse_import_line(R"({"id":"d1","importMode":"UpdateTwin","tags":{"a":1},"properties":{"desired":{"x":1,"$version":4,"$metadata":{}}}})", 2);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(json::serialize(*t->twin), R"({"tags":{"a":1},"properties":{"desired":{"x":1}}})");
    auto bad_json = parse_import_line(R"({"id":)", 7);
    ASSERT_FALSE(bad_json);
    EXPECT_EQ(bad_json.error().code, errc::format_error);
    EXPECT_NE(bad_json.error().message.find("line 7"), std::string::npos);
    EXPECT_FALSE(parse_import_line(R"({"id":"d1","importMode":"explode"})", 1));
    EXPECT_FALSE(parse_import_line(R"({"id":"d1","importMode":"deleteIfMatchETag"})", 1));
    EXPECT_FALSE(parse_import_line(R"({"id":"d 1/"})", 1));
    EXPECT_FALSE(parse_import_line(R"({"id":"d1","status":"sleeping"})", 1));
    EXPECT_FALSE(parse_import_line(R"({"id":"d1","moduleId":"m"})", 1));
}

// Blobs in memory, keyed by URL without the query; `hold` makes blob reads and writes wait for release().
class memory_storage final : public service::storage_client {
public:
    std::map<std::string, std::string> blobs;
    bool refuse = false;

    void hold() {
        std::lock_guard l(mu_);
        held_ = true;
    }
    void release() {
        {
            std::lock_guard l(mu_);
            held_ = false;
        }
        cv_.notify_all();
    }
    std::optional<std::string> blob(const std::string& url) {
        std::lock_guard l(mu_);
        auto it = blobs.find(url);
        return it == blobs.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
    void put(const std::string& url, std::string text) {
        std::lock_guard l(mu_);
        blobs[url] = std::move(text);
    }

    void create_container(std::string, service::handler<void> done) override { done(result<void>{}); }
    void blob_properties_of(std::string, service::handler<service::blob_properties> done) override {
        done(error{errc::connection_failed, "unused"});
    }
    void get_blob(std::string url, service::handler<std::string> done) override {
        run([=, this] {
            auto b = blob(strip(url));
            if (!b) return done(error{errc::not_found, "storage answered 404 BlobNotFound"});
            done(std::move(*b));
        });
    }
    void put_blob(std::string url, std::string body, service::handler<void> done) override {
        run([=, this] {
            put(strip(url), body);
            done(result<void>{});
        });
    }
    void probe_blob(std::string, service::handler<answer> done) override {
        done(refuse ? answer{403, "AuthenticationFailed"} : answer{404, "BlobNotFound"});
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool held_ = false;

    static std::string strip(const std::string& url) { return url.substr(0, url.find('?')); }
    void run(std::function<void()> f) {
        std::thread([this, f = std::move(f)] {
            {
                std::unique_lock l(mu_);
                cv_.wait(l, [this] { return !held_; });
            }
            f();
        }).detach();
    }
};

constexpr const char* in_url = "https://storage/acct/in?sv=1&sig=s";
constexpr const char* out_url = "https://storage/acct/out?sv=1&sig=s";

class import_export_fixture : public service::testing::hub_fixture {
protected:
    memory_storage storage_;
    std::unique_ptr<import_export_service> svc_;

    void SetUp() override {
        hub_fixture::SetUp();
        restart();
    }
    void TearDown() override {
        storage_.release();
        svc_.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // detached storage threads
        hub_fixture::TearDown();
    }
    void restart() {
        svc_.reset();
        svc_ = std::make_unique<import_export_service>(*hub_, storage_);
        svc_->start();
    }
    result<json::object> create_job(std::string_view body) {
        return wait_for<json::object>([&](auto h) { svc_->create(json::parse(body), h); });
    }
    json::object finished(const std::string& id) {
        for (int i = 0; i < 1000; ++i) {
            auto j = svc_->get(id);
            EXPECT_TRUE(j);
            if (!j) return {};
            std::string s(j->at("status").as_string());
            if (s == "completed" || s == "failed" || s == "cancelled") return *j;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ADD_FAILURE() << "job " << id << " did not finish";
        return {};
    }
    std::string run(std::string_view body) {
        auto j = create_job(body);
        EXPECT_TRUE(j) << (j ? "" : j.error().message);
        if (!j) return {};
        return std::string(finished(std::string(j->at("jobId").as_string())).at("status").as_string());
    }
    static std::string import_body() {
        return std::string(R"({"type":"import","inputBlobContainerUri":")") + in_url + R"(","outputBlobContainerUri":")" +
               out_url + "\"}";
    }
    static std::string export_body() {
        return std::string(R"({"type":"export","excludeKeysInExport":false,"outputBlobContainerUri":")") + out_url + "\"}";
    }
};

TEST_F(import_export_fixture, export_then_import_into_an_empty_registry_round_trips_keys_and_twins) {
    ASSERT_TRUE(create("d1"));
    auto d2 = create("d2");
    ASSERT_TRUE(d2);
    ASSERT_TRUE((wait_for<json::object>([&](auto h) {
        hub_->patch_twin({"d2", ""}, json::parse(R"({"tags":{"k":"v"},"properties":{"desired":{"p":1}}})"), "*", h);
    })));
    ASSERT_EQ(run(export_body()), "completed");
    auto text = storage_.blob("https://storage/acct/out/devices.txt");
    ASSERT_TRUE(text);
    EXPECT_EQ(blob_lines(*text).size(), 2u);
    EXPECT_NE(text->find("\r\n"), std::string::npos);

    // Delete both, import the export.
    for (auto id : {"d1", "d2"})
        ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->delete_device(id, "*", h); }));
    storage_.put("https://storage/acct/in/devices.txt", *text);
    ASSERT_EQ(run(import_body()), "completed");
    auto back = hub_->get_device("d2");
    ASSERT_TRUE(back);
    EXPECT_EQ(back->authentication.symmetric_key.primary_key, d2->authentication.symmetric_key.primary_key);
    auto twin = hub_->get_twin({"d2", ""});
    ASSERT_TRUE(twin);
    EXPECT_EQ(json::serialize(twin->at("tags")), R"({"k":"v"})");
    EXPECT_EQ(twin->at("properties").at("desired").at("p").as_int64(), 1);
    EXPECT_EQ(*storage_.blob("https://storage/acct/out/importErrors.log"), "");
}

TEST_F(import_export_fixture, a_malformed_line_fails_the_job_and_applies_nothing) {
    storage_.put("https://storage/acct/in/devices.txt", "{\"id\":\"n1\",\"importMode\":\"create\"}\r\nnot json\r\n");
    auto j = create_job(import_body());
    ASSERT_TRUE(j);
    auto done = finished(std::string(j->at("jobId").as_string()));
    EXPECT_EQ(done.at("status").as_string(), "failed");
    EXPECT_NE(std::string(done.at("failureReason").as_string()).find("line 2"), std::string::npos);
    EXPECT_FALSE(hub_->get_device("n1"));
    EXPECT_NE(storage_.blob("https://storage/acct/out/importErrors.log")->find("IotHubFormatError"), std::string::npos);
}

TEST_F(import_export_fixture, one_active_job_at_a_time_and_cancel_while_storage_is_slow) {
    ASSERT_TRUE(create("c1"));
    storage_.hold();  // the export's Put Blob waits
    auto first = create_job(export_body());
    ASSERT_TRUE(first);
    std::string id(first->at("jobId").as_string());
    auto second = wait_for<json::object>([&](auto h) { svc_->create(json::parse(export_body()), h); });
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, errc::throttled);
    ASSERT_TRUE(wait_for<json::object>([&](auto h) { svc_->cancel(id, h); }));
    EXPECT_EQ(svc_->get(id)->at("status").as_string(), "cancelled");
    storage_.release();
    EXPECT_EQ(finished(id).at("status").as_string(), "cancelled");
    EXPECT_EQ(run(export_body()), "completed");
    auto unknown = wait_for<json::object>([&](auto h) { svc_->cancel("nope", h); });
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, errc::not_found);
}

TEST_F(import_export_fixture, a_refused_sas_creates_no_job) {
    storage_.refuse = true;
    auto j = create_job(export_body());
    ASSERT_FALSE(j);
    EXPECT_EQ(j.error().code, errc::connection_failed);
    EXPECT_NE(j.error().message.find("Unauthorized to write to output blob container"), std::string::npos);
    EXPECT_TRUE(svc_->list().empty());
}

TEST_F(import_export_fixture, jobs_survive_a_restart_and_an_interrupted_import_is_failed) {
    ASSERT_TRUE(create("r1"));
    auto done = create_job(export_body());
    ASSERT_TRUE(done);
    std::string done_id(done->at("jobId").as_string());
    finished(done_id);
    // An import caught by the restart while it waits for storage.
    storage_.put("https://storage/acct/in/devices.txt", "{\"id\":\"r2\"}\r\n");
    storage_.hold();
    auto running = create_job(import_body());
    ASSERT_TRUE(running);
    std::string running_id(running->at("jobId").as_string());
    for (int i = 0; i < 200 && svc_->get(running_id)->at("status").as_string() != "running"; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::thread releaser([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        storage_.release();
    });
    restart();  // stop() waits for the worker; the job stays "running" in the store
    releaser.join();
    EXPECT_EQ(svc_->get(done_id)->at("status").as_string(), "completed");
    auto after = finished(running_id);
    EXPECT_EQ(after.at("status").as_string(), "failed");
    EXPECT_NE(std::string(after.at("failureReason").as_string()).find("restarted"), std::string::npos);
    ASSERT_EQ(svc_->list().size(), 2u);
    EXPECT_EQ(svc_->list().front().at("jobId").as_string(), running_id);
}

}  // namespace
}  // namespace twinhub::jobs
