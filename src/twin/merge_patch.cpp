#include "twin/merge_patch.hpp"

#include <boost/json/value.hpp>

namespace twinhub::twin {
namespace json = boost::json;
namespace {

constexpr std::string_view last_updated_key = "$lastUpdated";
constexpr std::string_view last_updated_version_key = "$lastUpdatedVersion";

json::object new_node(const metadata_stamp& stamp) {
    json::object n;
    stamp_node(n, stamp);
    return n;
}

// The metadata child of `meta` for `key`, made an object node if it is missing or a leaf.
json::object& child_node(json::object& meta, std::string_view key, const metadata_stamp& stamp) {
    auto* v = meta.if_contains(key);
    if (!v || !v->is_object()) {
        meta[key] = new_node(stamp);
        v = meta.if_contains(key);
    }
    return v->get_object();
}

}  // namespace

void stamp_node(json::object& meta_node, const metadata_stamp& stamp) {
    meta_node[last_updated_key] = stamp.last_updated;
    if (stamp.last_updated_version) meta_node[last_updated_version_key] = *stamp.last_updated_version;
}

void merge_patch(json::object& target, json::object* meta, const json::object& patch, const metadata_stamp& stamp) {
    if (meta) stamp_node(*meta, stamp);
    for (const auto& kv : patch) {
        const json::value& pv = kv.value();
        if (pv.is_null()) {
            target.erase(kv.key());
            if (meta) meta->erase(kv.key());
            continue;
        }
        if (pv.is_object()) {
            auto* existing = target.if_contains(kv.key());
            if (!existing || !existing->is_object()) {
                // A new object, or an object replacing a leaf: start from {} (RFC 7396) with fresh metadata.
                target[kv.key()] = json::object();
                existing = target.if_contains(kv.key());
                if (meta) (*meta)[kv.key()] = json::object();
            }
            json::object* child_meta = meta ? &child_node(*meta, kv.key(), stamp) : nullptr;
            merge_patch(existing->get_object(), child_meta, pv.get_object(), stamp);
            continue;
        }
        target[kv.key()] = pv;
        if (meta) (*meta)[kv.key()] = new_node(stamp);
    }
}

void merge_patch(json::object& target, const json::object& patch) {
    merge_patch(target, nullptr, patch, metadata_stamp{});
}

json::object diff(const json::object& from, const json::object& to) {
    json::object d;
    for (const auto& kv : from) {
        if (!to.contains(kv.key())) d[kv.key()] = nullptr;
    }
    for (const auto& kv : to) {
        const auto* old = from.if_contains(kv.key());
        if (!old) {
            d[kv.key()] = kv.value();
        } else if (old->is_object() && kv.value().is_object()) {
            auto nested = diff(old->get_object(), kv.value().get_object());
            if (!nested.empty()) d[kv.key()] = std::move(nested);
        } else if (*old != kv.value()) {
            d[kv.key()] = kv.value();
        }
    }
    return d;
}

json::object without_read_only_keys(const json::object& section) {
    json::object out;
    out.reserve(section.size());
    for (const auto& kv : section) {
        if (kv.key() == "$metadata" || kv.key() == "$version") continue;
        out[kv.key()] = kv.value();
    }
    return out;
}

}  // namespace twinhub::twin
