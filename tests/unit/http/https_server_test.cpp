// The REST head end to end over real TLS: every endpoint, the error contract, the bad-input list
// (each rejected request leaves the store unchanged), keep-alive, the WebSocket hand-off and the
// listener's life cycle.
#include "hub_fixture.hpp"

#include <boost/beast/websocket.hpp>

using namespace twinhub;
using namespace twinhub::http;
using namespace twinhub::http::test;
using bhttp::verb;

namespace {

const std::string new_device_body = R"({"deviceId":"dev1","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})";

class rest : public hub_fixture {
protected:
    reply create_device(const std::string& id) {
        return call(verb::put, "/devices/" + id + "?api-version=2021-04-12",
                    R"({"deviceId":")" + id + R"(","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})");
    }
    reply create_module(const std::string& d, const std::string& m) {
        return call(verb::put, "/devices/" + d + "/modules/" + m + "?api-version=2021-04-12",
                    R"({"deviceId":")" + d + R"(","moduleId":")" + m + R"("})");
    }
    void expect_json(const reply& r) {
        EXPECT_EQ(r.header("content-type"), "application/json; charset=utf-8");
        EXPECT_FALSE(r.json.is_null()) << r.body;
    }
    void expect_error(const reply& r, int status, const std::string& code) {
        EXPECT_EQ(r.status, status) << r.body;
        EXPECT_EQ(r.error_code(), code) << r.body;
        EXPECT_EQ(r.header("iothub-errorcode"), code);
        expect_json(r);
        ASSERT_TRUE(r.json.is_object());
        std::string em(r.json.at("ExceptionMessage").as_string());
        EXPECT_EQ(em.rfind("Tracking ID:", 0), 0u) << em;
        EXPECT_NE(em.find("-TimeStamp:"), std::string::npos) << em;
    }
};

}  // namespace

TEST_F(rest, device_create_generates_keys_and_returns_etag) {
    auto r = create_device("dev1");
    ASSERT_EQ(r.status, 200) << r.body;
    expect_json(r);
    const auto& d = r.json.as_object();
    EXPECT_EQ(d.at("deviceId").as_string(), "dev1");
    EXPECT_EQ(d.at("status").as_string(), "enabled");
    EXPECT_EQ(d.at("authentication").at("symmetricKey").at("primaryKey").as_string().size(), 44u);
    EXPECT_EQ(d.at("authentication").at("symmetricKey").at("secondaryKey").as_string().size(), 44u);
    EXPECT_FALSE(d.at("generationId").as_string().empty());
    EXPECT_EQ(r.header("etag"), "\"" + std::string(d.at("etag").as_string()) + "\"");
}

TEST_F(rest, device_create_twice_is_409_device_already_exists) {
    ASSERT_EQ(create_device("dev1").status, 200);
    auto before = snapshot();
    expect_error(create_device("dev1"), 409, "DeviceAlreadyExists");
    EXPECT_EQ(snapshot(), before);
}

TEST_F(rest, device_get_update_with_etag_and_stale_etag) {
    auto created = create_device("dev1");
    std::string etag(created.json.at("etag").as_string());
    std::string generation(created.json.at("generationId").as_string());
    std::string key(created.json.at("authentication").at("symmetricKey").at("primaryKey").as_string());

    auto got = call(verb::get, "/devices/dev1?api-version=2021-04-12");
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(got.json.at("etag").as_string(), etag);

    // Disable, sending the current keys back (an update with empty keys regenerates them).
    auto upd = call(verb::put, "/devices/dev1",
                    R"({"deviceId":"dev1","status":"disabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":")" +
                        key + R"(","secondaryKey":")" +
                        std::string(created.json.at("authentication").at("symmetricKey").at("secondaryKey").as_string()) +
                        R"("}}})",
                    {{"If-Match", "\"" + etag + "\""}});
    ASSERT_EQ(upd.status, 200) << upd.body;
    EXPECT_EQ(upd.json.at("status").as_string(), "disabled");
    EXPECT_NE(upd.json.at("etag").as_string(), etag);
    EXPECT_EQ(upd.json.at("generationId").as_string(), generation);
    EXPECT_EQ(upd.json.at("authentication").at("symmetricKey").at("primaryKey").as_string(), key);

    auto after = call(verb::get, "/devices/dev1");
    EXPECT_EQ(after.json.at("status").as_string(), "disabled");
    auto stats = call(verb::get, "/statistics/devices");
    ASSERT_EQ(stats.status, 200);
    expect_json(stats);
    EXPECT_EQ(stats.json.at("totalDeviceCount").as_int64(), 1);
    EXPECT_EQ(stats.json.at("disabledDeviceCount").as_int64(), 1);
    EXPECT_EQ(stats.json.at("enabledDeviceCount").as_int64(), 0);

    auto before = snapshot();
    expect_error(call(verb::put, "/devices/dev1", R"({"deviceId":"dev1","status":"enabled"})", {{"If-Match", "\"" + etag + "\""}}),
                 412, "PreconditionFailed");
    EXPECT_EQ(snapshot(), before);

    // Bare * (C SDK) and quoted * (Node) both update.
    EXPECT_EQ(call(verb::put, "/devices/dev1", R"({"deviceId":"dev1","status":"enabled"})", {{"If-Match", "*"}}).status, 200);
    EXPECT_EQ(call(verb::put, "/devices/dev1", R"({"deviceId":"dev1","status":"enabled"})", {{"If-Match", "\"*\""}}).status, 200);
}

TEST_F(rest, key_regeneration_keeps_ids) {
    auto created = create_device("dev1");
    std::string generation(created.json.at("generationId").as_string());
    const std::string k1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const std::string k2 = "HxwdHhscGRoXGBUWExQREg8QDQ4LDAkKBwgFBgMEAQI=";
    auto upd = call(verb::put, "/devices/dev1",
                    R"({"deviceId":"dev1","authentication":{"type":"sas","symmetricKey":{"primaryKey":")" + k1 +
                        R"(","secondaryKey":")" + k2 + R"("}}})",
                    {{"If-Match", "*"}});
    ASSERT_EQ(upd.status, 200) << upd.body;
    EXPECT_EQ(upd.json.at("authentication").at("symmetricKey").at("primaryKey").as_string(), k1);
    EXPECT_EQ(upd.json.at("deviceId").as_string(), "dev1");
    EXPECT_EQ(upd.json.at("generationId").as_string(), generation);
}

