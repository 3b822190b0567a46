#include "http/route.hpp"

#include "auth/shared_access_policy.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::http;

namespace {
std::vector<std::string> segs(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }
}  // namespace

TEST(route, devices_collection_get_and_post) {
    auto g = match_route("GET", segs({"devices"}));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->kind, route_kind::devices);
    auto p = match_route("POST", segs({"devices"}));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->method, http_method::post);
}

TEST(route, device_module_and_twin_routes_carry_ids) {
    auto d = match_route("PUT", segs({"devices", "d 1/x"}));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->kind, route_kind::device);
    EXPECT_EQ(d->device_id, "d 1/x");
    auto m = match_route("DELETE", segs({"devices", "d1", "modules", "m1"}));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, route_kind::module);
    EXPECT_EQ(m->module_id, "m1");
    auto ms = match_route("GET", segs({"devices", "d1", "modules"}));
    ASSERT_TRUE(ms);
    EXPECT_EQ(ms->kind, route_kind::modules);
    auto t = match_route("PATCH", segs({"twins", "d1"}));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->kind, route_kind::twin);
    auto mt = match_route("PUT", segs({"twins", "d1", "modules", "m1"}));
    ASSERT_TRUE(mt);
    EXPECT_EQ(mt->kind, route_kind::module_twin);
    EXPECT_EQ(match_route("GET", segs({"statistics", "devices"}))->kind, route_kind::registry_statistics);
    EXPECT_EQ(match_route("GET", segs({"statistics", "service"}))->kind, route_kind::service_statistics);
}

TEST(route, unknown_path_is_not_found) {
    for (auto s : {segs({}), segs({"nope"}), segs({"devices", "d", "x"}), segs({"twins"}),
                   segs({"statistics", "other"}), segs({"devices", "d", "modules", "m", "x"})}) {
        auto r = match_route("GET", s);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, errc::not_found);
    }
}

TEST(route, devices_query_is_post_only_and_needs_service_connect) {
    auto q = match_route("POST", segs({"devices", "query"}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->kind, route_kind::devices_query);
    EXPECT_EQ(required_permission(*q), auth::service_connect);
    auto g = match_route("GET", segs({"devices", "query"}));  // GET /devices/query is device "query"
    ASSERT_TRUE(g);
    EXPECT_EQ(g->kind, route_kind::device);
}

TEST(route, direct_methods_are_post_only_and_need_service_connect) {
    auto d = match_route("POST", segs({"twins", "d1", "methods"}));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->kind, route_kind::device_methods);
    EXPECT_EQ(d->device_id, "d1");
    EXPECT_EQ(required_permission(*d), auth::service_connect);
    auto m = match_route("POST", segs({"twins", "d1", "modules", "m1", "methods"}));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, route_kind::module_methods);
    EXPECT_EQ(m->module_id, "m1");
    auto g = match_route("GET", segs({"twins", "d1", "methods"}));
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().code, errc::method_not_allowed);
}

TEST(route, wrong_method_is_method_not_allowed) {
    for (auto [m, s] : {std::pair{"PATCH", segs({"devices", "d1"})}, std::pair{"DELETE", segs({"twins", "d1"})},
                        std::pair{"PUT", segs({"devices"})}, std::pair{"POST", segs({"statistics", "devices"})},
                        std::pair{"HEAD", segs({"devices", "d1"})}}) {
        auto r = match_route(m, s);
        ASSERT_FALSE(r) << m;
        EXPECT_EQ(r.error().code, errc::method_not_allowed);
    }
}

TEST(route, permissions_follow_spec_2_6) {
    using namespace twinhub::auth;
    EXPECT_EQ(required_permission(*match_route("GET", segs({"devices", "d"}))), registry_read);
    EXPECT_EQ(required_permission(*match_route("GET", segs({"devices"}))), registry_read);
    EXPECT_EQ(required_permission(*match_route("PUT", segs({"devices", "d"}))), registry_write);
    EXPECT_EQ(required_permission(*match_route("DELETE", segs({"devices", "d", "modules", "m"}))), registry_write);
    EXPECT_EQ(required_permission(*match_route("POST", segs({"devices"}))), registry_write);
    EXPECT_EQ(required_permission(*match_route("PATCH", segs({"twins", "d"}))), service_connect);
    EXPECT_EQ(required_permission(*match_route("GET", segs({"twins", "d"}))), service_connect | registry_read);
    EXPECT_EQ(required_permission(*match_route("GET", segs({"statistics", "service"}))), service_connect);
    EXPECT_EQ(required_permission(*match_route("GET", segs({"statistics", "devices"}))), registry_read);
}

