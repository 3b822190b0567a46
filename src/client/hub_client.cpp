#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"

#include "client/hub_client_engine.hpp"

namespace twinhub {

// ---- public API ----

hub_client::hub_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
hub_client::hub_client(hub_client&&) noexcept = default;
hub_client& hub_client::operator=(hub_client&&) noexcept = default;
hub_client::~hub_client() = default;

result<void> hub_client::connect() {
    auto* m = impl_.get();
    return m->run_sync<void>([m]() -> awaitable<result<void>> { co_return co_await m->do_connect(); });
}

void hub_client::disconnect() {
    auto* m = impl_.get();
    (void)m->run_sync<void>([m]() -> awaitable<result<void>> { co_return co_await m->do_disconnect(); });
}

bool hub_client::connected() const { return impl_->connected_flag; }

result<boost::json::object> hub_client::get_twin() {
    auto* m = impl_.get();
    return m->run_sync<boost::json::object>([m]() -> awaitable<result<boost::json::object>> {
        auto c = co_await m->wait_connected(m->op_timeout());
        if (!c) co_return c.error();
        auto a = co_await m->twin_request(true, {});
        if (!a) co_return a.error();
        boost::system::error_code ec;
        auto v = boost::json::parse(a->body, ec);
        if (ec || !v.is_object()) co_return error{errc::format_error, "the hub's twin answer is not a JSON object"};
        co_return std::move(v.as_object());
    });
}

result<std::int64_t> hub_client::patch_twin_reported_properties(const boost::json::object& patch) {
    auto* m = impl_.get();
    std::string body = boost::json::serialize(patch);
    return m->run_sync<std::int64_t>([m, body]() -> awaitable<result<std::int64_t>> {
        auto c = co_await m->wait_connected(m->op_timeout());
        if (!c) co_return c.error();
        auto a = co_await m->twin_request(false, body);
        if (!a) co_return a.error();
        co_return a->version.value_or(0);
    });
}

result<std::optional<boost::json::object>> hub_client::receive_twin_desired_properties_patch(
    std::chrono::milliseconds timeout) {
    auto& m = *impl_;
    std::unique_lock lock(m.mutex);
    if (!m.patch_cv.wait_for(lock, timeout, [&] { return !m.patch_queue.empty(); }))
        return std::optional<boost::json::object>{};
    auto p = std::move(m.patch_queue.front());
    m.patch_queue.pop_front();
    return std::optional<boost::json::object>{std::move(p)};
}

void hub_client::on_twin_desired_properties_patch(desired_patch_handler handler) {
    auto& m = *impl_;
    std::lock_guard lock(m.mutex);
    m.desired_handler = std::move(handler);
    if (!m.desired_handler) return;
    while (!m.patch_queue.empty()) {
        asio::post(m.cb_ioc, [h = m.desired_handler, p = std::move(m.patch_queue.front())] { h(p); });
        m.patch_queue.pop_front();
    }
}

result<void> hub_client::send_message(const message& msg) {
    auto* m = impl_.get();
    std::string topic = client::telemetry_topic(m->id.device_id, m->id.module_id, msg);
    std::string body = msg.body;
    return m->run_sync<void>([m, topic, body]() -> awaitable<result<void>> {
        auto c = co_await m->wait_connected(m->op_timeout());
        if (!c) co_return c.error();
        mqtt::publish p;
        p.qos = mqtt::qos::at_least_once;
        p.packet_id = m->pid();
        p.topic = topic;
        p.payload = body;
        auto id = p.packet_id;
        auto ok = co_await await_callback<bool>(
            [&](auto cb) {
                m->pending_acks[id] = std::move(cb);
                m->send(p);
            },
            m->op_timeout());
        if (!ok) {
            m->pending_acks.erase(id);
            co_return error{errc::gateway_timeout, "the hub did not acknowledge the message in time"};
        }
        if (!*ok) co_return lost();
        co_return result<void>{};
    });
}

void hub_client::on_method(std::string method_name, method_handler handler) {
    auto* m = impl_.get();
    {
        std::lock_guard lock(m->mutex);
        if (handler) m->method_handlers[method_name] = std::move(handler);
        else m->method_handlers.erase(method_name);
    }
    (void)m->run_sync<void>([m]() -> awaitable<result<void>> {
        if (m->methods_wanted) co_return result<void>{};
        m->methods_wanted = true;
        if (!m->is_connected) co_return result<void>{};  // subscribed at the next connect
        std::vector<mqtt::subscription> subs;
        subs.push_back(mqtt::subscription{std::string(iothub::methods_filter), mqtt::qos::at_most_once});
        co_return co_await m->subscribe(std::move(subs));
    });
}

result<void> hub_client::set_c2d_handler(c2d_handler handler) {
    auto* m = impl_.get();
    const bool want = static_cast<bool>(handler);
    {
        std::lock_guard lock(m->mutex);
        m->c2d_h = std::move(handler);
    }
    return m->run_sync<void>([m, want]() -> awaitable<result<void>> {
        if (m->c2d_wanted == want) co_return result<void>{};
        m->c2d_wanted = want;
        if (!m->is_connected) co_return result<void>{};  // (un)subscribed at the next connect
        auto filter = iothub::c2d_filter(identity_key{m->id.device_id, m->id.module_id});
        if (!want) co_return co_await m->unsubscribe(std::move(filter));
        std::vector<mqtt::subscription> subs;
        subs.push_back(mqtt::subscription{std::move(filter), mqtt::qos::at_least_once});
        auto r = co_await m->subscribe(std::move(subs));
        if (!r) m->c2d_wanted = false;
        co_return r;
    });
}

result<void> device_client::on_message(c2d_handler handler) { return set_c2d_handler(std::move(handler)); }
result<void> module_client::on_input_message(c2d_handler handler) { return set_c2d_handler(std::move(handler)); }

void hub_client::on_connection_state_change(connection_handler handler) {
    std::lock_guard lock(impl_->mutex);
    impl_->conn_handler = std::move(handler);
}

const std::string& hub_client::device_id() const { return impl_->id.device_id; }
const std::string& hub_client::module_id() const { return impl_->id.module_id; }

namespace client {

result<std::unique_ptr<hub_client::impl>> make_hub_client_impl(identity_settings id, client_options options) {
    auto tls = make_tls_context(options.tls);
    if (!tls) return tls.error();
    return std::make_unique<hub_client::impl>(std::move(id), std::move(options), std::move(*tls));
}

}  // namespace client
}  // namespace twinhub