// IoT Hub regenerates the keys of an update that carries empty ones (az iot's live-hub tests reset
// keys with `device-identity update --set authentication.symmetricKey.primaryKey=""`), so Node's
// registry.update({deviceId, status}) resets them; the ids and the etag rules stay as they are.
TEST_F(rest, update_with_empty_keys_generates_new_keys) {
    auto created = create_device("dev1");
    ASSERT_EQ(created.status, 200);
    const auto& ck = created.json.at("authentication").at("symmetricKey");
    for (auto body : {R"({"deviceId":"dev1","status":"disabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}})",
                      R"({"deviceId":"dev1","status":"enabled"})",
                      R"({"deviceId":"dev1","authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null}}})"}) {
        auto before = call(verb::get, "/devices/dev1");
        const auto& bk = before.json.at("authentication").at("symmetricKey");
        auto upd = call(verb::put, "/devices/dev1", body, {{"If-Match", "*"}});
        ASSERT_EQ(upd.status, 200) << body << " " << upd.body;
        const auto& k = upd.json.at("authentication").at("symmetricKey");
        EXPECT_EQ(k.at("primaryKey").as_string().size(), 44u) << body;
        EXPECT_EQ(k.at("secondaryKey").as_string().size(), 44u) << body;
        EXPECT_NE(k.at("primaryKey"), bk.at("primaryKey")) << body;
        EXPECT_NE(k.at("secondaryKey"), bk.at("secondaryKey")) << body;
        EXPECT_NE(k.at("primaryKey"), ck.at("primaryKey")) << body;
        EXPECT_EQ(upd.json.at("generationId"), created.json.at("generationId"));
        EXPECT_EQ(call(verb::get, "/devices/dev1").json.at("authentication"), upd.json.at("authentication"));
    }
    // One empty key: only that one is new.
    auto cur = call(verb::get, "/devices/dev1");
    std::string pk(cur.json.at("authentication").at("symmetricKey").at("primaryKey").as_string());
    auto one = call(verb::put, "/devices/dev1",
                    R"({"deviceId":"dev1","authentication":{"type":"sas","symmetricKey":{"primaryKey":")" + pk +
                        R"(","secondaryKey":""}}})",
                    {{"If-Match", "*"}});
    ASSERT_EQ(one.status, 200) << one.body;
    EXPECT_EQ(one.json.at("authentication").at("symmetricKey").at("primaryKey").as_string(), pk);
    EXPECT_NE(one.json.at("authentication").at("symmetricKey").at("secondaryKey"),
              cur.json.at("authentication").at("symmetricKey").at("secondaryKey"));

    // Modules alike (az iot hub module-identity update --set ...primaryKey="" regenerates).
    auto mod = create_module("dev1", "mod1");
    ASSERT_EQ(mod.status, 200);
    auto mu = call(verb::put, "/devices/dev1/modules/mod1", R"({"deviceId":"dev1","moduleId":"mod1","managedBy":"x"})",
                   {{"If-Match", "*"}});
    ASSERT_EQ(mu.status, 200) << mu.body;
    EXPECT_EQ(mu.json.at("managedBy").as_string(), "x");
    EXPECT_EQ(mu.json.at("authentication").at("symmetricKey").at("primaryKey").as_string().size(), 44u);
    EXPECT_NE(mu.json.at("authentication").at("symmetricKey").at("primaryKey"),
              mod.json.at("authentication").at("symmetricKey").at("primaryKey"));
    // ...and sending the keys back keeps them.
    auto mk = call(verb::put, "/devices/dev1/modules/mod1",
                   R"({"deviceId":"dev1","moduleId":"mod1","authentication":)" +
                       json::serialize(mu.json.at("authentication")) + "}",
                   {{"If-Match", "*"}});
    ASSERT_EQ(mk.status, 200) << mk.body;
    EXPECT_EQ(mk.json.at("authentication"), mu.json.at("authentication"));
}

TEST_F(rest, update_of_missing_device_is_404) {
    expect_error(call(verb::put, "/devices/ghost", R"({"deviceId":"ghost"})", {{"If-Match", "*"}}), 404, "DeviceNotFound");
}

TEST_F(rest, delete_device_then_delete_again_is_404_and_cascades) {
    ASSERT_EQ(create_device("dev1").status, 200);
    ASSERT_EQ(create_module("dev1", "mod1").status, 200);
    auto del = call(verb::delete_, "/devices/dev1", "", {{"If-Match", "\"*\""}});
    EXPECT_EQ(del.status, 204);
    EXPECT_TRUE(del.body.empty());
    expect_error(call(verb::delete_, "/devices/dev1", "", {{"If-Match", "\"*\""}}), 404, "DeviceNotFound");
    expect_error(call(verb::get, "/devices/dev1"), 404, "DeviceNotFound");
    EXPECT_EQ(call(verb::get, "/twins/dev1").status, 404);
    EXPECT_EQ(call(verb::get, "/devices/dev1/modules/mod1").status, 404);
    EXPECT_EQ(call(verb::get, "/twins/dev1/modules/mod1").status, 404);
    // Recreating gives a fresh twin and no modules.
    ASSERT_EQ(create_device("dev1").status, 200);
    auto mods = call(verb::get, "/devices/dev1/modules");
    ASSERT_EQ(mods.status, 200);
    EXPECT_TRUE(mods.json.as_array().empty());
}

