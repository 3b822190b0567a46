#include "client/topics.hpp"

#include "common/encoding.hpp"

#include <charconv>

namespace twinhub::client {
namespace {

// The value of `name` in a "a=1&b=2" query, or nullopt.
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

template <class I>
std::optional<I> to_int(std::string_view s) {
    I v{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

void add_prop(std::string& bag, std::string_view key, std::string_view value) {
    if (!bag.empty()) bag += '&';
    bag += percent_encode(key);
    bag += '=';
    bag += percent_encode(value);
}

}  // namespace

std::string mqtt_username(std::string_view host, std::string_view device_id, std::string_view module_id,
                          std::string_view model_id) {
    std::string u(host);
    u += '/';
    u += device_id;
    if (!module_id.empty()) {
        u += '/';
        u += module_id;
    }
    u += "/?api-version=";
    u += api_version;
    u += "&DeviceClientType=";
    u += percent_encode("twinhub-cpp/0.1.0");
    if (!model_id.empty()) {
        u += "&model-id=";
        u += percent_encode(model_id);
    }
    return u;
}

std::string telemetry_topic(std::string_view device_id, std::string_view module_id, const message& m) {
    std::string t = "devices/";
    t += device_id;
    if (!module_id.empty()) {
        t += "/modules/";
        t += module_id;
    }
    t += "/messages/events/";
    std::string bag;
    if (!m.message_id.empty()) add_prop(bag, "$.mid", m.message_id);
    if (!m.correlation_id.empty()) add_prop(bag, "$.cid", m.correlation_id);
    if (!m.content_type.empty()) add_prop(bag, "$.ct", m.content_type);
    if (!m.content_encoding.empty()) add_prop(bag, "$.ce", m.content_encoding);
    if (!m.output_name.empty()) add_prop(bag, "$.on", m.output_name);
    for (const auto& [k, v] : m.properties) add_prop(bag, k, v);
    t += bag;
    return t;
}

std::string twin_get_topic(std::string_view rid) {
    return "$iothub/twin/GET/?$rid=" + std::string(rid);
}

std::string twin_patch_topic(std::string_view rid) {
    return "$iothub/twin/PATCH/properties/reported/?$rid=" + std::string(rid);
}

std::string method_response_topic(int status, std::string_view rid) {
    return "$iothub/methods/res/" + std::to_string(status) + "/?$rid=" + std::string(rid);
}

std::optional<twin_response_topic> parse_twin_response_topic(std::string_view topic) {
    constexpr std::string_view prefix = "$iothub/twin/res/";
    if (!topic.starts_with(prefix)) return std::nullopt;
    topic.remove_prefix(prefix.size());
    auto slash = topic.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto status = to_int<int>(topic.substr(0, slash));
    if (!status) return std::nullopt;
    std::string_view rest = topic.substr(slash + 1);
    if (!rest.starts_with("?")) return std::nullopt;
    rest.remove_prefix(1);
    twin_response_topic out;
    out.status = *status;
    auto rid = query_param(rest, "$rid");
    if (!rid) return std::nullopt;
    out.rid = std::string(*rid);
    if (auto v = query_param(rest, "$version")) out.version = to_int<std::int64_t>(*v);
    return out;
}

std::optional<std::int64_t> parse_desired_patch_topic(std::string_view topic) {
    constexpr std::string_view prefix = "$iothub/twin/PATCH/properties/desired/";
    if (!topic.starts_with(prefix)) return std::nullopt;
    topic.remove_prefix(prefix.size());
    if (topic.starts_with("?")) topic.remove_prefix(1);
    if (auto v = query_param(topic, "$version"))
        if (auto n = to_int<std::int64_t>(*v)) return *n;
    return 0;
}

std::optional<method_topic> parse_method_topic(std::string_view topic) {
    constexpr std::string_view prefix = "$iothub/methods/POST/";
    if (!topic.starts_with(prefix)) return std::nullopt;
    topic.remove_prefix(prefix.size());
    auto q = topic.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view name = topic.substr(0, q);
    if (name.ends_with('/')) name.remove_suffix(1);
    if (name.empty()) return std::nullopt;
    auto rid = query_param(topic.substr(q + 1), "$rid");
    if (!rid) return std::nullopt;
    auto decoded = percent_decode(name);
    return method_topic{decoded ? *decoded : std::string(name), std::string(*rid)};
}

std::string c2d_filter(std::string_view device_id, std::string_view module_id) {
    std::string f = "devices/";
    f += device_id;
    if (module_id.empty()) return f + "/messages/devicebound/#";
    f += "/modules/";
    f += module_id;
    return f + "/inputs/#";
}

std::optional<received_c2d_message> parse_c2d_topic(std::string_view topic, std::string_view device_id,
                                                    std::string_view module_id) {
    std::string prefix = "devices/" + std::string(device_id);
    received_c2d_message out;
    if (module_id.empty()) {
        prefix += "/messages/devicebound";
        if (!topic.starts_with(prefix)) return std::nullopt;
        topic.remove_prefix(prefix.size());
        if (!topic.empty() && !topic.starts_with("/")) return std::nullopt;
        if (!topic.empty()) topic.remove_prefix(1);
    } else {
        prefix += "/modules/" + std::string(module_id) + "/inputs/";
        if (!topic.starts_with(prefix)) return std::nullopt;
        topic.remove_prefix(prefix.size());
        auto slash = topic.find('/');
        std::string_view input = topic.substr(0, slash);
        if (input.empty()) return std::nullopt;
        auto decoded = percent_decode(input);
        out.input_name = decoded ? *decoded : std::string(input);
        topic = slash == std::string_view::npos ? std::string_view{} : topic.substr(slash + 1);
    }
    if (topic.ends_with('/')) topic.remove_suffix(1);  // some hubs end the bag with '/'
    auto decode = [](std::string_view s) {
        auto d = percent_decode(s);
        return d ? *d : std::string(s);
    };
    while (!topic.empty()) {
        auto amp = topic.find('&');
        std::string_view pair = topic.substr(0, amp);
        topic = amp == std::string_view::npos ? std::string_view{} : topic.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string key = decode(pair.substr(0, eq));
        std::string value = eq == std::string_view::npos ? std::string{} : decode(pair.substr(eq + 1));
        if (key == "$.mid") out.message_id = std::move(value);
        else if (key == "$.cid") out.correlation_id = std::move(value);
        else if (key == "$.uid") out.user_id = std::move(value);
        else if (key == "$.to") out.to = std::move(value);
        else if (key == "$.ct") out.content_type = std::move(value);
        else if (key == "$.ce") out.content_encoding = std::move(value);
        else if (key == "$.exp") out.expiry_time_utc = std::move(value);
        else if (key == "iothub-ack") out.ack = std::move(value);
        else if (key.starts_with("$.")) continue;  // other system properties ($.ctime, $.on, ...): not surfaced
        else out.properties.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

}  // namespace twinhub::client
