// rest_api without sockets: the If-Match create-versus-update rule of spec 3.6 and the
// exactly-once completion contract.
#include "http/rest_api.hpp"

#include "auth/sas_token.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <future>

using namespace twinhub;
using namespace twinhub::http;

namespace {

class rest_api_direct : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = store::make_memory_store();
        hub_ = std::move(*service::hub_service::open(*store_, {}));
        api_ = std::make_unique<rest_api>(*hub_, std::vector<std::string>{"hub.example.com"});
        for (const auto& p : hub_->policies()) {
            if (p.key_name == "iothubowner") {
                token_ = auth::generate_sas_token("hub.example.com", p.primary_key, auth::to_unix_seconds(now()) + 600,
                                                  "iothubowner").value();
            }
        }
    }
    void TearDown() override {
        api_.reset();
        hub_.reset();
        store_->close();
    }

    // Adds api-version=2021-04-12 to the query, as every SDK does (spec 3.1).
    rest_response run(std::string method, std::string target, std::string body = {},
                      std::optional<std::string> if_match = std::nullopt) {
        target += target.find('?') == std::string::npos ? "?api-version=2021-04-12" : "&api-version=2021-04-12";
        rest_request r{std::move(method), std::move(target), token_, std::move(if_match), std::move(body)};
        std::promise<rest_response> p;
        auto f = p.get_future();
        auto calls = std::make_shared<std::atomic<int>>(0);
        api_->handle(std::move(r), [&p, calls](rest_response res) {
            if (calls->fetch_add(1) == 0) p.set_value(std::move(res));
        });
        auto res = f.get();
        EXPECT_EQ(calls->load(), 1);
        return res;
    }

    std::unique_ptr<store::store> store_;
    std::unique_ptr<service::hub_service> hub_;
    std::unique_ptr<rest_api> api_;
    std::string token_;
};

}  // namespace

TEST_F(rest_api_direct, put_without_if_match_creates_and_with_if_match_updates) {
    EXPECT_EQ(run("PUT", "/devices/d1", R"({"deviceId":"d1"})").status, 200);
    EXPECT_EQ(run("PUT", "/devices/d1", R"({"deviceId":"d1"})").status, 409);
    EXPECT_EQ(run("PUT", "/devices/d1", R"({"deviceId":"d1"})", std::string("")).status, 409);  // empty = absent
    EXPECT_EQ(run("PUT", "/devices/d1", R"({"deviceId":"d1"})", std::string("*")).status, 200);
    EXPECT_EQ(run("PUT", "/devices/d1", R"({"deviceId":"d1"})", std::string("W/\"nope\"")).status, 412);
    EXPECT_EQ(run("PUT", "/devices/d2", R"({"deviceId":"d2"})", std::string("*")).status, 404);
}

TEST_F(rest_api_direct, sr_must_name_a_configured_host) {
    auto r = run("GET", "/statistics/devices");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(boost::json::parse(r.body).at("totalDeviceCount").as_int64(), 0);
    rest_request bad{"GET", "/statistics/devices?api-version=2021-04-12",
                     std::string("SharedAccessSignature sr=x&sig=y&se=1&skn=iothubowner"),
                     std::nullopt, {}};
    std::optional<rest_response> got;
    api_->handle(std::move(bad), [&](rest_response res) { got = std::move(res); });
    ASSERT_TRUE(got);  // rejected at the edge: completed inline
    EXPECT_EQ(got->status, 401);
}

// A policy token scoped to one device (sr={host}/devices/d1, the C service SDK's device-scoped
// form) serves that device's resources, its modules' and twins, and nothing else.
TEST_F(rest_api_direct, device_scoped_service_token_serves_only_that_device) {
    ASSERT_EQ(run("PUT", "/devices/d1", "{}").status, 200);
    ASSERT_EQ(run("PUT", "/devices/d1/modules/m1", "{}").status, 200);
    ASSERT_EQ(run("PUT", "/devices/d2", "{}").status, 200);
    std::string key;
    for (const auto& p : hub_->policies())
        if (p.key_name == "iothubowner") key = p.primary_key;
    const std::string owner = token_;
    token_ = auth::generate_sas_token("hub.example.com/devices/d1", key, auth::to_unix_seconds(now()) + 600, "iothubowner")
                 .value();
    EXPECT_EQ(run("GET", "/devices/d1").status, 200);
    EXPECT_EQ(run("GET", "/twins/d1").status, 200);
    EXPECT_EQ(run("GET", "/devices/d1/modules/m1").status, 200);
    EXPECT_EQ(run("GET", "/twins/d1/modules/m1").status, 200);
    EXPECT_EQ(run("GET", "/devices/d2").status, 401);
    EXPECT_EQ(run("GET", "/twins/d2").status, 401);
    EXPECT_EQ(run("GET", "/statistics/devices").status, 401);
    token_ = owner;
    EXPECT_EQ(run("GET", "/devices/d2").status, 200);  // a hub-wide token still serves every device
}

TEST_F(rest_api_direct, delete_returns_204_without_a_body) {
    ASSERT_EQ(run("PUT", "/devices/d1", "{}").status, 200);
    auto r = run("DELETE", "/devices/d1", {}, std::string("\"*\""));
    EXPECT_EQ(r.status, 204);
    EXPECT_TRUE(r.body.empty());
}

TEST_F(rest_api_direct, missing_api_version_is_400_invalid_protocol_version_inline) {
    for (std::string target : {"/devices/d1", "/devices/d1?api-version=", "/devices/d1?top=1"}) {
        rest_request r{"PUT", target, token_, std::nullopt, R"({"deviceId":"d1"})"};
        std::optional<rest_response> got;
        api_->handle(std::move(r), [&](rest_response res) { got = std::move(res); });
        ASSERT_TRUE(got) << target;  // rejected at the edge: completed inline
        EXPECT_EQ(got->status, 400) << target;
        ASSERT_NE(got->header("iothub-errorcode"), nullptr);
        EXPECT_EQ(*got->header("iothub-errorcode"), "InvalidProtocolVersion");
        EXPECT_EQ(std::string(boost::json::parse(got->body).at("Message").as_string()).rfind("ErrorCode:InvalidProtocolVersion;", 0), 0u);
    }
    EXPECT_TRUE(hub_->list_devices(10).empty());
}