TEST_F(rest, list_devices_with_and_without_trailing_slash_and_top) {
    for (auto id : {"a", "b", "c"}) ASSERT_EQ(create_device(id).status, 200);
    auto l1 = call(verb::get, "/devices/?api-version=2021-04-12");
    ASSERT_EQ(l1.status, 200) << l1.body;
    expect_json(l1);
    EXPECT_EQ(l1.json.as_array().size(), 3u);
    auto l2 = call(verb::get, "/devices?top=2&api-version=2020-09-30");
    ASSERT_EQ(l2.status, 200);
    EXPECT_EQ(l2.json.as_array().size(), 2u);
    EXPECT_EQ(call(verb::get, "/devices?top=100000").json.as_array().size(), 3u);
    expect_error(call(verb::get, "/devices?top=abc"), 400, "ArgumentInvalid");
    expect_error(call(verb::get, "/devices?top=-1"), 400, "ArgumentInvalid");
}

TEST_F(rest, any_api_version_value_is_accepted) {
    // Spec 3.1: the SDKs send 2016-11-14 .. 2021-04-12; the hub requires presence only.
    ASSERT_EQ(create_device("dev1").status, 200);
    for (auto v : {"2021-04-12", "2020-09-30", "2019-10-01", "2016-11-14", "1999-01-01", "2021-06-30-preview", "preview"}) {
        EXPECT_EQ(call_as_is(verb::get, std::string("/devices/dev1?api-version=") + v).status, 200) << v;
    }
    EXPECT_EQ(call_as_is(verb::get, "/devices?top=1&api-version=2020-09-30&other=x").status, 200);
}

TEST_F(rest, path_segments_are_percent_decoded_after_splitting) {
    auto r = call(verb::put, "/devices/a%2Bb%3Ac", R"({"authentication":{"type":"sas"}})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json.at("deviceId").as_string(), "a+b:c");
    EXPECT_EQ(call(verb::get, "/devices/a+b:c").status, 200);
    EXPECT_EQ(call(verb::get, "/twins/a%2Bb%3Ac").json.at("deviceId").as_string(), "a+b:c");
}

TEST_F(rest, modules_create_twice_get_list_update_delete) {
    ASSERT_EQ(create_device("dev1").status, 200);
    auto m = create_module("dev1", "mod1");
    ASSERT_EQ(m.status, 200) << m.body;
    expect_json(m);
    EXPECT_EQ(m.json.at("moduleId").as_string(), "mod1");
    EXPECT_EQ(m.json.at("deviceId").as_string(), "dev1");
    EXPECT_EQ(m.json.at("authentication").at("symmetricKey").at("primaryKey").as_string().size(), 44u);
    EXPECT_FALSE(m.header("etag").empty());
    auto before = snapshot();
    expect_error(create_module("dev1", "mod1"), 409, "ModuleAlreadyExistsOnDevice");
    EXPECT_EQ(snapshot(), before);
    ASSERT_EQ(create_module("dev1", "mod2").status, 200);

    auto got = call(verb::get, "/devices/dev1/modules/mod1");
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(got.json.at("etag"), m.json.at("etag"));
    auto list = call(verb::get, "/devices/dev1/modules/?api-version=2021-04-12");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.json.as_array().size(), 2u);

    std::string etag(m.json.at("etag").as_string());
    auto upd = call(verb::put, "/devices/dev1/modules/mod1", R"({"deviceId":"dev1","moduleId":"mod1","managedBy":"x"})",
                    {{"If-Match", "\"" + etag + "\""}});
    ASSERT_EQ(upd.status, 200) << upd.body;
    expect_error(call(verb::put, "/devices/dev1/modules/mod1", R"({"deviceId":"dev1","moduleId":"mod1"})",
                      {{"If-Match", "\"" + etag + "\""}}),
                 412, "PreconditionFailed");

    EXPECT_EQ(call(verb::delete_, "/devices/dev1/modules/mod1", "", {{"If-Match", "\"*\""}}).status, 204);
    expect_error(call(verb::get, "/devices/dev1/modules/mod1"), 404, "ModuleNotFound");
    expect_error(call(verb::delete_, "/devices/dev1/modules/mod1", "", {{"If-Match", "*"}}), 404, "ModuleNotFound");
    expect_error(create_module("ghost", "mod1"), 404, "DeviceNotFound");
    expect_error(call(verb::get, "/devices/ghost/modules"), 404, "DeviceNotFound");
}

TEST_F(rest, device_twin_get_patch_with_etag_and_null_out) {
    ASSERT_EQ(create_device("dev1").status, 200);
    auto t = call(verb::get, "/twins/dev1?api-version=2021-04-12");
    ASSERT_EQ(t.status, 200) << t.body;
    expect_json(t);
    EXPECT_EQ(t.json.at("deviceId").as_string(), "dev1");
    EXPECT_EQ(t.json.at("properties").at("desired").at("$version").as_int64(), 1);
    std::string etag(t.json.at("etag").as_string());
    EXPECT_EQ(t.header("etag"), "\"" + etag + "\"");

    auto p = call(verb::patch, "/twins/dev1", R"({"tags":{"site":"lab"},"properties":{"desired":{"rate":5,"cfg":{"a":1}}}})",
                  {{"If-Match", "\"" + etag + "\""}});
    ASSERT_EQ(p.status, 200) << p.body;
    expect_json(p);
    EXPECT_EQ(p.json.at("tags").at("site").as_string(), "lab");
    EXPECT_EQ(p.json.at("properties").at("desired").at("rate").as_int64(), 5);
    EXPECT_EQ(p.json.at("properties").at("desired").at("$version").as_int64(), 2);
    EXPECT_NE(p.json.at("etag").as_string(), etag);

    auto before = snapshot();
    expect_error(call(verb::patch, "/twins/dev1", R"({"tags":{"x":1}})", {{"If-Match", "\"abc\""}}), 412, "PreconditionFailed");
    expect_error(call(verb::patch, "/twins/dev1", R"({"tags":{"x":1}})", {{"If-Match", "\"" + etag + "\""}}), 412,
                 "PreconditionFailed");
    EXPECT_EQ(snapshot(), before);

    auto nulled = call(verb::patch, "/twins/dev1", R"({"properties":{"desired":null}})", {{"If-Match", "\"*\""}});
    ASSERT_EQ(nulled.status, 200) << nulled.body;
    auto& desired = nulled.json.at("properties").at("desired").as_object();
    EXPECT_FALSE(desired.contains("rate"));
    EXPECT_FALSE(desired.contains("cfg"));
    EXPECT_EQ(desired.at("$version").as_int64(), 3);
    auto untagged = call(verb::patch, "/twins/dev1", R"({"tags":null})", {{"If-Match", "*"}});
    ASSERT_EQ(untagged.status, 200);
    auto* tags = untagged.json.as_object().if_contains("tags");
    EXPECT_TRUE(!tags || tags->as_object().empty());
    EXPECT_EQ(call(verb::get, "/twins/dev1").json.at("properties").at("desired").at("$version").as_int64(), 3);
}

