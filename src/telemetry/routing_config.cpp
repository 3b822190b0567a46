// Reading and validating the ARM "routing" JSON (routing_config.hpp), and writing it back.
#include "telemetry/routing_config.hpp"
#include "telemetry/routing_condition.hpp"
#include "telemetry/routing_lookup.hpp"

#include <boost/json/serialize.hpp>

#include <initializer_list>
#include <string>

namespace twinhub::telemetry {

namespace {

constexpr std::pair<route_source, const char*> source_names[] = {
    {route_source::telemetry, "DeviceMessages"},
    {route_source::twin_change, "TwinChangeEvents"},
    {route_source::lifecycle, "DeviceLifecycleEvents"},
    {route_source::connection_state, "DeviceConnectionStateEvents"},
};

}  // namespace

const char* to_string(route_source s) noexcept {
    for (const auto& [v, name] : source_names)
        if (v == s) return name;
    return "Invalid";
}

std::optional<route_source> source_from_string(std::string_view name) noexcept {
    for (const auto& [v, n] : source_names)
        if (detail::iequals(name, n)) return v;
    return std::nullopt;
}

route default_fallback_route() {
    route r;
    r.name = "$fallback";
    r.source = route_source::telemetry;
    r.condition = "true";
    r.endpoint_names = {builtin_endpoint};
    r.enabled = true;
    return r;
}

namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;

error invalid(const std::string& where, const std::string& what) {
    return {errc::invalid_argument, where + ": " + what};
}

std::string kind_name(const value& v) {
    switch (v.kind()) {
        case boost::json::kind::null: return "null";
        case boost::json::kind::bool_: return "a Boolean";
        case boost::json::kind::int64:
        case boost::json::kind::uint64:
        case boost::json::kind::double_: return "a number";
        case boost::json::kind::string: return "a string";
        case boost::json::kind::array: return "an array";
        case boost::json::kind::object: return "an object";
    }
    return "?";
}

// Rejects members of `o` outside `known` (a typo would otherwise silently change routing).
result<void> only_known(const object& o, const std::string& where, std::initializer_list<std::string_view> known) {
    for (const auto& kv : o) {
        bool ok = false;
        for (auto k : known) ok = ok || kv.key() == k;
        if (!ok) {
            std::string list;
            for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
            return invalid(where, "unknown member '" + std::string(kv.key()) + "' (expected " + list + ")");
        }
    }
    return {};
}

result<const value*> member(const object& o, std::string_view key, const std::string& where, bool required) {
    const value* v = o.if_contains(key);
    if (!v && required) return invalid(where, "'" + std::string(key) + "' is required");
    return v;
}

result<std::string> string_member(const object& o, std::string_view key, const std::string& where, bool required) {
    auto v = member(o, key, where, required);
    if (!v) return v.error();
    if (!*v) return std::string();
    if (!(*v)->is_string()) return invalid(where + "." + std::string(key), "must be a string, found " + kind_name(**v));
    return std::string((*v)->get_string());
}

result<void> check_name(const std::string& name, const std::string& where) {
    if (name.empty() || name.size() > max_name_length)
        return invalid(where, "must be 1 to " + std::to_string(max_name_length) + " characters, found " +
                                  std::to_string(name.size()));
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '.' || c == '_';
        if (!ok) return invalid(where, "'" + name + "' may contain only letters, digits, '-', '.' and '_'");
    }
    return {};
}

std::string endpoint_list(const routing_config& c) {
    std::string s = builtin_endpoint;
    for (const auto& e : c.event_hub_endpoints) s += ", " + e;
    return s;
}

bool endpoint_exists(const routing_config& c, const std::string& name) {
    if (name == builtin_endpoint) return true;
    for (const auto& e : c.event_hub_endpoints)
        if (e == name) return true;
    return false;
}