// ---- device_client and module_client (here, where impl is complete) ----
namespace twinhub {
namespace {

result<std::unique_ptr<hub_client::impl>> make_impl(std::string_view connection_string, client_options options,
                                                    auth::connection_string_kind want) {
    auto cs = auth::parse_connection_string(connection_string);
    if (!cs) return cs.error();
    if (cs->kind != want) {
        const char* need = want == auth::connection_string_kind::module
                               ? "a module connection string (HostName, DeviceId, ModuleId, SharedAccessKey)"
                               : "a device connection string (HostName, DeviceId, SharedAccessKey)";
        return error{errc::invalid_argument, std::string(need) + " is needed; this one is a " +
                                                 (cs->kind == auth::connection_string_kind::service  ? "service"
                                                  : cs->kind == auth::connection_string_kind::device ? "device"
                                                                                                     : "module") +
                                                 " connection string"};
    }
    if (cs->x509) return error{errc::invalid_argument, "x509=true connection strings are not supported by this SDK yet"};
    client::identity_settings s;
    s.host_name = cs->host_name;
    // A port in HostName ("host:8884", as Node's MQTT client allows) is dialled, not signed.
    if (auto colon = s.host_name.rfind(':'); colon != std::string::npos) {
        if (options.port == 0) {
            try {
                options.port = static_cast<std::uint16_t>(std::stoul(s.host_name.substr(colon + 1)));
            } catch (...) {
                return error{errc::invalid_argument, "HostName has an invalid port"};
            }
        }
        s.host_name.resize(colon);
    }
    s.dial_host = !options.gateway_host_name.empty() ? options.gateway_host_name
                  : !cs->gateway_host_name.empty()   ? cs->gateway_host_name
                                                     : s.host_name;
    s.device_id = cs->device_id;
    s.module_id = cs->module_id;
    s.key = cs->key;
    s.key_name = cs->key_name;
    s.sas_token = cs->shared_access_signature;
    if (options.sas_token_ttl.count() <= 0) return error{errc::invalid_argument, "sas_token_ttl must be positive"};
    return client::make_hub_client_impl(std::move(s), std::move(options));
}

}  // namespace

result<device_client> device_client::create_from_connection_string(std::string_view connection_string,
                                                                   client_options options) {
    auto p = make_impl(connection_string, std::move(options), auth::connection_string_kind::device);
    if (!p) return p.error();
    return device_client(std::move(*p));
}

result<module_client> module_client::create_from_connection_string(std::string_view connection_string,
                                                                   client_options options) {
    auto p = make_impl(connection_string, std::move(options), auth::connection_string_kind::module);
    if (!p) return p.error();
    return module_client(std::move(*p));
}

}  // namespace twinhub
