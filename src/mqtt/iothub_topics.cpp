#include "mqtt/iothub_topics.hpp"

#include "common/encoding.hpp"

#include <charconv>

namespace twinhub::mqtt {
namespace {

error bad(std::string m) { return error{errc::invalid_argument, std::move(m)}; }

bool consume(std::string_view& s, std::string_view prefix) {
    if (!s.starts_with(prefix)) return false;
    s.remove_prefix(prefix.size());
    return true;
}

// Lenient decode: a malformed escape keeps the raw text (usernames come from many SDK versions).
std::string decode_lenient(std::string_view s) {
    auto d = percent_decode(s);
    return d ? std::move(*d) : std::string(s);
}

// "$rid" (and nothing else we need) from a twin/method query "?$rid=..&$version=..". The value is
// returned raw: it is echoed byte for byte (5.4).
std::optional<std::string> rid_of(std::string_view query) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.starts_with("$rid=")) return std::string(pair.substr(5));
        if (pair.starts_with("%24rid=")) return std::string(pair.substr(7));
    }
    return std::nullopt;
}

// After a twin/method path: "/?query", "?query" (Node accepts both for methods) -> query.
std::optional<std::string_view> query_after(std::string_view rest) {
    if (rest.starts_with("/")) rest.remove_prefix(1);
    if (!rest.starts_with("?")) return std::nullopt;
    return rest.substr(1);
}

std::string identity_prefix(const store::identity_key& self) {
    std::string p = "devices/" + self.device_id + "/";
    if (self.is_module()) p += "modules/" + self.module_id + "/";
    return p;
}

std::string describe(const store::identity_key& id) {
    return id.is_module() ? "module '" + id.device_id + "/" + id.module_id + "'" : "device '" + id.device_id + "'";
}

}  // namespace

result<store::identity_key> parse_client_id(std::string_view client_id) {
    auto slash = client_id.find('/');
    store::identity_key k;
    k.device_id = std::string(client_id.substr(0, slash));
    if (slash != std::string_view::npos) {
        k.module_id = std::string(client_id.substr(slash + 1));
        if (k.module_id.empty() || k.module_id.find('/') != std::string::npos)
            return bad("MQTT client id must be '{deviceId}' or '{deviceId}/{moduleId}'.");
    }
    if (k.device_id.empty()) return bad("MQTT client id must be '{deviceId}' or '{deviceId}/{moduleId}'.");
    return k;
}

std::optional<std::string> parsed_username::param(std::string_view key) const {
    for (auto& [k, v] : query)
        if (k == key) return v;
    return std::nullopt;
}

result<parsed_username> parse_username(std::string_view username) {
    std::string_view path = username, query;
    if (auto q = username.find('?'); q != std::string_view::npos) {
        path = username.substr(0, q);
        query = username.substr(q + 1);
    }
    std::vector<std::string_view> segs;
    while (!path.empty()) {
        auto s = path.find('/');
        segs.push_back(path.substr(0, s));
        if (s == std::string_view::npos) break;
        path.remove_prefix(s + 1);
    }
    // Old form without '?': the last segment is the query when it holds '='.
    if (query.empty() && segs.size() >= 3 && segs.back().find('=') != std::string_view::npos) {
        query = segs.back();
        segs.pop_back();
    }
    if (segs.size() < 2 || segs.size() > 3 || segs[0].empty() || segs[1].empty() || (segs.size() == 3 && segs[2].empty()))
        return bad("MQTT user name must be '{hostName}/{deviceId}/?{query}' or '{hostName}/{deviceId}/{moduleId}/?{query}'.");
    parsed_username u;
    u.host = std::string(segs[0]);
    u.identity.device_id = std::string(segs[1]);
    if (segs.size() == 3) u.identity.module_id = std::string(segs[2]);
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        if (eq == std::string_view::npos)
            u.query.emplace_back(decode_lenient(pair), std::string());
        else
            u.query.emplace_back(decode_lenient(pair.substr(0, eq)), decode_lenient(pair.substr(eq + 1)));
    }
    return u;
}

