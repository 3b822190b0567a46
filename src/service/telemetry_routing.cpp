// Message routing of the built-in endpoint and custom endpoints (telemetry_service.hpp): the
// event_router the hub calls for every device-to-cloud message, the generated twin change and
// lifecycle events, and the live routing configuration.
#include "service/telemetry_service.hpp"

#include "common/log.hpp"
#include "common/time.hpp"
#include "telemetry/router.hpp"
#include "telemetry/routing_table.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <future>
#include <iterator>

namespace twinhub::service {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The routing query name of a stored system property ("message-id" -> "$messageId").
std::string query_name(std::string_view k) {
    if (k == "message-id") return "$messageId";
    if (k == "correlation-id") return "$correlationId";
    if (k == "user-id") return "$userId";
    if (k == "to") return "$to";
    if (k == "absolute-expiry-time") return "$expiryTimeUtc";
    if (k == "iothub-connection-device-id") return "$connectionDeviceId";
    if (k == "iothub-connection-module-id") return "$connectionModuleId";
    return "$" + std::string(k);
}

bool mentions_twin(const telemetry::routing_config& c) {
    auto has = [](const std::string& s) { return lower(s).find("$twin") != std::string::npos; };
    for (auto& r : c.routes)
        if (has(r.condition)) return true;
    if (has(c.fallback.condition)) return true;
    for (auto& e : c.enrichments)
        if (has(e.value)) return true;
    return false;
}

}  // namespace

result<void> telemetry_service::configure_routing(const boost::json::value& routing) {
    auto cfg = telemetry::parse_routing_config(routing);
    if (!cfg) return cfg.error();
    // Stable stream numbers for custom endpoints: an index per name, kept in the hub settings.
    {
        std::lock_guard l(endpoints_m_);
        for (auto& name : cfg->event_hub_endpoints) {
            const auto key = lower(name);
            if (endpoint_index_.contains(key)) continue;
            std::uint32_t next = 1;
            for (auto& [_, i] : endpoint_index_) next = std::max(next, i + 1);
            if (store::stream_base(next + 1) > store::max_event_streams)
                return error{errc::invalid_argument, "This hub has had too many custom endpoints; no stream is left for '" + name + "'."};
            std::promise<result<void>> p;
            auto f = p.get_future();
            settings_.put("endpoints/" + key, boost::json::serialize(boost::json::object{{"name", name}, {"index", next}}),
                             [&p](result<void> r) { p.set_value(std::move(r)); });
            if (auto r = f.get(); !r) return r;
            endpoint_index_[key] = next;
        }
    }
    const bool twin = mentions_twin(*cfg);
    bool tw = false, lc = false;
    for (auto& r : cfg->routes) {
        if (!r.enabled) continue;
        tw = tw || r.source == telemetry::route_source::twin_change;
        lc = lc || r.source == telemetry::route_source::lifecycle;
    }
    if (auto r = routing_->configure(std::move(*cfg)); !r) return r;
    needs_twin_ = twin;
    wants_twin_ = tw;
    wants_lifecycle_ = lc;
    log::info("telemetry.routing_configured", {{"routes", routing_->current()->config().routes.size()},
                                               {"endpoints", routing_->current()->config().event_hub_endpoints.size()}});
    return {};
}

std::optional<std::uint32_t> telemetry_service::custom_endpoint_index(std::string_view name) const {
    auto r = routing_->current();
    const auto key = lower(name);
    bool configured = false;
    for (auto& e : r->config().event_hub_endpoints) configured = configured || lower(e) == key;
    if (!configured) return std::nullopt;
    std::lock_guard l(endpoints_m_);
    auto it = endpoint_index_.find(key);
    if (it == endpoint_index_.end()) return std::nullopt;
    return it->second;
}

void telemetry_service::reload_routing_if_changed() {
    if (opts_.routing_file.empty()) return;
    std::error_code fe;
    if (!std::filesystem::exists(opts_.routing_file, fe)) return;
    auto t = std::filesystem::last_write_time(opts_.routing_file, fe);
    if (fe || t == routing_mtime_) return;
    routing_mtime_ = t;
    std::ifstream in(opts_.routing_file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) {
        log::warn("telemetry.routing_rejected", {{"file", opts_.routing_file.string()}, {"message", "not valid JSON: " + ec.message()}});
        return;
    }
    if (auto r = configure_routing(v); !r)
        log::warn("telemetry.routing_rejected", {{"file", opts_.routing_file.string()}, {"message", r.error().message}});
}

std::uint32_t telemetry_service::stream_of(const std::string& endpoint, const store::identity_key& id) const {
    const std::uint32_t p = store::partition_of(id, log_.partition_count());
    if (endpoint == telemetry::builtin_endpoint) return p;
    std::lock_guard l(endpoints_m_);
    auto it = endpoint_index_.find(lower(endpoint));
    return it == endpoint_index_.end() ? p : store::stream_base(it->second) + p;
}