TEST(route, c2d_routes_for_devices_and_modules) {
    auto p = match_route("DELETE", segs({"devices", "d1", "commands"}));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, route_kind::c2d_purge);
    EXPECT_EQ(p->device_id, "d1");
    EXPECT_TRUE(p->module_id.empty());
    EXPECT_EQ(required_permission(*p), auth::service_connect);
    auto mp = match_route("DELETE", segs({"devices", "d1", "modules", "m1", "commands"}));
    ASSERT_TRUE(mp);
    EXPECT_EQ(mp->kind, route_kind::c2d_purge);
    EXPECT_EQ(mp->module_id, "m1");

    // Node spells it devicebound, the C SDK and the docs deviceBound.
    for (const char* spelling : {"devicebound", "deviceBound"}) {
        auto r = match_route("GET", segs({"devices", "d1", "messages", spelling}));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->kind, route_kind::c2d_receive);
        EXPECT_TRUE(is_device_route(r->kind));
    }
    auto c = match_route("DELETE", segs({"devices", "d1", "messages", "devicebound", "tok-1"}));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->kind, route_kind::c2d_settle);
    EXPECT_EQ(c->lock_token, "tok-1");
    auto a = match_route("POST", segs({"devices", "d1", "modules", "m1", "messages", "deviceBound", "tok-2", "abandon"}));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->kind, route_kind::c2d_abandon);
    EXPECT_EQ(a->module_id, "m1");
    EXPECT_EQ(a->lock_token, "tok-2");
    EXPECT_FALSE(is_device_route(route_kind::c2d_purge));
}

TEST(route, c2d_routes_refuse_other_methods_and_paths) {
    std::string_view allow;
    auto r = match_route("POST", segs({"devices", "d1", "messages", "devicebound"}), &allow);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::method_not_allowed);
    EXPECT_EQ(allow, "GET");
    EXPECT_EQ(match_route("GET", segs({"devices", "d1", "commands"})).error().code, errc::method_not_allowed);
    EXPECT_EQ(match_route("POST", segs({"devices", "d1", "messages", "devicebound", "t", "complete"})).error().code,
              errc::not_found);
    EXPECT_EQ(match_route("GET", segs({"devices", "d1", "messages", "elsewhere"})).error().code, errc::not_found);
}

TEST(route, certificate_routes_need_registry_write) {
    auto l = match_route("GET", segs({"certificates"}));
    ASSERT_TRUE(l);
    EXPECT_EQ(l->kind, route_kind::certificates);
    auto c = match_route("PUT", segs({"certificates", "root-1"}));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->kind, route_kind::certificate);
    EXPECT_EQ(c->lock_token, "root-1");
    auto g = match_route("POST", segs({"certificates", "r", "generateVerificationCode"}));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->kind, route_kind::certificate_code);
    auto v = match_route("POST", segs({"certificates", "r", "verify"}));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->kind, route_kind::certificate_verify);
    EXPECT_FALSE(is_device_route(v->kind));
    for (const auto& r : {*l, *c, *g, *v}) EXPECT_EQ(required_permission(r), auth::permission::registry_write);
    std::string_view allow;
    auto bad = match_route("PATCH", segs({"certificates", "r"}), &allow);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::method_not_allowed);
    EXPECT_EQ(allow, "GET, PUT, DELETE");
    EXPECT_FALSE(match_route("GET", segs({"certificates", "r", "other"})));
}

TEST(route, import_export_job_routes_are_apart_from_jobs_v2) {
    auto create = match_route("POST", segs({"jobs", "create"}));
    ASSERT_TRUE(create);
    EXPECT_EQ(create->kind, route_kind::ie_job_create);
    EXPECT_EQ(required_permission(*create), auth::permission::registry_write);
    auto list = match_route("GET", segs({"jobs"}));
    ASSERT_TRUE(list);
    EXPECT_EQ(list->kind, route_kind::ie_jobs);
    EXPECT_EQ(required_permission(*list), auth::permission::registry_read);
    auto get = match_route("GET", segs({"jobs", "0b6c-1"}));
    ASSERT_TRUE(get);
    EXPECT_EQ(get->kind, route_kind::ie_job);
    EXPECT_EQ(get->lock_token, "0b6c-1");
    auto cancel = match_route("DELETE", segs({"jobs", "0b6c-1"}));
    ASSERT_TRUE(cancel);
    EXPECT_EQ(required_permission(*cancel), auth::permission::registry_write);
    auto v2 = match_route("GET", segs({"jobs", "v2", "j1"}));
    ASSERT_TRUE(v2);
    EXPECT_EQ(v2->kind, route_kind::job);
    std::string_view allow;
    auto bad = match_route("GET", segs({"jobs", "create"}), &allow);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::method_not_allowed);
    EXPECT_EQ(allow, "POST");
}
