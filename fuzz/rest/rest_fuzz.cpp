// Fuzzes the REST request path through the real handlers: a Beast request built from the input goes
// through http::to_rest_request (what the HTTPS session does) into http::rest_api::handle over a
// hub_service on the memory store, with the query engine, the direct-method router and the C2D
// service attached, as twinhubd runs them. The input is decoded structurally (fuzz/support/input_reader.hpp):
// method, a route template with known or fuzzed ids, an Authorization choice (mostly a valid SAS
// token of a policy or of the identity, so the handlers are reached), If-Match (often the current
// etag), query string, headers; the rest of the input is the body.
//
// Properties: no crash or sanitizer report; `done` runs exactly once per request; every status is
// 2xx/4xx, or 504 from a direct method (or PnP command) that timed out (the only 5xx the REST head documents); an
// error response has the IoT Hub error JSON ({"Message":"ErrorCode:<Name>;...","ExceptionMessage":..}
// with a matching iothub-errorcode header, or the direct-method form whose Message holds a JSON
// object); a 200 from any route except C2D receive is JSON; 204 has no body.
//
// State accumulates across inputs (that is how sequences reach deep handlers) and is reset every
// `reset_every` inputs or when the registry grows past `max_devices`.
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "http/beast_request.hpp"
#include "http/request_target.hpp"
#include "http/rest_api.hpp"
#include "http/route.hpp"
#include "methods/method_router.hpp"
#include "query/query_engine.hpp"
#include "registry/identity.hpp"
#include "service/c2d_service.hpp"
#include "service/file_upload_service.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include "support/input_reader.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace twinhub;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr const char* host = "localhost";
constexpr std::size_t reset_every = 2000;
constexpr std::size_t max_devices = 64;

[[noreturn]] void fail(const char* what, int status, const std::string& body) {
    std::fprintf(stderr, "rest_fuzz property violated: %s (status %d, body %.300s)\n", what, status, body.c_str());
    std::abort();
}

