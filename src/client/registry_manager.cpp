#include "twinhub/registry_manager.hpp"

#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"
#include "client/hub_error.hpp"
#include "client/https_client.hpp"
#include "client/service_json.hpp"
#include "client/tls_context.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <mutex>

namespace twinhub {

using client::http_response;
using headers_t = std::vector<std::pair<std::string, std::string>>;

namespace {

constexpr std::string_view api = "api-version=2021-04-12";

std::string enc(std::string_view id) { return percent_encode(id); }

std::string quoted_etag(std::string_view etag) {
    if (etag.empty()) etag = "*";
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return std::string(etag);
    return "\"" + std::string(etag) + "\"";
}

result<boost::json::value> parse_body(const http_response& r) {
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body, ec);
    if (ec) return error{errc::format_error, "the hub's answer is not JSON: " + ec.message()};
    return v;
}

}  // namespace

struct registry_manager::impl {
    std::string host;  // without port: the SAS resource and connection-string HostName
    std::uint16_t port = 443;
    std::string key_name;
    std::string key;
    service_options options;
    std::mutex mutex;
    std::unique_ptr<client::https_client> http;

    result<http_response> call(std::string_view method, const std::string& target, std::string_view body,
                               headers_t headers = {}, std::chrono::milliseconds extra = {},
                               const std::string& resource = {}) {
        auto expiry = auth::to_unix_seconds(now()) + options.sas_token_ttl.count();
        auto token = auth::generate_sas_token(resource.empty() ? host : resource, key, expiry, key_name);
        if (!token) return token.error();
        headers.emplace_back("Authorization", *token);
        std::lock_guard lock(mutex);
        return http->request(method, target, body, headers, options.timeout + extra);
    }

    // call() that turns any status >= 300 into the hub's error.
    result<http_response> checked(std::string_view method, const std::string& target, std::string_view body,
                                  headers_t headers = {}, std::chrono::milliseconds extra = {},
                                  const std::string& resource = {}) {
        auto r = call(method, target, body, std::move(headers), extra, resource);
        if (!r) return r.error();
        if (r->status >= 300) return client::parse_rest_error(r->status, r->body, r->header("iothub-errorcode"));
        return r;
    }

    template <class T, class F>
    result<T> json_call(F&& parse, std::string_view method, const std::string& target, std::string_view body,
                        headers_t headers = {}) {
        auto r = checked(method, target, body, std::move(headers));
        if (!r) return r.error();
        auto v = parse_body(*r);
        if (!v) return v.error();
        return parse(*v);
    }

    static std::string device_path(std::string_view d) { return "/devices/" + enc(d); }
    static std::string module_path(std::string_view d, std::string_view m) {
        return "/devices/" + enc(d) + "/modules/" + enc(m);
    }
    static std::string twin_path(std::string_view d, std::string_view m) {
        std::string p = "/twins/" + enc(d);
        if (!m.empty()) p += "/modules/" + enc(m);
        return p;
    }

    result<device_twin> twin_call(std::string_view method, std::string_view d, std::string_view m,
                           const boost::json::object* body, std::string_view etag) {
        headers_t h;
        if (body) h.emplace_back("If-Match", quoted_etag(etag));
        return json_call<device_twin>(client::twin_from_json, method, twin_path(d, m) + "?" + std::string(api),
                               body ? boost::json::serialize(*body) : std::string{}, std::move(h));
    }

    result<method_result> method_call(std::string_view d, std::string_view m, const method_invocation& call) {
        boost::json::object body{{"methodName", call.method_name},
                                 {"payload", call.payload},
                                 {"responseTimeoutInSeconds", call.response_timeout_seconds},
                                 {"connectTimeoutInSeconds", call.connect_timeout_seconds}};
        auto extra = std::chrono::seconds(call.response_timeout_seconds + call.connect_timeout_seconds);
        auto r = checked("POST", twin_path(d, m) + "/methods?" + std::string(api), boost::json::serialize(body), {}, extra);
        if (!r) return r.error();
        auto v = parse_body(*r);
        if (!v) return v.error();
        const auto* o = v->if_object();
        if (!o || !o->contains("status"))
            return error{errc::format_error, "the hub's method answer has no status"};
        method_result out;
        const auto& st = o->at("status");
        out.status = st.is_int64() ? static_cast<int>(st.as_int64()) : st.is_uint64() ? static_cast<int>(st.as_uint64()) : 0;
        if (const auto* p = o->if_contains("payload")) out.payload = *p;
        return out;
    }
};

