#include "proto/iothub/topics.hpp"

#include "common/encoding.hpp"

#include <charconv>

namespace twinhub::iothub {
namespace {

constexpr std::string_view twin_res_prefix = "$iothub/twin/res/";
constexpr std::string_view twin_get_prefix = "$iothub/twin/GET";
constexpr std::string_view twin_reported_prefix = "$iothub/twin/PATCH/properties/reported";
constexpr std::string_view twin_desired_prefix = "$iothub/twin/PATCH/properties/desired/";
constexpr std::string_view method_post_prefix = "$iothub/methods/POST/";
constexpr std::string_view method_res_prefix = "$iothub/methods/res/";

error bad(std::string m) {
    return error{errc::invalid_argument, std::move(m)};
}

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

template <class I>
std::optional<I> to_int(std::string_view s) {
    I v{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

// Device side: the raw value of `name` in a "a=1&b=2" query ("" for a bare "name"), or nullopt.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    return std::nullopt;
}

// Hub side: "$rid" (and nothing else we need) from a twin/method query "?$rid=..&$version=..",
// also sent as "%24rid". The value is returned raw: it is echoed byte for byte (5.4).
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

std::string describe(const identity_key& id) {
    return id.is_module() ? "module '" + id.device_id + "/" + id.module_id + "'" : "device '" + id.device_id + "'";
}

}  // namespace

// ---- CONNECT ----

result<identity_key> parse_client_id(std::string_view client_id) {
    auto slash = client_id.find('/');
    identity_key k;
    k.device_id = std::string(client_id.substr(0, slash));
    if (slash != std::string_view::npos) {
        k.module_id = std::string(client_id.substr(slash + 1));
        if (k.module_id.empty() || k.module_id.find('/') != std::string::npos)
            return bad("MQTT client id must be '{deviceId}' or '{deviceId}/{moduleId}'.");
    }
    if (k.device_id.empty()) return bad("MQTT client id must be '{deviceId}' or '{deviceId}/{moduleId}'.");
    return k;
}

std::string make_username(std::string_view host, const identity_key& id,
                          const std::vector<std::pair<std::string_view, std::string_view>>& query) {
    std::string u(host);
    u += '/';
    u += id.device_id;
    if (id.is_module()) {
        u += '/';
        u += id.module_id;
    }
    u += "/?";
    bool first = true;
    for (const auto& [k, v] : query) {
        if (!first) u += '&';
        first = false;
        u += k;
        u += '=';
        u += percent_encode(v);
    }
    return u;
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
    if (segs.size() < 2 || segs.size() > 3 || segs[0].empty() || segs[1].empty() ||
        (segs.size() == 3 && segs[2].empty()))
        return bad(
            "MQTT user name must be '{hostName}/{deviceId}/?{query}' or '{hostName}/{deviceId}/{moduleId}/?{query}'.");
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

// ---- device -> hub PUBLISH ----

std::string identity_topic_prefix(const identity_key& id) {
    std::string p = "devices/" + id.device_id + "/";
    if (id.is_module()) p += "modules/" + id.module_id + "/";
    return p;
}

std::string telemetry_topic(const identity_key& id, const property_bag& bag) {
    return identity_topic_prefix(id) + "messages/events/" + encode_property_bag(bag);
}

std::string twin_get_topic(std::string_view rid) {
    std::string t(twin_get_prefix);
    t += "/?$rid=";
    t += rid;
    return t;
}

std::string twin_patch_topic(std::string_view rid) {
    std::string t(twin_reported_prefix);
    t += "/?$rid=";
    t += rid;
    return t;
}

std::string method_response_topic(int status, std::string_view rid) {
    std::string t(method_res_prefix);
    t += std::to_string(status);
    t += "/?$rid=";
    t += rid;
    return t;
}

result<publish_route> route_publish(std::string_view topic, const identity_key& self) {
    publish_route r;
    std::string_view t = topic;
    if (t.starts_with("$iothub/")) {
        if (consume(t, twin_get_prefix)) {
            r.kind = publish_kind::twin_get;
        } else if (consume(t, twin_reported_prefix)) {
            r.kind = publish_kind::twin_patch;
        } else if (consume(t, method_res_prefix)) {
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
    const std::string prefix = identity_topic_prefix(self);
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

// ---- SUBSCRIBE ----

std::string c2d_filter(const identity_key& id) {
    return identity_topic_prefix(id) + (id.is_module() ? "inputs/#" : "messages/devicebound/#");
}

result<subscription_kind> classify_filter(std::string_view filter, const identity_key& self) {
    if (filter == twin_response_filter) return subscription_kind::twin_responses;
    if (filter == desired_patch_filter) return subscription_kind::desired_patches;
    if (filter == methods_filter) return subscription_kind::methods;
    std::string_view f = filter;
    if (consume(f, identity_topic_prefix(self))) {
        if (!self.is_module() && f == "messages/devicebound/#") return subscription_kind::c2d;
        if (self.is_module() && (f == "inputs/#" || f == "#")) return subscription_kind::module_inputs;
    }
    return bad("Subscription to '" + std::string(filter) + "' is not allowed for " + describe(self) + ".");
}

// ---- hub -> device topics ----

std::string twin_response_topic(int status, std::string_view rid, std::optional<std::int64_t> version) {
    std::string t(twin_res_prefix);
    t += std::to_string(status);
    t += "/?$rid=";
    t += rid;
    if (version) t += "&$version=" + std::to_string(*version);
    return t;
}

std::optional<twin_response> parse_twin_response_topic(std::string_view topic) {
    if (!consume(topic, twin_res_prefix)) return std::nullopt;
    auto slash = topic.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto status = to_int<int>(topic.substr(0, slash));
    if (!status) return std::nullopt;
    std::string_view rest = topic.substr(slash + 1);
    if (!consume(rest, "?")) return std::nullopt;
    twin_response out;
    out.status = *status;
    auto rid = query_param(rest, "$rid");
    if (!rid) return std::nullopt;
    out.rid = std::string(*rid);
    if (auto v = query_param(rest, "$version")) out.version = to_int<std::int64_t>(*v);
    return out;
}

std::string desired_patch_topic(std::int64_t version) {
    return std::string(twin_desired_prefix) + "?$version=" + std::to_string(version);
}

std::optional<std::int64_t> parse_desired_patch_topic(std::string_view topic) {
    if (!consume(topic, twin_desired_prefix)) return std::nullopt;
    consume(topic, "?");
    if (auto v = query_param(topic, "$version"))
        if (auto n = to_int<std::int64_t>(*v)) return *n;
    return 0;
}

std::string method_request_topic(std::string_view method_name, std::string_view rid) {
    std::string t(method_post_prefix);
    t += method_name;
    t += "/?$rid=";
    t += rid;
    return t;
}

std::optional<method_request> parse_method_topic(std::string_view topic) {
    if (!consume(topic, method_post_prefix)) return std::nullopt;
    auto q = topic.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view name = topic.substr(0, q);
    if (name.ends_with('/')) name.remove_suffix(1);
    if (name.empty()) return std::nullopt;
    auto rid = query_param(topic.substr(q + 1), "$rid");
    if (!rid) return std::nullopt;
    return method_request{decode_lenient(name), std::string(*rid)};
}

std::string c2d_topic(const identity_key& id, std::string_view input_name, const property_bag& bag) {
    if (!id.is_module()) return identity_topic_prefix(id) + "messages/devicebound/" + encode_property_bag(bag);
    return identity_topic_prefix(id) + "inputs/" + percent_encode(input_name) + "/" + encode_property_bag(bag);
}

std::optional<c2d_delivery> parse_c2d_topic(std::string_view topic, const identity_key& self) {
    c2d_delivery out;
    if (!consume(topic, identity_topic_prefix(self))) return std::nullopt;
    if (!self.is_module()) {
        if (!consume(topic, "messages/devicebound")) return std::nullopt;
        if (!topic.empty() && !consume(topic, "/")) return std::nullopt;
    } else {
        if (!consume(topic, "inputs/")) return std::nullopt;
        auto slash = topic.find('/');
        std::string_view input = topic.substr(0, slash);
        if (input.empty()) return std::nullopt;
        out.input_name = decode_lenient(input);
        topic = slash == std::string_view::npos ? std::string_view{} : topic.substr(slash + 1);
    }
    if (topic.ends_with('/')) topic.remove_suffix(1);  // some hubs end the bag with '/'
    out.properties = decode_property_bag_lenient(topic);
    return out;
}

}  // namespace twinhub::iothub
