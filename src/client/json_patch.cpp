#include "client/json_patch.hpp"

#include <boost/json/value.hpp>

namespace twinhub::client {
namespace {
bool is_meta(std::string_view k) { return !k.empty() && k.front() == '$'; }
}  // namespace

boost::json::object merge_patch_diff(const boost::json::object& from, const boost::json::object& to) {
    boost::json::object out;
    for (const auto& kv : from) {
        if (is_meta(kv.key())) continue;
        if (!to.contains(kv.key())) out[kv.key()] = nullptr;
    }
    for (const auto& kv : to) {
        if (is_meta(kv.key())) continue;
        const auto* old = from.if_contains(kv.key());
        if (!old) {
            out[kv.key()] = kv.value();
        } else if (old->is_object() && kv.value().is_object()) {
            auto sub = merge_patch_diff(old->as_object(), kv.value().as_object());
            if (!sub.empty()) out[kv.key()] = std::move(sub);
        } else if (*old != kv.value()) {
            out[kv.key()] = kv.value();
        }
    }
    return out;
}

void apply_merge_patch(boost::json::object& target, const boost::json::object& patch) {
    for (const auto& kv : patch) {
        if (is_meta(kv.key())) continue;
        if (kv.value().is_null()) {
            target.erase(kv.key());
        } else if (kv.value().is_object()) {
            auto& slot = target[kv.key()];
            if (!slot.is_object()) slot = boost::json::object{};
            apply_merge_patch(slot.as_object(), kv.value().as_object());
        } else {
            target[kv.key()] = kv.value();
        }
    }
}

boost::json::object without_meta(const boost::json::object& o) {
    boost::json::object out;
    for (const auto& kv : o)
        if (!is_meta(kv.key())) out[kv.key()] = kv.value();
    return out;
}

}  // namespace twinhub::client