registry_manager::registry_manager(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
registry_manager::registry_manager(registry_manager&&) noexcept = default;
registry_manager& registry_manager::operator=(registry_manager&&) noexcept = default;
registry_manager::~registry_manager() = default;

result<registry_manager> registry_manager::from_connection_string(std::string_view connection_string,
                                                                  service_options options) {
    auto cs = auth::parse_connection_string(connection_string);
    if (!cs) return cs.error();
    if (cs->kind != auth::connection_string_kind::service)
        return error{errc::invalid_argument,
                     "a service connection string (HostName, SharedAccessKeyName, SharedAccessKey) is needed; "
                     "this one names a device"};
    auto p = std::make_unique<impl>();
    p->host = cs->host_name;
    p->port = 443;
    if (auto colon = p->host.rfind(':'); colon != std::string::npos && p->host.find(']') == std::string::npos) {
        std::uint16_t port = 0;
        auto s = std::string_view(p->host).substr(colon + 1);
        auto r = std::from_chars(s.data(), s.data() + s.size(), port);
        if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || port == 0)
            return error{errc::invalid_argument, "HostName has an invalid port"};
        p->port = port;
        p->host.resize(colon);
    }
    if (options.port != 0) p->port = options.port;
    p->key_name = cs->key_name;
    p->key = cs->key;
    if (!base64_decode(p->key))
        return error{errc::invalid_argument, "SharedAccessKey of the connection string is not base64"};
    auto tls = client::make_tls_context(options.tls);
    if (!tls) return tls.error();
    p->options = std::move(options);
    p->http = std::make_unique<client::https_client>(p->host, p->port, std::move(*tls));
    return registry_manager(std::move(p));
}

const std::string& registry_manager::host_name() const { return impl_->host; }

// ---- devices ----

result<device_identity> registry_manager::create_device(std::string_view device_id, const symmetric_keys& keys,
                                                        std::string_view status) {
    device_identity d;
    d.device_id = std::string(device_id);
    d.status = std::string(status);
    d.keys = keys;
    return impl_->json_call<device_identity>(client::device_from_json, "PUT",
                                             impl::device_path(device_id) + "?" + std::string(api),
                                             boost::json::serialize(client::device_to_json(d)));
}

result<device_identity> registry_manager::get_device(std::string_view device_id) {
    return impl_->json_call<device_identity>(client::device_from_json, "GET",
                                             impl::device_path(device_id) + "?" + std::string(api), {});
}

result<std::vector<device_identity>> registry_manager::list_devices(int top) {
    auto parse = [](const boost::json::value& v) -> result<std::vector<device_identity>> {
        const auto* a = v.if_array();
        if (!a) return error{errc::format_error, "the hub's device list is not an array"};
        std::vector<device_identity> out;
        for (const auto& e : *a) {
            auto d = client::device_from_json(e);
            if (!d) return d.error();
            out.push_back(std::move(*d));
        }
        return out;
    };
    return impl_->json_call<std::vector<device_identity>>(parse, "GET",
                                                          "/devices/?top=" + std::to_string(top) + "&" + std::string(api), {});
}

result<device_identity> registry_manager::update_device(const device_identity& device, std::string_view etag) {
    device_identity d = device;
    d.etag.clear();
    return impl_->json_call<device_identity>(client::device_from_json, "PUT",
                                             impl::device_path(device.device_id) + "?" + std::string(api),
                                             boost::json::serialize(client::device_to_json(d)),
                                             {{"If-Match", quoted_etag(etag)}});
}

