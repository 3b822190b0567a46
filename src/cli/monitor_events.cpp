#include "cli/monitor_events.hpp"

#include "common/text.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>

namespace twinhub::cli {

namespace {

// az (uamqp) names the AMQP properties section's fields with underscores.
constexpr std::pair<const char*, const char*> system_names[] = {
    {"message-id", "message_id"},
    {"user-id", "user_id"},
    {"to", "to"},
    {"subject", "subject"},
    {"reply-to", "reply_to"},
    {"correlation-id", "correlation_id"},
    {"content-type", "content_type"},
    {"content-encoding", "content_encoding"},
    {"absolute-expiry-time", "absolute_expiry_time"},
    {"creation-time", "creation_time"},
    {"group-id", "group_id"},
};

std::string lower(std::string s) { return ascii_lower(s); }

std::string annotation_text(const event_data& e, const char* key) {
    auto* v = e.annotations.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

bool wildcard_match(std::string_view p, std::string_view t) {
    std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
            ++pi;
            ++ti;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

boost::json::object event_json(const event_data& e, bool sys, bool app, bool anno) {
    boost::json::object ev;
    ev["origin"] = e.device_id;
    ev["module"] = e.module_id;
    std::string interface = annotation_text(e, "iothub-interface-name");
    if (interface.empty()) interface = annotation_text(e, "dt-dataschema");
    ev["interface"] = interface;
    ev["component"] = annotation_text(e, "dt-subject");
    boost::json::object system;
    for (auto [amqp_name, az_name] : system_names)
        if (auto* v = e.system_properties.if_contains(amqp_name)) system[az_name] = *v;
    if (sys || app) {
        boost::json::object props;
        if (sys && !system.empty()) props["system"] = system;
        if (app) {
            boost::json::object a;
            for (const auto& [k, v] : e.properties) a[k] = v;
            props["application"] = std::move(a);
        }
        ev["properties"] = std::move(props);
    }
    if (anno) ev["annotations"] = e.annotations;
    // Like az: the payload is parsed as JSON only when the content type says so.
    boost::json::value payload = boost::json::string(e.body);
    if (auto* ct = system.if_contains("content_type");
        ct && ct->is_string() && lower(std::string(ct->as_string())).find("application/json") != std::string::npos) {
        boost::system::error_code ec;
        auto v = boost::json::parse(e.body, ec);
        if (!ec) payload = std::move(v);
    }
    ev["payload"] = std::move(payload);
    return {{"event", std::move(ev)}};
}

void add_monitor_options(CLI::App* c, monitor_args& m) {
    c->add_option("-d,--device-id", m.device_pattern, "Only events of this device; '*' and '?' are wildcards");
    c->add_option("-m,--module-id", m.module_pattern, "Only events of this module; '*' and '?' are wildcards");
    c->add_option("--cg,-c,--consumer-group", m.consumer_group, "Consumer group of the built-in endpoint")
        ->capture_default_str();
    c->add_option("--props,--properties,-p", m.props,
                  "Message parts to print besides the payload: sys (system properties), app (application "
                  "properties), anno (annotations), all")
        ->check(CLI::IsMember({"sys", "app", "anno", "all"}))
        ->expected(1, 4);
    c->add_option("--timeout,--to,-t", m.timeout, "Seconds to monitor; 0: until interrupted")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    auto* et = c->add_option("--enqueued-time,--et,-e", m.enqueued_time_ms,
                             "Start with events enqueued after this time, milliseconds since the Unix epoch "
                             "(default: now)")
                   ->check(CLI::NonNegativeNumber);
    c->add_option("--start", m.start, "Where to start without --enqueued-time: latest (now) or earliest")
        ->check(CLI::IsMember({"latest", "earliest"}))
        ->capture_default_str()
        ->excludes(et);
}

int monitor_events(const monitor_args& m, const std::string& login, service_options options,
                   const std::function<int(const error&)>& fail) {
    auto has = [&](const char* p) { return std::find(m.props.begin(), m.props.end(), p) != m.props.end(); };
    const bool all = has("all");
    const bool sys = all || has("sys"), app = all || has("app"), anno = all || has("anno");

    event_consumer_options o;
    o.service = std::move(options);
    o.consumer_group = m.consumer_group;
    if (m.enqueued_time_ms >= 0)
        o.start = event_position::from_enqueued_time(
            std::chrono::system_clock::time_point(std::chrono::milliseconds(m.enqueued_time_ms)));
    else
        o.start = m.start == "earliest" ? event_position::earliest() : event_position::latest();
    auto consumer = event_consumer::from_connection_string(login, std::move(o));
    if (!consumer) {  // a bad connection string or option: a usage error, like the other commands'
        std::cerr << "twinhub: usage: " << consumer.error().message << "\n";
        return 2;
    }
    if (auto c = consumer->connect(); !c) return fail(c.error());

    std::cerr << "Starting event monitor";
    if (!m.device_pattern.empty()) std::cerr << ", filtering on device: " << m.device_pattern;
    if (!m.module_pattern.empty()) std::cerr << ", module: " << m.module_pattern;
    std::cerr << (m.timeout > 0 ? ", for " + std::to_string(m.timeout) + " s" : std::string(", use ctrl-c to stop"))
              << "...\n";

    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::seconds(m.timeout);
    for (;;) {
        auto wait = std::chrono::milliseconds(3'600'000);
        if (m.timeout > 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            if (left.count() <= 0) return 0;
            wait = left;
        }
        auto ev = consumer->receive(wait);
        if (!ev) return fail(ev.error());
        if (!*ev) continue;
        const auto& e = **ev;
        if (!m.device_pattern.empty() && !wildcard_match(m.device_pattern, e.device_id)) continue;
        if (!m.module_pattern.empty() && !wildcard_match(m.module_pattern, e.module_id)) continue;
        std::cout << boost::json::serialize(event_json(e, sys, app, anno)) << std::endl;
    }
}

}  // namespace twinhub::cli