TEST_F(rest, twin_replace_with_put) {
    ASSERT_EQ(create_device("dev1").status, 200);
    ASSERT_EQ(call(verb::patch, "/twins/dev1", R"({"tags":{"a":1,"b":2},"properties":{"desired":{"x":1}}})",
                   {{"If-Match", "*"}}).status, 200);
    auto r = call(verb::put, "/twins/dev1", R"({"tags":{"c":3},"properties":{"desired":{"y":2}}})", {{"If-Match", "*"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json.at("tags").as_object().size(), 1u);
    EXPECT_EQ(r.json.at("tags").at("c").as_int64(), 3);
    EXPECT_FALSE(r.json.at("properties").at("desired").as_object().contains("x"));
    EXPECT_EQ(r.json.at("properties").at("desired").at("y").as_int64(), 2);
}

TEST_F(rest, module_twin_get_and_patch) {
    ASSERT_EQ(create_device("dev1").status, 200);
    ASSERT_EQ(create_module("dev1", "mod1").status, 200);
    auto t = call(verb::get, "/twins/dev1/modules/mod1");
    ASSERT_EQ(t.status, 200) << t.body;
    EXPECT_EQ(t.json.at("moduleId").as_string(), "mod1");
    std::string etag(t.json.at("etag").as_string());
    auto p = call(verb::patch, "/twins/dev1/modules/mod1", R"({"properties":{"desired":{"k":"v"}},"tags":{"t":true}})",
                  {{"If-Match", "\"" + etag + "\""}});
    ASSERT_EQ(p.status, 200) << p.body;
    EXPECT_EQ(p.json.at("properties").at("desired").at("k").as_string(), "v");
    EXPECT_EQ(p.json.at("properties").at("desired").at("$version").as_int64(), 2);
    expect_error(call(verb::patch, "/twins/dev1/modules/mod1", R"({"tags":{"t":1}})", {{"If-Match", "\"" + etag + "\""}}),
                 412, "PreconditionFailed");
    auto nulled = call(verb::patch, "/twins/dev1/modules/mod1", R"({"properties":{"desired":null},"tags":null})",
                       {{"If-Match", "*"}});
    ASSERT_EQ(nulled.status, 200) << nulled.body;
    EXPECT_FALSE(nulled.json.at("properties").at("desired").as_object().contains("k"));
    expect_error(call(verb::get, "/twins/dev1/modules/ghost"), 404, "ModuleNotFound");
}

TEST_F(rest, service_statistics) {
    auto r = call(verb::get, "/statistics/service?api-version=2021-04-12");
    ASSERT_EQ(r.status, 200);
    expect_json(r);
    EXPECT_EQ(r.json.at("connectedDeviceCount").as_int64(), 0);
}

TEST_F(rest, bulk_create_update_delete_with_mixed_case_modes) {
    auto add = call(verb::post, "/devices?api-version=2021-04-12",
                    R"([{"id":"a","importMode":"create","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}},
                        {"id":"b","importMode":"create","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}])");
    ASSERT_EQ(add.status, 200) << add.body;
    expect_json(add);
    EXPECT_EQ(add.json.at("isSuccessful").as_bool(), true);
    EXPECT_TRUE(add.json.at("errors").as_array().empty());
    EXPECT_TRUE(add.json.at("warnings").as_array().empty());
    EXPECT_EQ(call(verb::get, "/devices/a").status, 200);
    EXPECT_EQ(call(verb::get, "/twins/b").status, 200);

    auto upd = call(verb::post, "/devices", R"([{"id":"a","importMode":"Update","status":"disabled"}])");
    ASSERT_EQ(upd.status, 200) << upd.body;
    EXPECT_EQ(call(verb::get, "/devices/a").json.at("status").as_string(), "disabled");

    auto again = call(verb::post, "/devices", R"([{"id":"a","importMode":"create"}])");
    EXPECT_EQ(again.status, 400) << again.body;
    EXPECT_EQ(again.json.at("isSuccessful").as_bool(), false);
    ASSERT_EQ(again.json.at("errors").as_array().size(), 1u);
    EXPECT_EQ(again.json.at("errors").at(0).at("deviceId").as_string(), "a");
    EXPECT_EQ(again.json.at("errors").at(0).at("errorCode").as_string(), "DeviceAlreadyExists");

    auto del = call(verb::post, "/devices", R"([{"id":"a","importMode":"Delete"},{"id":"b","importMode":"DELETE"}])");
    ASSERT_EQ(del.status, 200) << del.body;
    EXPECT_EQ(call(verb::get, "/devices/a").status, 404);
    EXPECT_EQ(call(verb::get, "/devices/b").status, 404);
}

TEST_F(rest, bulk_duplicate_ids_are_device_defined_multiple_times) {
    auto before = snapshot();
    expect_error(call(verb::post, "/devices", R"([{"id":"a","importMode":"create"},{"id":"a","importMode":"create"}])"),
                 400, "DeviceDefinedMultipleTimes");
    EXPECT_EQ(snapshot(), before);
}

TEST_F(rest, bulk_rejects_bad_shapes) {
    auto before = snapshot();
    expect_error(call(verb::post, "/devices", R"({"id":"a"})"), 400, "ArgumentInvalid");
    expect_error(call(verb::post, "/devices", R"([])"), 400, "ArgumentInvalid");
    expect_error(call(verb::post, "/devices", R"([{"id":"a","importMode":"explode"}])"), 400, "ArgumentInvalid");
    expect_error(call(verb::post, "/devices", R"([{"id":5,"importMode":"create"}])"), 400, "ArgumentInvalid");
    expect_error(call(verb::post, "/devices", R"([{"id":"a/b","importMode":"create"}])"), 400, "ArgumentInvalid");
    std::string many = "[";
    for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + R"({"id":"d)" + std::to_string(i) + R"(","importMode":"create"})";
    many += "]";
    expect_error(call(verb::post, "/devices", many), 400, "ArgumentInvalid");
    EXPECT_EQ(snapshot(), before);
}

// ---- the bad-input list: status, error code, and an unchanged store ----

class bad_input : public rest {
protected:
    void SetUp() override {
        rest::SetUp();
        ASSERT_EQ(create_device("dev1").status, 200);
        ASSERT_EQ(create_module("dev1", "mod1").status, 200);
        ASSERT_EQ(call(verb::patch, "/twins/dev1", R"({"tags":{"a":1}})", {{"If-Match", "*"}}).status, 200);
        before_ = snapshot();
    }
    void TearDown() override {
        EXPECT_EQ(snapshot(), before_) << "a rejected request changed the store";
        rest::TearDown();
    }
    std::string before_;
};

TEST_F(bad_input, malformed_json_is_400_with_a_clear_message) {
    for (auto target : {"/devices/dev2", "/twins/dev1", "/devices/dev1/modules/mod2"}) {
        auto method = std::string(target).rfind("/twins", 0) == 0 ? verb::patch : verb::put;
        auto r = call(method, target, R"({"deviceId": "dev2", )");
        expect_error(r, 400, "IotHubFormatError");
        EXPECT_NE(r.body.find("not valid JSON"), std::string::npos) << r.body;
    }
    expect_error(call(verb::post, "/devices", "[{"), 400, "IotHubFormatError");
    expect_error(call(verb::put, "/devices/dev2", ""), 400, "IotHubFormatError");
}

TEST_F(bad_input, wrong_types_are_400_argument_invalid) {
    expect_error(call(verb::put, "/devices/dev2", R"({"deviceId":5})"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev2", R"([1,2])"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev2", R"({"status":7})"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev2", R"({"status":"sleepy"})"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev2", R"({"authentication":{"type":"sas","symmetricKey":{"primaryKey":"not base64!"}}})"),
                 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev2", R"({"deviceId":"other"})"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev1/modules/mod2", R"({"moduleId":"other"})"), 400, "ArgumentInvalid");
    expect_error(call(verb::patch, "/twins/dev1", R"({"tags":5})", {{"If-Match", "*"}}), 400, "ArgumentInvalid");
    expect_error(call(verb::patch, "/twins/dev1", R"({"properties":{"desired":[1]}})", {{"If-Match", "*"}}), 400,
                 "ArgumentInvalid");
    expect_error(call(verb::patch, "/twins/dev1", R"({"properties":{"reported":{"a":1}}})", {{"If-Match", "*"}}), 400,
                 "ArgumentInvalid");
}

