#include "client/topics.hpp"

namespace twinhub::client {
namespace {

identity_key key_of(std::string_view device_id, std::string_view module_id) {
    return identity_key{std::string(device_id), std::string(module_id)};
}

}  // namespace

std::string mqtt_username(std::string_view host, std::string_view device_id, std::string_view module_id,
                          std::string_view model_id) {
    std::vector<std::pair<std::string_view, std::string_view>> query{{"api-version", iothub::api_version},
                                                                     {"DeviceClientType", "twinhub-cpp/0.1.0"}};
    if (!model_id.empty()) query.emplace_back("model-id", model_id);
    return iothub::make_username(host, key_of(device_id, module_id), query);
}

std::string telemetry_topic(std::string_view device_id, std::string_view module_id, const message& m) {
    iothub::property_bag bag;
    auto system = [&](std::string_view key, const std::string& v) {
        if (!v.empty()) bag.system.emplace_back(std::string(key), v);
    };
    system("$.mid", m.message_id);
    system("$.cid", m.correlation_id);
    system("$.ct", m.content_type);
    system("$.ce", m.content_encoding);
    system("$.on", m.output_name);
    bag.application = m.properties;
    return iothub::telemetry_topic(key_of(device_id, module_id), bag);
}

std::optional<received_c2d_message> parse_c2d_topic(std::string_view topic, std::string_view device_id,
                                                    std::string_view module_id) {
    auto d = iothub::parse_c2d_topic(topic, key_of(device_id, module_id));
    if (!d) return std::nullopt;
    received_c2d_message out;
    out.input_name = std::move(d->input_name);
    for (auto& [key, value] : d->properties.system) {
        if (key == "$.mid")
            out.message_id = std::move(value);
        else if (key == "$.cid")
            out.correlation_id = std::move(value);
        else if (key == "$.uid")
            out.user_id = std::move(value);
        else if (key == "$.to")
            out.to = std::move(value);
        else if (key == "$.ct")
            out.content_type = std::move(value);
        else if (key == "$.ce")
            out.content_encoding = std::move(value);
        else if (key == "$.exp")
            out.expiry_time_utc = std::move(value);
        // other system properties ($.ctime, $.on, ...): not surfaced
    }
    for (auto& [key, value] : d->properties.application) {
        if (key == "iothub-ack")
            out.ack = std::move(value);
        else
            out.properties.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

}  // namespace twinhub::client