result<void> registry_manager::delete_device(std::string_view device_id, std::string_view etag) {
    auto r = impl_->checked("DELETE", impl::device_path(device_id) + "?" + std::string(api), {},
                            {{"If-Match", quoted_etag(etag)}});
    if (!r) return r.error();
    return {};
}

// ---- modules ----

result<module_identity> registry_manager::create_module(std::string_view device_id, std::string_view module_id,
                                                        const symmetric_keys& keys, std::string_view managed_by) {
    module_identity m;
    m.device_id = std::string(device_id);
    m.module_id = std::string(module_id);
    m.keys = keys;
    m.managed_by = std::string(managed_by);
    return impl_->json_call<module_identity>(client::module_from_json, "PUT",
                                             impl::module_path(device_id, module_id) + "?" + std::string(api),
                                             boost::json::serialize(client::module_to_json(m)));
}

result<module_identity> registry_manager::get_module(std::string_view device_id, std::string_view module_id) {
    return impl_->json_call<module_identity>(client::module_from_json, "GET",
                                             impl::module_path(device_id, module_id) + "?" + std::string(api), {});
}

result<std::vector<module_identity>> registry_manager::list_modules(std::string_view device_id) {
    auto parse = [](const boost::json::value& v) -> result<std::vector<module_identity>> {
        const auto* a = v.if_array();
        if (!a) return error{errc::format_error, "the hub's module list is not an array"};
        std::vector<module_identity> out;
        for (const auto& e : *a) {
            auto m = client::module_from_json(e);
            if (!m) return m.error();
            out.push_back(std::move(*m));
        }
        return out;
    };
    return impl_->json_call<std::vector<module_identity>>(
        parse, "GET", impl::device_path(device_id) + "/modules?" + std::string(api), {});
}

result<module_identity> registry_manager::update_module(const module_identity& module, std::string_view etag) {
    module_identity m = module;
    m.etag.clear();
    return impl_->json_call<module_identity>(client::module_from_json, "PUT",
                                             impl::module_path(m.device_id, m.module_id) + "?" + std::string(api),
                                             boost::json::serialize(client::module_to_json(m)),
                                             {{"If-Match", quoted_etag(etag)}});
}

result<void> registry_manager::delete_module(std::string_view device_id, std::string_view module_id,
                                             std::string_view etag) {
    auto r = impl_->checked("DELETE", impl::module_path(device_id, module_id) + "?" + std::string(api), {},
                            {{"If-Match", quoted_etag(etag)}});
    if (!r) return r.error();
    return {};
}

result<std::string> registry_manager::device_connection_string(std::string_view device_id, key_type k) {
    auto d = get_device(device_id);
    if (!d) return d.error();
    const auto& key = k == key_type::primary ? d->keys.primary_key : d->keys.secondary_key;
    if (key.empty())
        return error{errc::invalid_argument, "device '" + std::string(device_id) + "' has no symmetric key (type " +
                                                 d->authentication_type + ")"};
    return auth::format_device_connection_string(impl_->host, d->device_id, key);
}

result<std::string> registry_manager::module_connection_string(std::string_view device_id, std::string_view module_id,
                                                               key_type k) {
    auto m = get_module(device_id, module_id);
    if (!m) return m.error();
    const auto& key = k == key_type::primary ? m->keys.primary_key : m->keys.secondary_key;
    if (key.empty())
        return error{errc::invalid_argument, "module '" + std::string(module_id) + "' has no symmetric key (type " +
                                                 m->authentication_type + ")"};
    return auth::format_module_connection_string(impl_->host, m->device_id, m->module_id, key);
}

// ---- twins ----