TEST_F(bad_input, oversized_body_is_413) {
    std::string big = R"({"tags":{"x":")" + std::string(70 * 1024, 'a') + R"("}})";
    auto r = call(verb::patch, "/twins/dev1", big, {{"If-Match", "*"}});
    expect_error(r, 413, "MessageTooLarge");
    // The connection was closed; the next call works on a new one.
    EXPECT_EQ(call(verb::get, "/twins/dev1").status, 200);
}

TEST_F(bad_input, twin_limits_are_400_argument_invalid) {
    std::string long_string = R"({"tags":{"x":")" + std::string(5000, 'a') + R"("}})";
    expect_error(call(verb::patch, "/twins/dev1", long_string, {{"If-Match", "*"}}), 400, "ArgumentInvalid");
    std::string deep = R"({"properties":{"desired":)";
    for (int i = 0; i < 12; ++i) deep += R"({"a":)";
    deep += "1";
    for (int i = 0; i < 12; ++i) deep += "}";
    deep += "}}";
    expect_error(call(verb::patch, "/twins/dev1", deep, {{"If-Match", "*"}}), 400, "ArgumentInvalid");
    expect_error(call(verb::patch, "/twins/dev1", R"({"tags":{"bad.key":1}})", {{"If-Match", "*"}}), 400,
                 "ArgumentInvalid");
    std::string too_big_desired = R"({"properties":{"desired":{)";
    for (int i = 0; i < 12; ++i) {
        too_big_desired += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":\"" + std::string(3000, 'v') + "\"";
    }
    too_big_desired += "}}}";
    expect_error(call(verb::patch, "/twins/dev1", too_big_desired, {{"If-Match", "*"}}), 400, "ArgumentInvalid");
}

