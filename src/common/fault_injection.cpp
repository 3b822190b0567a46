#include "common/fault_injection.hpp"

#include <charconv>

namespace twinhub::fault {
namespace {

constexpr std::pair<std::string_view, kind> kinds[] = {
    {"KillTcp", kind::kill_tcp},
    {"ShutDownMqtt", kind::shutdown_mqtt},
    {"ShutDownAmqp", kind::shutdown_amqp},
    {"KillAmqpConnection", kind::kill_amqp_connection},
    {"KillAmqpSession", kind::kill_amqp_session},
    {"KillAmqpCBSLinkReq", kind::kill_amqp_cbs_req},
    {"KillAmqpCBSLinkResp", kind::kill_amqp_cbs_resp},
    {"KillAmqpD2CLink", kind::kill_amqp_d2c},
    {"KillAmqpC2DLink", kind::kill_amqp_c2d},
    {"KillAmqpTwinLinkReq", kind::kill_amqp_twin_req},
    {"KillAmqpTwinLinkResp", kind::kill_amqp_twin_resp},
    {"KillAmqpMethodReqLink", kind::kill_amqp_method_req},
    {"KillAmqpMethodRespLink", kind::kill_amqp_method_resp},
    {"InvokeThrottling", kind::throttling},
    {"InvokeMaxMessageQuota", kind::max_message_quota},
    {"InvokeAuthError", kind::auth_error},
};

const std::string* find(const properties& app, std::string_view name) {
    for (const auto& [k, v] : app)
        if (k == name) return &v;
    return nullptr;
}

// Whole seconds, 0-3600; "2" and "2.0" (a number the AMQP head turned into text) both read as 2.
std::optional<std::chrono::seconds> seconds_of(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (auto dot = text.find('.'); dot != std::string_view::npos) {
        for (char c : text.substr(dot + 1))
            if (c != '0') return std::nullopt;
        text = text.substr(0, dot);
    }
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n < 0 || n > 3600) return std::nullopt;
    return std::chrono::seconds(n);
}

}  // namespace

std::optional<request> parse(const properties& app, std::string* error) {
    const std::string* type = find(app, "AzIoTHub_FaultOperationType");
    if (!type) return std::nullopt;
    request r;
    r.type = *type;
    bool known = false;
    for (const auto& [name, k] : kinds)
        if (name == *type) r.what = k, known = true;
    if (!known) {
        if (error) *error = "unknown AzIoTHub_FaultOperationType '" + *type + "'";
        return std::nullopt;
    }
    if (const std::string* reason = find(app, "AzIoTHub_FaultOperationCloseReason")) r.reason = *reason;
    for (auto [name, out] : {std::pair{"AzIoTHub_FaultOperationDelayInSecs", &r.delay},
                             std::pair{"AzIoTHub_FaultOperationDurationInSecs", &r.duration}}) {
        const std::string* v = find(app, name);
        // Microsoft's c2d_disconnect.js sends an undefined duration, which arrives as "null".
        if (!v || v->empty() || *v == "null" || *v == "undefined") continue;
        auto s = seconds_of(*v);
        if (!s) {
            if (error) *error = std::string(name) + " '" + *v + "' is not a number of seconds between 0 and 3600";
            return std::nullopt;
        }
        *out = *s;
    }
    return r;
}

bool applies_to_mqtt(kind k) noexcept {
    return k == kind::kill_tcp || k == kind::shutdown_mqtt || k == kind::throttling || k == kind::max_message_quota ||
           k == kind::auth_error;
}

}  // namespace twinhub::fault