template <class T>
T wait(std::function<void(service::handler<T>)> start) {
    std::promise<result<T>> p;
    start([&p](result<T> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    if (!r) {
        std::fprintf(stderr, "rest_fuzz setup failed: %s\n", r.error().message.c_str());
        std::abort();
    }
    if constexpr (!std::is_void_v<T>) return std::move(*r);
}

// File upload's storage, answered at once (the fuzzed part is the REST head and the service).
struct instant_storage final : service::storage_client {
    void create_container(std::string, service::handler<void> done) override { done(result<void>{}); }
    void blob_properties_of(std::string url, service::handler<service::blob_properties> done) override {
        if (url.find("missing") != std::string::npos) return done(error{errc::connection_failed, "no such blob"});
        done(service::blob_properties{url.size(), "2030-01-02T03:04:05+00:00"});
    }
    void get_blob(std::string, service::handler<std::string> done) override {
        done(error{errc::not_found, "no such blob"});
    }
    void put_blob(std::string, std::string, service::handler<void> done) override { done(result<void>{}); }
    void probe_blob(std::string, service::handler<answer> done) override { done(answer{404, "BlobNotFound"}); }
};

// Records the calls the router hands to devices; the fuzz loop answers them afterwards (deliver
// must not call the router).
struct recording_channel final : methods::method_channel {
    std::mutex mu;
    std::vector<std::pair<store::identity_key, methods::method_call>> calls;
    bool online = true;
    result<std::uint64_t> deliver(const store::identity_key& id, methods::method_call call) override {
        std::lock_guard lock(mu);
        if (!online) return error{errc::device_not_online, "offline"};
        calls.emplace_back(id, std::move(call));
        return std::uint64_t{7};
    }
};

struct hub {
    boost::asio::io_context ioc;
    std::unique_ptr<store::store> store = store::make_memory_store();
    std::unique_ptr<service::hub_service> svc;
    std::unique_ptr<service::c2d_service> c2d;
    std::unique_ptr<query::query_engine> queries;
    recording_channel channel;
    std::unique_ptr<methods::method_router> router;
    instant_storage storage;
    std::unique_ptr<service::file_upload_service> files;
    std::unique_ptr<http::rest_api> api;
    std::string last_lock_token;

    hub() {
        auto h = service::hub_service::open(*store, service::hub_options{});
        if (!h) std::abort();
        svc = std::move(*h);
        service::c2d_options co;
        co.sweep_interval = std::chrono::milliseconds(0);
        auto c = service::c2d_service::open(*store, *svc, co);
        if (!c) std::abort();
        c2d = std::move(*c);
        queries = std::make_unique<query::query_engine>(svc->twins());
        router = std::make_unique<methods::method_router>(ioc);
        router->set_channel(&channel);
        api = std::make_unique<http::rest_api>(*svc, std::vector<std::string>{host}, router.get(), queries.get(), c2d.get());
        {
            service::file_upload_options fo;
            fo.storage = *service::parse_storage_connection_string(
                "AccountName=fuzz;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                "BlobEndpoint=https://127.0.0.1:1/fuzz",
                "fileupload");
            fo.client = &storage;
            fo.sweep_interval = std::chrono::milliseconds(0);
            auto f = service::file_upload_service::open(*svc, fo);
            if (!f) std::abort();
            files = std::move(*f);
            api->set_file_upload(files.get());
        }

        for (const char* d : {"dev1", "dev2", "dev3"}) {
            registry::device_identity req;
            req.device_id = d;
            if (std::string_view(d) == "dev3") req.status = registry::device_status::disabled;
            wait<registry::device_identity>([&](auto cb) { svc->create_device(req, std::move(cb)); });
        }
        registry::module_identity m;
        m.device_id = "dev1";
        m.module_id = "mod1";
        wait<registry::module_identity>([&](auto cb) { svc->create_module(m, std::move(cb)); });
        wait<json::object>([&](auto cb) {
            svc->patch_twin({"dev1", ""}, json::parse(R"({"tags":{"site":"a"},"properties":{"desired":{"x":1}}})"), "",
                            std::move(cb));
        });
        for (const store::identity_key& k : {store::identity_key{"dev1", ""}, store::identity_key{"dev1", "mod1"}}) {
            service::c2d_outgoing o;
            o.body = "hello";
            o.message_id = "m1";
            wait<std::uint64_t>([&](auto cb) { c2d->send(k, o, std::move(cb)); });
        }
    }
    ~hub() {
        router->stop();
        ioc.poll();
        api.reset();
        files.reset();
        queries.reset();
        c2d.reset();
        svc.reset();
        store->close();
    }

    std::string policy_token(std::string_view name, std::int64_t lifetime) const {
        for (const auto& p : svc->policies())
            if (p.key_name == name)
                return auth::generate_sas_token(host, p.primary_key, auth::to_unix_seconds(now()) + lifetime, name).value();
        return "SharedAccessSignature sr=localhost&sig=x&se=1&skn=" + std::string(name);
    }
    std::string identity_token(const store::identity_key& id, bool secondary) const {
        auto creds = svc->credentials(id);
        if (!creds) return "SharedAccessSignature sr=x&sig=y&se=1";
        const auto& k = creds->authentication.symmetric_key;
        auto t = auth::generate_sas_token(percent_encode(auth::identity_resource(host, id.device_id, id.module_id)),
                                          secondary ? k.secondary_key : k.primary_key,
                                          auth::to_unix_seconds(now()) + 3600);
        return t ? *t : std::string("SharedAccessSignature sr=x&sig=y&se=1");
    }
    std::string etag_of(const store::identity_key& id, bool twin) const {
        if (twin) {
            auto t = svc->get_twin(id);
            if (t) {
                if (auto* e = t->if_contains("etag"); e && e->is_string()) return "\"" + std::string(e->get_string()) + "\"";
            }
            return "\"AAAAAAAAAAE=\"";
        }
        if (id.module_id.empty()) {
            auto d = svc->get_device(id.device_id);
            return d ? "\"" + registry::etag_to_string(d->etag) + "\"" : "\"MA==\"";
        }
        auto m = svc->get_module(id.device_id, id.module_id);
        return m ? "\"" + registry::etag_to_string(m->etag) + "\"" : "\"MA==\"";
    }
};

std::unique_ptr<hub> g_hub;
std::size_t g_inputs = 0;

std::string pick_id(fuzz::input_reader& in, bool module) {
    static const char* devices[] = {"dev1", "dev2", "dev3", "newdev", "dev%201", "missing"};
    static const char* modules[] = {"mod1", "mod2", "newmod", "$edgeAgent"};
    const unsigned c = in.range<unsigned>(0, 7);
    if (c == 7) return in.str(24);  // raw, may hold %-escapes and '/'
    return module ? modules[c % 4] : devices[c % 6];
}

// A decoded id as the route will see it (the fuzz inputs use only "%20" among escapes).
std::string decoded(std::string s) {
    if (auto p = s.find("%20"); p != std::string::npos) s.replace(p, 3, " ");
    return s;
}

struct outcome {
    std::mutex mu;
    std::condition_variable cv;
    int calls = 0;
    http::rest_response res;
};

void check(const http::rest_response& r, const std::optional<http::route>& route, const std::string& method) {
    const int s = r.status;
    const bool method_route =
        route && (route->kind == http::route_kind::device_methods || route->kind == http::route_kind::module_methods ||
                  route->kind == http::route_kind::digital_twin_command);  // a PnP command is a direct method
    if (s < 200 || s > 599) fail("status out of range", s, r.body);
    if (s >= 500 && !(s == 504 && method_route)) fail("undocumented 5xx", s, r.body);
    if (s == 204) {
        if (!r.body.empty()) fail("204 with a body", s, r.body);
        return;
    }
    const bool c2d_message = route && route->kind == http::route_kind::c2d_receive && s == 200;
    if (c2d_message) return;  // the message body as sent
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec) fail("response body is not JSON", s, r.body);
    if (s < 400) return;
    // POST /devices (bulk) answers a partial failure with its own result document.
    if (route && route->kind == http::route_kind::devices && method == "POST" && v.is_object() &&
        v.as_object().contains("isSuccessful"))
        return;
    if (!v.is_object()) fail("error body is not an object", s, r.body);
    const auto* m = v.as_object().if_contains("Message");
    if (!m || !m->is_string() || !v.as_object().contains("ExceptionMessage")) fail("error body shape", s, r.body);
    const std::string* code = r.header("iothub-errorcode");
    if (!code || code->empty()) fail("error without iothub-errorcode", s, r.body);
    std::string_view msg = m->get_string();
    if (msg.starts_with("ErrorCode:")) {
        auto semi = msg.find(';');
        if (semi == std::string_view::npos || msg.substr(10, semi - 10) != *code) fail("ErrorCode/header mismatch", s, r.body);
        return;
    }
    // The direct-method form: Message is itself a JSON object with errorCode and message.
    auto inner = json::parse(msg, ec);
    if (ec || !method_route || !inner.is_object() || !inner.as_object().contains("errorCode"))
        fail("error Message neither ErrorCode:<Name>; nor the method form", s, r.body);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::set_level(log::level::error);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (!g_hub || ++g_inputs % reset_every == 0 || g_hub->svc->statistics().total_device_count > std::int64_t(max_devices))
        g_hub.reset(), g_hub = std::make_unique<hub>();
    hub& h = *g_hub;
    fuzz::input_reader in(data, size);

    static const char* methods[] = {"GET", "PUT", "PATCH", "POST", "DELETE"};
    const unsigned mc = in.range<unsigned>(0, 5);
    std::string method = mc < 5 ? methods[mc] : in.str(8);

    const std::string d = pick_id(in, false);
    const std::string m = pick_id(in, true);
    std::string lock_token = in.flag() ? h.last_lock_token : in.str(40);
    std::string path;
    bool module_scoped = false;
    bool twin_path = false;
    switch (in.range<unsigned>(0, 25)) {
    case 0: path = "/devices"; break;
    case 1: path = "/devices/" + d; break;
    case 2: path = "/devices/" + d + "/modules"; break;
    case 3: path = "/devices/" + d + "/modules/" + m, module_scoped = true; break;
    case 4: path = "/twins/" + d, twin_path = true; break;
    case 5: path = "/twins/" + d + "/modules/" + m, module_scoped = twin_path = true; break;
    case 6: path = "/statistics/devices"; break;
    case 7: path = "/statistics/service"; break;
    case 8: path = "/twins/" + d + "/methods"; break;
    case 9: path = "/twins/" + d + "/modules/" + m + "/methods", module_scoped = true; break;
    case 10: path = "/devices/query"; break;
    case 11: path = "/devices/" + d + "/commands"; break;
    case 12: path = "/devices/" + d + "/modules/" + m + "/commands", module_scoped = true; break;
    case 13: path = "/devices/" + d + "/messages/deviceBound"; break;
    case 14: path = "/devices/" + d + "/modules/" + m + "/messages/deviceBound", module_scoped = true; break;
    case 15: path = "/devices/" + d + "/messages/deviceBound/" + lock_token; break;
    case 16: path = "/devices/" + d + "/messages/deviceBound/" + lock_token + "/abandon"; break;
    case 17: path = "/devices/" + d + "/messages/events"; break;
    case 18: path = "/devices/" + d + "/modules/" + m + "/messages/events", module_scoped = true; break;
    case 19: path = "/devices/" + d + "/files"; break;
    case 20: path = "/devices/" + d + "/files/notifications"; break;
    case 21: path = "/devices/" + d + "/files/notifications/" + lock_token; break;
    case 22: path = "/digitaltwins/" + d, twin_path = true; break;
    case 23: path = "/digitaltwins/" + d + "/commands/" + in.str(12); break;
    case 24: path = "/digitaltwins/" + d + "/components/" + in.str(12) + "/commands/" + in.str(12); break;
    default: path = in.str(64); break;
    }
    const store::identity_key key{decoded(d), module_scoped ? decoded(m) : std::string()};
    std::string query;
    switch (in.range<unsigned>(0, 5)) {
    case 0: break;
    case 1: query = "?api-version=" + in.str(12); break;
    case 2: query = "?api-version=2021-04-12&top=" + in.str(6); break;
    case 3: query = "?api-version=2021-04-12&reject"; break;
    case 4: query = "?" + in.str(32); break;
    default: query = "?api-version=2021-04-12"; break;
    }

    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(path + query);
    req.version(11);
    req.set(bhttp::field::host, host);

    static const char* policies[] = {"iothubowner", "service", "registryRead", "registryReadWrite", "device"};
    const unsigned ac = in.range<unsigned>(0, 11);
    if (ac < 5) req.set(bhttp::field::authorization, h.policy_token(policies[ac], 3600));
    else if (ac < 8) req.set(bhttp::field::authorization, h.identity_token(key, ac == 7));
    else if (ac == 8) req.set(bhttp::field::authorization, h.policy_token("iothubowner", -10));  // expired
    else if (ac == 9) req.set(bhttp::field::authorization, in.str(96));
    else if (ac == 10) req.set(bhttp::field::authorization, h.policy_token("iothubowner", 3600) + "&extra=1");
    // 11: no Authorization

    switch (in.range<unsigned>(0, 4)) {
    case 0: break;
    case 1: req.set(bhttp::field::if_match, "*"); break;
    case 2:
    case 3: req.set(bhttp::field::if_match, h.etag_of(key, twin_path)); break;
    default: req.set(bhttp::field::if_match, in.str(20)); break;
    }
    switch (in.range<unsigned>(0, 3)) {
    case 0: req.set(bhttp::field::content_type, "application/json; charset=utf-8"); break;
    case 1: req.set(bhttp::field::content_type, in.str(24)); break;
    case 2: req.set(bhttp::field::content_type, "application/vnd.microsoft.iothub.json"); break;
    default: break;
    }
    if (in.flag()) req.set(bhttp::field::content_encoding, in.flag() ? "utf-8" : in.str(8));
    if (in.flag()) req.set("x-ms-max-item-count", in.str(6));
    if (in.flag()) req.set("x-ms-continuation", in.str(40));
    for (unsigned n = in.range<unsigned>(0, 3); n > 0; --n) {
        std::string name = "iothub-" + in.str(16);
        std::string value = in.str(24);
        req.insert(name, value);
    }
    // Method-call behaviour of the "device": answer, drop the connection (504), or be offline.
    const unsigned device_behaviour = in.range<unsigned>(0, 3);
    const int device_status = in.range<int>(-1, 600);
    req.body() = in.rest();

    const std::optional<std::string> target_for_check = std::string(req.target());
    std::optional<http::route> route;
    if (auto t = http::parse_request_target(*target_for_check)) {
        if (auto r = http::match_route(method, t->segments)) route = std::move(*r);
    }

    {
        std::lock_guard lock(h.channel.mu);
        h.channel.online = device_behaviour != 3;
        h.channel.calls.clear();
    }
    auto out = std::make_shared<outcome>();
    h.api->handle(http::to_rest_request(std::move(req)), [out](http::rest_response r) {
        std::lock_guard lock(out->mu);
        if (++out->calls == 1) out->res = std::move(r);
        out->cv.notify_all();
    });

    // Writes complete on the store's thread; method calls wait for the "device" answered here.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        {
            std::unique_lock lock(out->mu);
            if (out->calls > 0) break;
        }
        h.ioc.poll();
        std::vector<std::pair<store::identity_key, methods::method_call>> calls;
        {
            std::lock_guard lock(h.channel.mu);
            calls.swap(h.channel.calls);
        }
        for (auto& [id, call] : calls) {
            if (device_behaviour == 1) h.router->on_connection_gone(id, 7);
            else h.router->on_response(id, call.rid, device_status, device_behaviour == 2 ? "{\"a\":[1,2]}" : "");
        }
        if (calls.empty() && h.router->pending() > 0) {
            // A call waiting for the identity to connect (connectTimeoutInSeconds): it comes online.
            {
                std::lock_guard lock(h.channel.mu);
                h.channel.online = true;
            }
            h.router->on_methods_ready(key);
            if (route) h.router->on_methods_ready({route->device_id, route->module_id});
        }
        std::unique_lock lock(out->mu);
        if (out->calls == 0) out->cv.wait_for(lock, std::chrono::milliseconds(1));
        if (out->calls == 0 && std::chrono::steady_clock::now() > give_up) fail("no response within 5 s", 0, "");
    }
    h.ioc.poll();

    std::lock_guard lock(out->mu);
    if (out->calls != 1) fail("completion called more than once", out->res.status, out->res.body);
    if (std::getenv("TWINHUB_FUZZ_TRACE"))  // what a seed reaches: TWINHUB_FUZZ_TRACE=1 rest_fuzz -runs=0 corpus
        std::fprintf(stderr, "%s %s -> %d %.160s\n", method.c_str(), target_for_check->c_str(), out->res.status,
                     out->res.body.c_str());
    check(out->res, route, method);
    if (route && route->kind == http::route_kind::c2d_receive && out->res.status == 200) {
        if (const auto* e = out->res.header("ETag")) {
            h.last_lock_token = *e;
            if (h.last_lock_token.size() >= 2 && h.last_lock_token.front() == '"')
                h.last_lock_token = h.last_lock_token.substr(1, h.last_lock_token.size() - 2);
        }
    }
    return 0;
}