TEST_F(bad_input, invalid_ids_are_400) {
    expect_error(call(verb::put, "/devices/a%2Fb", R"({"deviceId":"a/b"})"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/" + std::string(129, 'x'), "{}"), 400, "ArgumentInvalid");
    expect_error(call(verb::put, "/devices/dev1/modules/" + std::string(129, 'm'), "{}"), 400, "ArgumentInvalid");
    expect_error(call(verb::get, "/devices/a%20b"), 400, "ArgumentInvalid");
    expect_error(call(verb::get, "/twins/a%2Fb"), 400, "ArgumentInvalid");
}

TEST_F(bad_input, unknown_routes_are_404) {
    for (auto t : {"/", "/nothing", "/devices/dev1/other", "/twins", "/statistics/x", "/devices//modules"}) {
        auto r = call(verb::get, t);
        EXPECT_EQ(r.status, t == std::string("/devices//modules") ? 400 : 404) << t << " " << r.body;
        expect_json(r);
    }
    expect_error(call(verb::post, "/devices/query", R"({"query":"SELECT * FROM devices"})"), 404, "NotFound");
}

TEST_F(bad_input, wrong_methods_are_405) {
    expect_error(call(verb::patch, "/devices/dev1", "{}"), 405, "InvalidOperation");
    expect_error(call(verb::delete_, "/twins/dev1"), 405, "InvalidOperation");
    expect_error(call(verb::put, "/devices", "[]"), 405, "InvalidOperation");
    expect_error(call(verb::post, "/statistics/devices"), 405, "InvalidOperation");
    expect_error(call(verb::options, "/devices/dev1"), 405, "InvalidOperation");
    // The 405 says what the resource does allow.
    EXPECT_EQ(call(verb::patch, "/devices/dev1", "{}").header("allow"), "GET, PUT, DELETE");
    EXPECT_EQ(call(verb::delete_, "/twins/dev1").header("allow"), "GET, PATCH, PUT");
    EXPECT_EQ(call(verb::put, "/devices", "[]").header("allow"), "GET, POST");
    // Other errors carry no Allow header.
    EXPECT_EQ(call(verb::get, "/nothing").header("allow"), "");
}

TEST_F(bad_input, missing_api_version_is_400_invalid_protocol_version) {
    // IoT Hub answers 400 InvalidProtocolVersion (400001) when the query has no api-version.
    auto r = call_as_is(verb::get, "/devices/dev1");
    expect_error(r, 400, "InvalidProtocolVersion");
    EXPECT_NE(r.body.find("api-version"), std::string::npos) << r.body;
    expect_error(call_as_is(verb::get, "/devices/dev1?api-version="), 400, "InvalidProtocolVersion");
    expect_error(call_as_is(verb::get, "/devices/dev1?top=1&apiversion=2021-04-12"), 400, "InvalidProtocolVersion");
    // Writes are refused before they reach the store (the fixture checks it is unchanged).
    expect_error(call_as_is(verb::put, "/devices/dev2", new_device_body), 400, "InvalidProtocolVersion");
    expect_error(call_as_is(verb::put, "/devices/dev1", R"({"deviceId":"dev1","status":"disabled"})", {{"If-Match", "*"}}),
                 400, "InvalidProtocolVersion");
    expect_error(call_as_is(verb::patch, "/twins/dev1", R"({"tags":{"a":2}})", {{"If-Match", "*"}}), 400,
                 "InvalidProtocolVersion");
    expect_error(call_as_is(verb::post, "/devices", R"([{"id":"z","importMode":"create"}])"), 400, "InvalidProtocolVersion");
    expect_error(call_as_is(verb::delete_, "/devices/dev1/modules/mod1", "", {{"If-Match", "*"}}), 400,
                 "InvalidProtocolVersion");
    expect_error(call_as_is(verb::get, "/statistics/devices"), 400, "InvalidProtocolVersion");
    // The version is checked after the route and before the credentials.
    expect_error(call_as_is(verb::get, "/nothing"), 404, "NotFound");
    expect_error(call_as_is(verb::patch, "/devices/dev1", "{}"), 405, "InvalidOperation");
    expect_error(call_as_is(verb::get, "/devices/dev1", "", {}, std::nullopt), 400, "InvalidProtocolVersion");
    expect_error(call(verb::get, "/devices/dev1", "", {}, std::nullopt), 401, "IotHubUnauthorizedAccess");
}

TEST_F(bad_input, missing_authorization_is_401) {
    expect_error(call(verb::get, "/devices/dev1", "", {}, std::nullopt), 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::put, "/devices/dev2", new_device_body, {}, std::nullopt), 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::get, "/devices/dev1", "", {}, std::string("Bearer abc")), 401, "IotHubUnauthorizedAccess");
}

TEST_F(bad_input, forged_expired_and_foreign_tokens_are_401) {
    std::string good = token("iothubowner");
    std::string forged = good;
    auto sig = forged.find("sig=") + 4;
    forged[sig] = forged[sig] == 'A' ? 'B' : 'A';
    expect_error(call(verb::put, "/devices/dev2", new_device_body, {}, forged), 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::put, "/devices/dev2", new_device_body, {}, token("iothubowner", -10)), 401,
                 "IotHubUnauthorizedAccess");
    expect_error(call(verb::put, "/devices/dev2", new_device_body, {}, token("iothubowner", 3600, "otherhub.example.com")),
                 401, "IotHubUnauthorizedAccess");
    auto unknown = auth::generate_sas_token("localhost", "dGVzdGtleXRlc3RrZXl0ZXN0a2V5", auth::to_unix_seconds(now()) + 60,
                                            "nobody").value();
    expect_error(call(verb::get, "/devices/dev1", "", {}, unknown), 401, "IotHubUnauthorizedAccess");
}

TEST_F(bad_input, under_privileged_policies_are_401) {
    // registryRead cannot write; service cannot touch the registry; device cannot do anything here.
    expect_error(call(verb::put, "/devices/dev2", new_device_body, {}, token("registryRead")), 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::delete_, "/devices/dev1", "", {{"If-Match", "*"}}, token("registryRead")), 401,
                 "IotHubUnauthorizedAccess");
    expect_error(call(verb::get, "/devices/dev1", "", {}, token("service")), 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::patch, "/twins/dev1", R"({"tags":{"b":1}})", {{"If-Match", "*"}}, token("registryReadWrite")),
                 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::get, "/twins/dev1", "", {}, token("device")), 401, "IotHubUnauthorizedAccess");
    expect_error(call(verb::post, "/devices", R"([{"id":"z","importMode":"create"}])", {}, token("service")), 401,
                 "IotHubUnauthorizedAccess");
    // ...while the right ones work.
    EXPECT_EQ(call(verb::get, "/devices/dev1", "", {}, token("registryRead")).status, 200);
    EXPECT_EQ(call(verb::get, "/twins/dev1", "", {}, token("service")).status, 200);
}

// ---- connection behaviour ----

TEST_F(rest, keep_alive_serves_many_requests_on_one_connection) {
    ASSERT_EQ(create_device("dev1").status, 200);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(call(verb::get, "/twins/dev1").status, 200);
    expect_error(call(verb::get, "/devices/ghost"), 404, "DeviceNotFound");
    EXPECT_EQ(call(verb::get, "/devices/dev1").status, 200);
    EXPECT_EQ(client_->connections(), 1);
}