result<device_twin> registry_manager::get_twin(std::string_view device_id) {
    return impl_->twin_call("GET", device_id, {}, nullptr, {});
}
result<device_twin> registry_manager::update_twin(std::string_view device_id, const boost::json::object& patch,
                                           std::string_view etag) {
    return impl_->twin_call("PATCH", device_id, {}, &patch, etag);
}
result<device_twin> registry_manager::replace_twin(std::string_view device_id, const boost::json::object& document,
                                            std::string_view etag) {
    return impl_->twin_call("PUT", device_id, {}, &document, etag);
}
result<device_twin> registry_manager::get_module_twin(std::string_view device_id, std::string_view module_id) {
    return impl_->twin_call("GET", device_id, module_id, nullptr, {});
}
result<device_twin> registry_manager::update_module_twin(std::string_view device_id, std::string_view module_id,
                                                  const boost::json::object& patch, std::string_view etag) {
    return impl_->twin_call("PATCH", device_id, module_id, &patch, etag);
}
result<device_twin> registry_manager::replace_module_twin(std::string_view device_id, std::string_view module_id,
                                                   const boost::json::object& document, std::string_view etag) {
    return impl_->twin_call("PUT", device_id, module_id, &document, etag);
}

// ---- queries ----

result<query_page> registry_manager::query(std::string_view sql, int page_size, std::string_view continuation) {
    headers_t h;
    if (page_size > 0) h.emplace_back("x-ms-max-item-count", std::to_string(page_size));
    if (!continuation.empty()) h.emplace_back("x-ms-continuation", std::string(continuation));
    boost::json::object body{{"query", sql}};
    auto r = impl_->checked("POST", "/devices/query?" + std::string(api), boost::json::serialize(body), std::move(h));
    if (!r) return r.error();
    auto v = parse_body(*r);
    if (!v) return v.error();
    if (!v->is_array()) return error{errc::format_error, "the hub's query answer is not an array"};
    query_page page;
    page.items = std::move(v->as_array());
    if (r->has_header("x-ms-continuation")) page.continuation = r->header("x-ms-continuation");
    return page;
}

result<boost::json::object> registry_manager::bulk(const boost::json::array& devices) {
    auto r = impl_->call("POST", "/devices?" + std::string(api), boost::json::serialize(devices));
    if (!r) return r.error();
    if (r->status == 200 || r->status == 400) {
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body, ec);
        if (!ec && v.is_object() && v.as_object().contains("isSuccessful")) return std::move(v.as_object());
    }
    if (r->status >= 300) return client::parse_rest_error(r->status, r->body, r->header("iothub-errorcode"));
    return error{errc::format_error, "the hub's bulk answer is not IoT Hub's bulk result"};
}

result<boost::json::array> registry_manager::query_all(std::string_view sql, std::size_t max_items, int page_size) {
    boost::json::array all;
    std::string continuation;
    for (;;) {
        int size = page_size;
        if (max_items != 0 && (size <= 0 || max_items - all.size() < static_cast<std::size_t>(size)))
            size = static_cast<int>(max_items - all.size());
        auto page = query(sql, size, continuation);
        if (!page) return page.error();
        for (auto& item : page->items) {
            if (max_items != 0 && all.size() >= max_items) break;
            all.push_back(std::move(item));
        }
        if (!page->continuation || page->continuation->empty() || (max_items != 0 && all.size() >= max_items))
            break;
        continuation = *page->continuation;
    }
    return all;
}

// ---- direct methods ----

result<method_result> registry_manager::invoke_device_method(std::string_view device_id, const method_invocation& call) {
    return impl_->method_call(device_id, {}, call);
}

result<method_result> registry_manager::invoke_module_method(std::string_view device_id, std::string_view module_id,
                                                             const method_invocation& call) {
    return impl_->method_call(device_id, module_id, call);
}

// ---- cloud-to-device ----

namespace {
constexpr std::string_view device_api = "api-version=2020-09-30";  // the device HTTPS API's version

std::int64_t header_int(const http_response& r, std::string_view name) {
    auto v = r.header(name);
    std::int64_t n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    return n;
}
}  // namespace

result<purge_result> registry_manager::purge_c2d_messages(std::string_view device_id, std::string_view module_id) {
    std::string target = module_id.empty() ? impl::device_path(device_id) : impl::module_path(device_id, module_id);
    target += "/commands?" + std::string(api);
    return impl_->json_call<purge_result>(client::purge_from_json, "DELETE", target, {});
}

