// Route evaluation and enrichment stamping (router.hpp).
#include "telemetry/router.hpp"
#include "telemetry/routing_lookup.hpp"

#include <boost/json/serialize.hpp>

namespace twinhub::telemetry {

namespace {

error invalid(std::string what) {
    return {errc::invalid_argument, std::move(what)};
}

bool endpoint_exists(const routing_config& c, const std::string& name) {
    if (name == builtin_endpoint) return true;
    for (const auto& e : c.event_hub_endpoints)
        if (e == name) return true;
    return false;
}

// "$twin.tags.a.b" -> {"tags","a","b"}; only the sections Azure supports for enrichments.
std::optional<std::vector<std::string>> twin_path(std::string_view value) {
    constexpr std::string_view prefix = "$twin.";
    if (value.size() <= prefix.size() || !detail::iequals(value.substr(0, prefix.size()), prefix)) return std::nullopt;
    std::vector<std::string> path;
    std::string_view rest = value.substr(prefix.size());
    while (true) {
        auto dot = rest.find('.');
        std::string_view part = rest.substr(0, dot);
        if (part.empty()) return std::nullopt;
        path.emplace_back(part);
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    const bool tags = detail::iequals(path[0], "tags") && path.size() >= 2;
    const bool props = path.size() >= 3 && detail::iequals(path[0], "properties") &&
                       (detail::iequals(path[1], "desired") || detail::iequals(path[1], "reported"));
    if (!tags && !props) return std::nullopt;
    return path;
}

}  // namespace

result<std::shared_ptr<const router>> router::compile(routing_config config, std::string hub_name) {
    std::shared_ptr<router> r(new router());
    r->config_ = std::move(config);
    r->hub_name_ = std::move(hub_name);
    const routing_config& c = r->config_;
    auto check = [&](const telemetry::route& rt) -> result<compiled_route> {
        if (rt.source == route_source::invalid) return invalid("route '" + rt.name + "': invalid source");
        if (rt.endpoint_names.empty()) return invalid("route '" + rt.name + "': no endpoint");
        for (const auto& e : rt.endpoint_names)
            if (!endpoint_exists(c, e)) return invalid("route '" + rt.name + "': unknown endpoint '" + e + "'");
        auto cond = condition::compile(rt.condition);
        if (!cond) return invalid("route '" + rt.name + "': condition: " + cond.error().message);
        return compiled_route{&rt, std::move(*cond)};
    };
    for (const auto& rt : c.routes) {
        auto compiled = check(rt);
        if (!compiled) return compiled.error();
        r->routes_.push_back(std::move(*compiled));
    }
    auto fb = check(c.fallback);
    if (!fb) return fb.error();
    if (c.fallback.source != route_source::telemetry) return invalid("the fallback route reads DeviceMessages only");
    r->fallback_ = std::move(*fb);
    for (const auto& e : c.enrichments) {
        for (const auto& name : e.endpoint_names)
            if (!endpoint_exists(c, name))
                return invalid("enrichment '" + e.key + "': unknown endpoint '" + name + "'");
        compiled_enrichment ce{&e, compiled_enrichment::kind::literal, {}};
        if (detail::iequals(e.value, "$iothubname")) {
            ce.k = compiled_enrichment::kind::hub_name;
        } else if (auto path = twin_path(e.value)) {
            ce.k = compiled_enrichment::kind::twin;
            ce.twin_path = std::move(*path);
        }
        r->enrichments_.push_back(std::move(ce));
    }
    return std::shared_ptr<const router>(std::move(r));
}

std::string router::enrichment_value(const compiled_enrichment& e, const routing_message& m) const {
    switch (e.k) {
        case compiled_enrichment::kind::literal: return e.def->value;
        case compiled_enrichment::kind::hub_name: return hub_name_;
        case compiled_enrichment::kind::twin: break;
    }
    // Azure stamps the literal text when there is no twin, the path is missing, or the value is an
    // object or array ("only primitive types are supported for enrichments").
    const boost::json::value* v = m.twin;
    for (const auto& part : e.twin_path) {
        if (!v) break;
        v = detail::find_member(*v, part);
    }
    if (!v || v->is_object() || v->is_array()) return e.def->value;
    if (v->is_string()) return std::string(v->get_string());
    return boost::json::serialize(*v);
}

std::vector<router::delivery> router::route(const routing_message& m) const {
    std::vector<delivery> out;
    condition_input in(m);
    auto add = [&](const std::string& endpoint) {
        for (const auto& d : out)
            if (d.endpoint == endpoint) return;
        out.push_back(delivery{endpoint, {}});
    };
    for (const auto& r : routes_)
        if (r.def->enabled && r.def->source == m.source && r.cond.matches(in))
            for (const auto& e : r.def->endpoint_names) add(e);
    if (out.empty() && m.source == route_source::telemetry && fallback_ && fallback_->def->enabled &&
        fallback_->cond.matches(in))
        for (const auto& e : fallback_->def->endpoint_names) add(e);
    for (auto& d : out)
        for (const auto& e : enrichments_)
            for (const auto& name : e.def->endpoint_names)
                if (name == d.endpoint) d.enrichments.emplace_back(e.def->key, enrichment_value(e, m));
    return out;
}

}  // namespace twinhub::telemetry