TEST_F(rest, tls_serves_tls13_and_tls12_aead_and_refuses_cbc) {
    // The REST head (and the WebSocket upgrade behind it) uses the hub's policy (src/server/server_tls).
    auto restricted = [](int version, const char* ciphers) {
        auto ctx = make_client_context(cert());
        SSL_CTX_set_min_proto_version(ctx.native_handle(), version);
        SSL_CTX_set_max_proto_version(ctx.native_handle(), version);
        if (ciphers) EXPECT_EQ(SSL_CTX_set_cipher_list(ctx.native_handle(), ciphers), 1);
        return ctx;
    };
    auto cbc_ctx = restricted(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:AES128-SHA");
    client cbc(server_->port(), cbc_ctx);
    EXPECT_THROW(cbc.connect(), boost::system::system_error);

    for (auto suite : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
        auto ctx = restricted(TLS1_2_VERSION, suite);
        client c(server_->port(), ctx);
        c.connect();
        EXPECT_STREQ(SSL_CIPHER_get_name(SSL_get_current_cipher(c.raw()->native_handle())), suite);
        bhttp::request<bhttp::string_body> req{verb::get, "/statistics/service?api-version=2021-04-12", 11};
        req.set(bhttp::field::authorization, token("iothubowner"));
        EXPECT_EQ(c.request(std::move(req)).status, 200) << suite;
    }
    auto v13 = restricted(TLS1_3_VERSION, nullptr);
    client c13(server_->port(), v13);
    c13.connect();
    EXPECT_STREQ(SSL_get_version(c13.raw()->native_handle()), "TLSv1.3");
}

TEST_F(rest, connection_close_is_honoured) {
    auto r = call(verb::get, "/statistics/service", "", {{"Connection", "close"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(call(verb::get, "/statistics/service").status, 200);
    EXPECT_EQ(client_->connections(), 2);
}

TEST_F(rest, expect_100_continue_is_answered_before_the_body) {
    client_->connect();
    auto& s = *client_->raw();
    const std::string body = R"({"deviceId":"dev1"})";
    const std::string head = "PUT /devices/dev1?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nAuthorization: " +
                             token("iothubowner") + "\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n";
    asio::write(s, asio::buffer(head));
    beast::flat_buffer b;
    bhttp::response<bhttp::string_body> interim;
    bhttp::read(s, b, interim);
    EXPECT_EQ(interim.result(), bhttp::status::continue_);
    asio::write(s, asio::buffer(body));
    bhttp::response<bhttp::string_body> final_res;
    bhttp::read(s, b, final_res);
    EXPECT_EQ(final_res.result_int(), 200u) << final_res.body();
}

TEST_F(rest, announced_oversize_body_is_refused_before_it_is_sent) {
    client_->connect();
    auto& s = *client_->raw();
    const std::string head = "PUT /devices/dev1?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nAuthorization: " +
                             token("iothubowner") +
                             "\r\nContent-Length: 100000000\r\n\r\n";
    asio::write(s, asio::buffer(head));
    beast::flat_buffer b;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, b, res);
    EXPECT_EQ(res.result_int(), 413u);
    EXPECT_EQ(res["iothub-errorcode"], "MessageTooLarge");
    EXPECT_EQ(snapshot(), "[]");
}

TEST_F(rest, many_concurrent_clients) {
    ASSERT_EQ(create_device("dev1").status, 200);
    const unsigned short port = server_->port();
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    const std::string tok = token("iothubowner");
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            client c(port, client_tls_);
            for (int i = 0; i < 10; ++i) {
                bhttp::request<bhttp::string_body> req{i % 2 ? verb::get : verb::patch, "/twins/dev1?api-version=2021-04-12", 11};
                req.set(bhttp::field::authorization, tok);
                req.set(bhttp::field::if_match, "*");
                if (i % 2 == 0) req.body() = R"({"properties":{"desired":{"t)" + std::to_string(t) + R"(":)" + std::to_string(i) + "}}}";
                if (c.request(std::move(req)).status == 200) ++ok;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 160);
    // 16 clients x 5 patches each, every one a desired write.
    EXPECT_EQ(call(verb::get, "/twins/dev1").json.at("properties").at("desired").at("$version").as_int64(), 81);
}

TEST_F(rest, idle_connection_is_closed_after_the_read_timeout) {
    TearDown();
    ioc_.restart();
    guard_.emplace(asio::make_work_guard(ioc_));
    https_options o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.read_timeout = std::chrono::seconds(1);
    store_ = store::make_memory_store();
    hub_ = std::move(*service::hub_service::open(*store_, {}));
    server_ = std::make_unique<https_server>(ioc_, server_tls_, *hub_, o, nullptr);
    ASSERT_TRUE(server_->start());
    thread_ = std::thread([this] { ioc_.run(); });
    client c(server_->port(), client_tls_);
    c.connect();
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    char byte;
    beast::error_code ec;
    c.raw()->read_some(asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec) << "the server kept an idle connection open past its read timeout";
}

TEST_F(rest, stop_closes_open_sessions) {
    client c(server_->port(), client_tls_);
    c.connect();
    server_->stop();
    char byte;
    beast::error_code ec;
    c.raw()->read_some(asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec);
}

TEST(https_server_start, taken_port_fails_naming_the_port_and_the_flag) {
    asio::io_context ioc;
    auto st = store::make_memory_store();
    auto hub = std::move(*service::hub_service::open(*st, {}));
    auto tls = make_server_context(shared_certificate());
    https_options o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    https_server first(ioc, tls, *hub, o, nullptr);
    ASSERT_TRUE(first.start());
    o.port = first.port();
    https_server second(ioc, tls, *hub, o, nullptr);
    auto r = second.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(std::to_string(o.port)), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("--https-port"), std::string::npos) << r.error().message;
    o.bind_address = "not-an-ip";
    https_server third(ioc, tls, *hub, o, nullptr);
    auto bad = third.start();
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    first.stop();
    st->close();
}

// ---- WebSocket hand-off on port 443 ----

namespace {

namespace websocket = boost::beast::websocket;

// Plays the MQTT head: accepts the upgrade with subprotocol mqtt and echoes one binary message.
void echo_once(net::tls_stream&& stream, net::upgrade_request&& req) {
    auto ws = std::make_shared<websocket::stream<net::tls_stream>>(std::move(stream));
    ws->set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(bhttp::field::sec_websocket_protocol, "mqtt");
    }));
    auto buf = std::make_shared<beast::flat_buffer>();
    ws->async_accept(req, [ws, buf](beast::error_code ec) {
        if (ec) return;
        ws->async_read(*buf, [ws, buf](beast::error_code ec, std::size_t) {
            if (ec) return;
            ws->binary(true);
            ws->async_write(buf->data(), [ws, buf](beast::error_code, std::size_t) {});
        });
    });
}

}  // namespace