result<void> parse_endpoints(const value& v, routing_config& c) {
    const std::string where = "routing.endpoints";
    const auto* o = v.if_object();
    if (!o) return invalid(where, "must be an object, found " + kind_name(v));
    if (auto r = only_known(*o, where,
                            {"eventHubs", "serviceBusQueues", "serviceBusTopics", "storageContainers",
                             "cosmosDBSqlContainers", "cosmosDBSqlCollections"});
        !r)
        return r;
    for (const auto& kv : *o) {
        const std::string at = where + "." + std::string(kv.key());
        const auto* list = kv.value().if_array();
        if (!list && !kv.value().is_null()) return invalid(at, "must be an array, found " + kind_name(kv.value()));
        if (!list) continue;
        if (kv.key() != "eventHubs") {
            if (!list->empty())
                return invalid(at,
                               "only Event Hubs-compatible endpoints (endpoints.eventHubs) are supported by twinhub");
            continue;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const std::string item = at + "[" + std::to_string(i) + "]";
            const auto* e = (*list)[i].if_object();
            if (!e) return invalid(item, "must be an object, found " + kind_name((*list)[i]));
            auto name = string_member(*e, "name", item, true);
            if (!name) return name.error();
            for (const char* reserved : {"events", "$default", "operationsMonitoringEvents", "fileNotifications"})
                if (detail::iequals(*name, reserved))
                    return invalid(item + ".name", "'" + *name + "' is reserved for a built-in endpoint");
            if (auto r = check_name(*name, item + ".name"); !r) return r;
            for (const auto& prev : c.event_hub_endpoints)
                if (detail::iequals(prev, *name))
                    return invalid(item + ".name", "duplicate endpoint name '" + *name + "'");
            c.event_hub_endpoints.push_back(std::move(*name));
        }
    }
    if (c.event_hub_endpoints.size() > max_custom_endpoints)
        return invalid(where, std::to_string(c.event_hub_endpoints.size()) + " custom endpoints; at most " +
                                  std::to_string(max_custom_endpoints) + " are allowed");
    return {};
}

result<std::vector<std::string>> endpoint_names(const object& o, const std::string& where, const routing_config& c,
                                                bool exactly_one) {
    auto v = member(o, "endpointNames", where, true);
    if (!v) return v.error();
    const std::string at = where + ".endpointNames";
    const auto* list = (*v)->if_array();
    if (!list) return invalid(at, "must be an array of endpoint names, found " + kind_name(**v));
    if (list->empty()) return invalid(at, "must name an endpoint");
    if (exactly_one && list->size() != 1)
        return invalid(at, "a route sends to exactly one endpoint, found " + std::to_string(list->size()));
    std::vector<std::string> names;
    for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string item = at + "[" + std::to_string(i) + "]";
        if (!(*list)[i].is_string()) return invalid(item, "must be a string, found " + kind_name((*list)[i]));
        std::string name((*list)[i].get_string());
        if (!endpoint_exists(c, name))
            return invalid(item, "unknown endpoint '" + name + "' (defined: " + endpoint_list(c) + ")");
        for (const auto& prev : names)
            if (prev == name) return invalid(item, "endpoint '" + name + "' is listed twice");
        names.push_back(std::move(name));
    }
    return names;
}

result<route> parse_route(const value& v, const std::string& at, const routing_config& c, bool fallback) {
    const auto* o = v.if_object();
    if (!o) return invalid(at, "must be an object, found " + kind_name(v));
    if (auto r = only_known(*o, at, {"name", "source", "condition", "endpointNames", "isEnabled"}); !r)
        return r.error();
    route r;
    auto name = string_member(*o, "name", at, !fallback);
    if (!name) return name.error();
    std::string where = at;
    if (fallback) {
        r.name = name->empty() ? "$fallback" : *name;
    } else {
        if (auto ok = check_name(*name, at + ".name"); !ok) return ok.error();
        r.name = *name;
        where = at + " ('" + r.name + "')";
    }
    auto source = string_member(*o, "source", where, !fallback);
    if (!source) return source.error();
    if (!source->empty() || !fallback) {
        auto s = source_from_string(*source);
        if (!s)
            return invalid(where + ".source", "'" + *source +
                                                  "' is not a supported source (DeviceMessages, TwinChangeEvents, "
                                                  "DeviceLifecycleEvents, DeviceConnectionStateEvents)");
        r.source = *s;
    }
    if (fallback && r.source != route_source::telemetry)
        return invalid(where + ".source", "the fallback route reads DeviceMessages only");
    auto cond = member(*o, "condition", where, false);
    if (!cond) return cond.error();
    if (*cond && !(*cond)->is_null()) {
        if (!(*cond)->is_string()) return invalid(where + ".condition", "must be a string, found " + kind_name(**cond));
        r.condition = std::string((*cond)->get_string());
        if (r.condition.empty()) r.condition = "true";
    }
    if (auto compiled = condition::compile(r.condition); !compiled)
        return invalid(where + ".condition", compiled.error().message);
    auto names = endpoint_names(*o, where, c, true);
    if (!names) return names.error();
    r.endpoint_names = std::move(*names);
    if (fallback && r.endpoint_names.front() != builtin_endpoint)
        return invalid(where + ".endpointNames[0]", "the fallback route sends to the built-in endpoint 'events' only");
    auto enabled = member(*o, "isEnabled", where, true);
    if (!enabled) return enabled.error();
    if (!(*enabled)->is_bool())
        return invalid(where + ".isEnabled", "must be true or false, found " + kind_name(**enabled));
    r.enabled = (*enabled)->get_bool();
    return r;
}