std::vector<store::event_record> telemetry_service::route_telemetry(std::vector<store::event_record> events) {
    auto r = routing_->current();
    // Azure's default (no routes, fallback to events, no enrichments): nothing to decide.
    if (r->config().routes.empty() && r->config().enrichments.empty() && r->config().fallback.enabled &&
        r->config().fallback.condition == "true")
        return events;
    std::vector<store::event_record> out;
    out.reserve(events.size());
    for (auto& e : events) {
        telemetry::routing_message m;
        m.source = telemetry::route_source::telemetry;
        m.body = e.body;
        for (auto& [k, v] : e.system_properties) {
            if (k == "content-type") m.content_type = v;
            else if (k == "content-encoding") m.content_encoding = v;
            else m.system[query_name(k)] = v;
        }
        m.system["$enqueuedTime"] = format_time(time_point(std::chrono::nanoseconds(e.enqueued_time_ns)));
        m.app_properties = e.application_properties;
        boost::json::value twin;
        if (needs_twin_) {
            if (auto t = twins_.get_twin(e.source)) {
                twin = std::move(*t);
                m.twin = &twin;
            }
        }
        auto deliveries = r->route(m);
        for (std::size_t i = 0; i < deliveries.size(); ++i) {
            auto& d = deliveries[i];
            store::event_record copy = i + 1 == deliveries.size() ? std::move(e) : e;
            copy.partition = stream_of(d.endpoint, copy.source);
            for (auto& [k, v] : d.enrichments) copy.application_properties.emplace_back(k, v);
            out.push_back(std::move(copy));
        }
    }
    return out;
}

bool telemetry_service::wants_twin_changes() const { return wants_twin_; }
bool telemetry_service::wants_lifecycle() const { return wants_lifecycle_; }

void telemetry_service::on_twin_change(const store::identity_key& id, std::string op_type, boost::json::object body) {
    generated_event(id, static_cast<int>(telemetry::route_source::twin_change), "twinChangeNotification", std::move(op_type),
                    std::move(body));
}

void telemetry_service::on_lifecycle(const store::identity_key& id, std::string op_type, boost::json::object body) {
    generated_event(id, static_cast<int>(telemetry::route_source::lifecycle), "deviceLifecycleNotification",
                    std::move(op_type), std::move(body));
}

// IoT Hub's generated events: JSON body, application properties hubName, deviceId, moduleId,
// operationTimestamp, iothub-message-schema, opType; iothub-message-source twinChangeEvents or
// deviceLifecycleEvents.
void telemetry_service::generated_event(const store::identity_key& id, int source, const char* schema,
                                        std::string op_type, boost::json::object body) {
    const auto src = static_cast<telemetry::route_source>(source);
    auto r = routing_->current();
    const auto when = std::chrono::system_clock::now();
    store::event_record e;
    e.source = id;
    e.body = boost::json::serialize(body);
    e.enqueued_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    e.system_properties = {{"content-type", "application/json"},
                           {"content-encoding", "utf-8"},
                           {"iothub-connection-device-id", id.device_id}};
    if (!id.module_id.empty()) e.system_properties.emplace_back("iothub-connection-module-id", id.module_id);
    e.system_properties.emplace_back("iothub-message-source",
                                     src == telemetry::route_source::twin_change ? "twinChangeEvents" : "deviceLifecycleEvents");
    e.application_properties = {{"hubName", opts_.hub_name},
                                {"deviceId", id.device_id},
                                {"operationTimestamp", format_time(time_point(std::chrono::nanoseconds(e.enqueued_time_ns)))},
                                {"iothub-message-schema", schema},
                                {"opType", op_type}};
    if (!id.module_id.empty()) e.application_properties.emplace_back("moduleId", id.module_id);

    telemetry::routing_message m;
    m.source = src;
    m.body = e.body;
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.app_properties = e.application_properties;
    m.system["$connectionDeviceId"] = id.device_id;
    if (!id.module_id.empty()) m.system["$connectionModuleId"] = id.module_id;
    auto deliveries = r->route(m);
    std::vector<store::event_record> out;
    for (auto& d : deliveries) {
        store::event_record copy = e;
        copy.partition = stream_of(d.endpoint, id);
        for (auto& [k, v] : d.enrichments) copy.application_properties.emplace_back(k, v);
        out.push_back(std::move(copy));
    }
    if (out.empty()) return;
    log_.append_routed(std::move(out), [](result<void> res) {
        if (!res && res.error().code != errc::shutting_down)
            log::warn("telemetry.generated_event_failed", {{"message", res.error().message}});
    });
}

}  // namespace twinhub::service