class websocket_handoff : public hub_fixture {
protected:
    void SetUp() override { start_server(echo_once); }
};

TEST_F(websocket_handoff, mqtt_upgrade_reaches_the_handler) {
    asio::io_context io;
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, client_tls_);
    SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost");
    beast::get_lowest_layer(ws).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    ws.next_layer().handshake(asio::ssl::stream_base::client);
    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(bhttp::field::sec_websocket_protocol, "mqtt");
    }));
    websocket::response_type res;
    ws.handshake(res, "localhost", "/$iothub/websocket");
    EXPECT_EQ(res[bhttp::field::sec_websocket_protocol], "mqtt");
    ws.binary(true);
    const std::string connect_packet("\x10\x02\x00\x00", 4);
    ws.write(asio::buffer(connect_packet));
    beast::flat_buffer b;
    ws.read(b);
    EXPECT_EQ(beast::buffers_to_string(b.data()), connect_packet);
}

TEST_F(websocket_handoff, upgrade_elsewhere_or_with_another_subprotocol_is_404) {
    testing::internal::CaptureStderr();
    for (auto [path, proto] : {std::pair{"/devices", "mqtt"}, std::pair{"/$iothub/websocket", "AMQPWSB10"}}) {
        bhttp::request<bhttp::string_body> req{verb::get, path, 11};
        req.set(bhttp::field::connection, "Upgrade");
        req.set(bhttp::field::upgrade, "websocket");
        req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
        req.set(bhttp::field::sec_websocket_version, "13");
        req.set(bhttp::field::sec_websocket_protocol, proto);
        auto r = client_->request(std::move(req));
        EXPECT_EQ(r.status, 404) << path << " " << proto;
    }
    // Issue 12 item 7: an operator sees which subprotocol a client asked for and was refused.
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("info http.websocket_refused subprotocol=AMQPWSB10 path=/$iothub/websocket"), std::string::npos)
        << log;
    EXPECT_NE(log.find("info http.websocket_refused subprotocol=mqtt path=/devices"), std::string::npos) << log;
}

namespace {
bhttp::request<bhttp::string_body> mqtt_upgrade() {
    bhttp::request<bhttp::string_body> req{verb::get, "/$iothub/websocket", 11};
    req.set(bhttp::field::connection, "Upgrade");
    req.set(bhttp::field::upgrade, "websocket");
    req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(bhttp::field::sec_websocket_version, "13");
    req.set(bhttp::field::sec_websocket_protocol, "mqtt");
    return req;
}
}  // namespace

// Regression (issue 12 item 7): a head that threw while taking over an upgraded connection let the
// exception out of the Asio handler, which ended the I/O thread (and with it port 443).
class websocket_handoff_throws : public hub_fixture {
protected:
    void SetUp() override {
        start_server([this](net::tls_stream&&, net::upgrade_request&&) {
            ++calls_;
            throw std::runtime_error("the head could not take the connection");
        });
    }
    std::atomic<int> calls_{0};
};

TEST_F(websocket_handoff_throws, only_that_connection_is_lost_and_the_port_keeps_serving) {
    testing::internal::CaptureStderr();
    for (int round = 0; round < 3; ++round) {
        client c(server_->port(), client_tls_);
        c.connect();
        auto req = mqtt_upgrade();
        req.set(bhttp::field::host, "localhost");
        bhttp::write(*c.raw(), req);
        beast::flat_buffer b;
        bhttp::response<bhttp::string_body> res;
        beast::error_code ec;
        bhttp::read(*c.raw(), b, res, ec);
        EXPECT_TRUE(ec) << "the connection closes without an answer";
    }
    EXPECT_EQ(calls_, 3);
    EXPECT_EQ(call(verb::get, "/devices").status, 200) << "the port still serves REST";
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("warn http.websocket_handoff_failed subprotocol=mqtt error=\"the head could not take the connection\""),
              std::string::npos)
        << log;
}

// A client that fails the TLS handshake (garbage, or a reset) loses only its own connection.
TEST_F(rest, garbage_and_reset_tls_handshakes_leave_the_port_serving) {
    for (int round = 0; round < 5; ++round) {
        asio::io_context io;
        asio::ip::tcp::socket s(io);
        s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
        if (round % 2 == 0) {
            const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\xff\xff garbage";
            asio::write(s, asio::buffer(garbage));
            char buf[512];
            beast::error_code ec;
            s.read_some(asio::buffer(buf), ec);  // an alert or EOF, then the hub closes
        } else {
            s.set_option(asio::socket_base::linger(true, 0));  // close sends RST
        }
        s.close();
    }
    EXPECT_EQ(call(verb::get, "/devices").status, 200);
}

TEST_F(rest, upgrade_without_a_handler_is_404) {
    bhttp::request<bhttp::string_body> req{verb::get, "/$iothub/websocket", 11};
    req.set(bhttp::field::connection, "Upgrade");
    req.set(bhttp::field::upgrade, "websocket");
    req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(bhttp::field::sec_websocket_version, "13");
    req.set(bhttp::field::sec_websocket_protocol, "mqtt");
    EXPECT_EQ(client_->request(std::move(req)).status, 404);
}