result<std::optional<received_c2d_message>> registry_manager::receive_c2d_message(std::string_view device_id) {
    const std::string resource = percent_encode(impl_->host + "/devices/" + std::string(device_id));
    auto r = impl_->checked("GET", impl::device_path(device_id) + "/messages/deviceBound?" + std::string(device_api), {},
                            {}, {}, resource);
    if (!r) return r.error();
    if (r->status == 204) return std::optional<received_c2d_message>{};
    if (!r->has_header("etag"))
        return error{errc::format_error, "the hub's C2D message answer has no ETag (lock token)"};
    received_c2d_message m;
    m.body = std::move(r->body);
    m.lock_token = r->header("etag");
    if (m.lock_token.size() >= 2 && m.lock_token.front() == '"' && m.lock_token.back() == '"')
        m.lock_token = m.lock_token.substr(1, m.lock_token.size() - 2);
    m.message_id = r->header("iothub-messageid");
    m.correlation_id = r->header("iothub-correlationid");
    m.user_id = r->header("iothub-userid");
    m.to = r->header("iothub-to");
    m.expiry_time_utc = r->header("iothub-expiry");
    m.enqueued_time_utc = r->header("iothub-enqueuedtime");
    m.ack = r->header("iothub-ack");
    m.content_type = r->header("content-type");
    m.content_encoding = r->header("content-encoding");
    m.sequence_number = header_int(*r, "iothub-sequencenumber");
    m.delivery_count = header_int(*r, "iothub-deliverycount");
    constexpr std::string_view app = "iothub-app-";
    for (const auto& [k, v] : r->headers)
        if (k.size() > app.size() && k.starts_with(app)) m.properties.emplace_back(k.substr(app.size()), v);
    return std::optional<received_c2d_message>{std::move(m)};
}

namespace {
result<void> settle_c2d(registry_manager::impl& m, std::string_view method, std::string_view device_id,
                        std::string_view lock_token, std::string_view suffix, std::string_view query_extra);
}

result<void> registry_manager::complete_c2d_message(std::string_view device_id, std::string_view lock_token) {
    return settle_c2d(*impl_, "DELETE", device_id, lock_token, "", "");
}
result<void> registry_manager::reject_c2d_message(std::string_view device_id, std::string_view lock_token) {
    return settle_c2d(*impl_, "DELETE", device_id, lock_token, "", "&reject");
}
result<void> registry_manager::abandon_c2d_message(std::string_view device_id, std::string_view lock_token) {
    return settle_c2d(*impl_, "POST", device_id, lock_token, "/abandon", "");
}

namespace {
result<void> settle_c2d(registry_manager::impl& m, std::string_view method, std::string_view device_id,
                        std::string_view lock_token, std::string_view suffix, std::string_view query_extra) {
    if (lock_token.empty()) return error{errc::invalid_argument, "a lock token (the received message's ETag) is needed"};
    const std::string resource = percent_encode(m.host + "/devices/" + std::string(device_id));
    std::string target = registry_manager::impl::device_path(device_id) + "/messages/deviceBound/" +
                         percent_encode(lock_token) + std::string(suffix) + "?" + std::string(device_api) +
                         std::string(query_extra);
    auto r = m.checked(method, target, {}, {}, {}, resource);
    if (!r) return r.error();
    return {};
}
}  // namespace

result<std::string> registry_manager::raw_request(std::string_view method, std::string_view target,
                                                  std::string_view body, std::string_view if_match) {
    std::string t(target);
    if (t.find("api-version=") == std::string::npos) t += (t.find('?') == std::string::npos ? "?" : "&") + std::string(api);
    headers_t h;
    if (!if_match.empty()) h.emplace_back("If-Match", quoted_etag(if_match));
    auto r = impl_->checked(method, t, body, std::move(h));
    if (!r) return r.error();
    return std::move(r->body);
}

}  // namespace twinhub