result<enrichment> parse_enrichment(const value& v, const std::string& at, const routing_config& c) {
    const auto* o = v.if_object();
    if (!o) return invalid(at, "must be an object, found " + kind_name(v));
    if (auto r = only_known(*o, at, {"key", "value", "endpointNames"}); !r) return r.error();
    enrichment e;
    auto key = string_member(*o, "key", at, true);
    if (!key) return key.error();
    if (key->empty()) return invalid(at + ".key", "must not be empty");
    for (char ch : *key) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                        ch == '.' || ch == '_';
        if (!ok) return invalid(at + ".key", "'" + *key + "' may contain only letters, digits, '-', '.' and '_'");
    }
    e.key = std::move(*key);
    const std::string where = at + " ('" + e.key + "')";
    auto val = string_member(*o, "value", where, true);
    if (!val) return val.error();
    if (val->empty()) return invalid(where + ".value", "must not be empty");
    e.value = std::move(*val);
    auto names = endpoint_names(*o, where, c, false);
    if (!names) return names.error();
    e.endpoint_names = std::move(*names);
    return e;
}

}  // namespace

result<routing_config> parse_routing_config(const value& routing) {
    const auto* o = routing.if_object();
    if (!o) return invalid("routing", "must be an object, found " + kind_name(routing));
    if (auto r = only_known(*o, "routing", {"endpoints", "routes", "fallbackRoute", "enrichments"}); !r)
        return r.error();
    routing_config c;
    if (const auto* e = o->if_contains("endpoints"); e && !e->is_null())
        if (auto r = parse_endpoints(*e, c); !r) return r.error();
    if (const auto* routes = o->if_contains("routes"); routes && !routes->is_null()) {
        const auto* list = routes->if_array();
        if (!list) return invalid("routing.routes", "must be an array, found " + kind_name(*routes));
        if (list->size() > max_routes)
            return invalid("routing.routes", std::to_string(list->size()) + " routes; at most " +
                                                 std::to_string(max_routes) + " are allowed");
        for (std::size_t i = 0; i < list->size(); ++i) {
            const std::string at = "routing.routes[" + std::to_string(i) + "]";
            auto r = parse_route((*list)[i], at, c, false);
            if (!r) return r.error();
            for (const auto& prev : c.routes)
                if (detail::iequals(prev.name, r->name))
                    return invalid(at + ".name", "duplicate route name '" + r->name + "'");
            c.routes.push_back(std::move(*r));
        }
    }
    if (const auto* f = o->if_contains("fallbackRoute"); f && !f->is_null()) {
        auto r = parse_route(*f, "routing.fallbackRoute", c, true);
        if (!r) return r.error();
        c.fallback = std::move(*r);
    }
    if (const auto* en = o->if_contains("enrichments"); en && !en->is_null()) {
        const auto* list = en->if_array();
        if (!list) return invalid("routing.enrichments", "must be an array, found " + kind_name(*en));
        if (list->size() > max_enrichments)
            return invalid("routing.enrichments", std::to_string(list->size()) + " enrichments; at most " +
                                                      std::to_string(max_enrichments) + " are allowed");
        for (std::size_t i = 0; i < list->size(); ++i) {
            const std::string at = "routing.enrichments[" + std::to_string(i) + "]";
            auto e = parse_enrichment((*list)[i], at, c);
            if (!e) return e.error();
            for (const auto& prev : c.enrichments)
                if (detail::iequals(prev.key, e->key))
                    return invalid(at + ".key", "duplicate enrichment key '" + e->key + "'");
            c.enrichments.push_back(std::move(*e));
        }
    }
    return c;
}

namespace {

value route_json(const route& r) {
    array names;
    for (const auto& n : r.endpoint_names) names.emplace_back(n);
    return object{{"name", r.name},
                  {"source", to_string(r.source)},
                  {"condition", r.condition},
                  {"endpointNames", std::move(names)},
                  {"isEnabled", r.enabled}};
}

}  // namespace

value to_json(const routing_config& c) {
    array hubs, routes, enrichments;
    for (const auto& e : c.event_hub_endpoints) hubs.push_back(object{{"name", e}});
    for (const auto& r : c.routes) routes.push_back(route_json(r));
    for (const auto& e : c.enrichments) {
        array names;
        for (const auto& n : e.endpoint_names) names.emplace_back(n);
        enrichments.push_back(object{{"key", e.key}, {"value", e.value}, {"endpointNames", std::move(names)}});
    }
    return object{{"endpoints", object{{"eventHubs", std::move(hubs)}}},
                  {"routes", std::move(routes)},
                  {"fallbackRoute", route_json(c.fallback)},
                  {"enrichments", std::move(enrichments)}};
}

}  // namespace twinhub::telemetry