result<publish_route> route_publish(std::string_view topic, const store::identity_key& self) {
    publish_route r;
    std::string_view t = topic;
    if (consume(t, "$iothub/")) {
        if (consume(t, "twin/GET")) {
            r.kind = publish_kind::twin_get;
        } else if (consume(t, "twin/PATCH/properties/reported")) {
            r.kind = publish_kind::twin_patch;
        } else if (consume(t, "methods/res/")) {
            r.kind = publish_kind::method_response;
            auto slash = t.find_first_of("/?");
            std::string_view status = t.substr(0, slash);
            auto [p, ec] = std::from_chars(status.data(), status.data() + status.size(), r.status);
            if (ec != std::errc{} || p != status.data() + status.size())
                return bad("Method response topic '" + std::string(topic) + "' has no numeric status.");
            t.remove_prefix(status.size());
        } else {
            return bad("Topic '" + std::string(topic) + "' is not an IoT Hub topic a device may publish to.");
        }
        auto q = query_after(t);
        if (!q) return bad("Topic '" + std::string(topic) + "' must end with '/?$rid={requestId}'.");
        auto rid = rid_of(*q);
        if (!rid || rid->empty()) return bad("Topic '" + std::string(topic) + "' has no $rid.");
        r.rid = std::move(*rid);
        return r;
    }
    const std::string prefix = identity_prefix(self);
    if (!consume(t, prefix) || !consume(t, "messages/events"))
        return bad("Topic '" + std::string(topic) + "' is not a telemetry topic of " + describe(self) + ".");
    r.kind = publish_kind::telemetry;
    if (t.empty()) return r;
    if (!consume(t, "/"))
        return bad("Topic '" + std::string(topic) + "' is not a telemetry topic of " + describe(self) + ".");
    if (t.ends_with("/")) t.remove_suffix(1);
    if (t.find('/') != std::string_view::npos)
        return bad("Telemetry topic '" + std::string(topic) + "' has more than one property bag segment.");
    r.property_bag = std::string(t);
    return r;
}

result<subscription_kind> classify_filter(std::string_view filter, const store::identity_key& self) {
    if (filter == twin_response_filter) return subscription_kind::twin_responses;
    if (filter == desired_patch_filter) return subscription_kind::desired_patches;
    if (filter == methods_filter) return subscription_kind::methods;
    std::string_view f = filter;
    if (consume(f, identity_prefix(self))) {
        if (!self.is_module() && f == "messages/devicebound/#") return subscription_kind::c2d;
        if (self.is_module() && (f == "inputs/#" || f == "#")) return subscription_kind::module_inputs;
    }
    return bad("Subscription to '" + std::string(filter) + "' is not allowed for " + describe(self) + ".");
}

std::string twin_response_topic(int status, std::string_view rid, std::optional<std::int64_t> version) {
    std::string t = "$iothub/twin/res/" + std::to_string(status) + "/?$rid=";
    t += rid;
    if (version) t += "&$version=" + std::to_string(*version);
    return t;
}

std::string desired_patch_topic(std::int64_t version) {
    return "$iothub/twin/PATCH/properties/desired/?$version=" + std::to_string(version);
}

std::string method_request_topic(std::string_view method_name, std::string_view rid) {
    std::string t = "$iothub/methods/POST/";
    t += method_name;
    t += "/?$rid=";
    t += rid;
    return t;
}

result<property_bag> decode_property_bag(std::string_view bag) {
    property_bag out;
    while (!bag.empty()) {
        auto amp = bag.find('&');
        std::string_view pair = bag.substr(0, amp);
        bag = amp == std::string_view::npos ? std::string_view{} : bag.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq));
        std::optional<std::string> value = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
        if (!key || !value) return bad("Property bag pair '" + std::string(pair) + "' has a malformed percent escape.");
        if (key->empty()) continue;
        if (key->starts_with("$."))
            out.system.emplace_back(std::move(*key), std::move(*value));
        else
            out.application.emplace_back(std::move(*key), std::move(*value));
    }
    return out;
}

}  // namespace twinhub::mqtt
