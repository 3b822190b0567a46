#include "auth/shared_access_policy.hpp"

#include "common/encoding.hpp"

#include <boost/json.hpp>

#include <array>
#include <utility>

namespace twinhub::auth {
namespace {

struct right_name {
    permission bit;
    std::string_view name;
};

// Canonical order of the rights text.
constexpr std::array<right_name, 4> right_names = {{
    {registry_read, "RegistryRead"},
    {registry_write, "RegistryWrite"},
    {service_connect, "ServiceConnect"},
    {device_connect, "DeviceConnect"},
}};

constexpr std::uint32_t all_rights = registry_read | registry_write | service_connect | device_connect;

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

shared_access_policy make_policy(std::string name, std::uint32_t rights) {
    return shared_access_policy{std::move(name), generate_key(), generate_key(), rights};
}

}  // namespace

std::vector<shared_access_policy> default_policies() {
    std::vector<shared_access_policy> out;
    out.push_back(make_policy("iothubowner", all_rights));
    out.push_back(make_policy("service", service_connect));
    out.push_back(make_policy("device", device_connect));
    out.push_back(make_policy("registryRead", registry_read));
    out.push_back(make_policy("registryReadWrite", registry_read | registry_write));
    return out;
}

std::string rights_to_string(std::uint32_t rights) {
    std::string out;
    for (const auto& r : right_names) {
        if ((rights & r.bit) == 0) continue;
        if (!out.empty()) out += ", ";
        out += r.name;
    }
    return out;
}

result<std::uint32_t> rights_from_string(std::string_view s) {
    std::uint32_t rights = 0;
    if (trim(s).empty()) return rights;
    while (true) {
        auto comma = s.find(',');
        std::string_view item = trim(s.substr(0, comma));
        bool known = false;
        for (const auto& r : right_names) {
            if (iequals(item, r.name)) {
                rights |= r.bit;
                known = true;
            }
        }
        if (!known && iequals(item, "RegistryReadWrite")) {  // portal name
            rights |= registry_read | registry_write;
            known = true;
        }
        if (!known) {
            return error{errc::invalid_argument, "Unknown access right '" + std::string(item) +
                                                     "' (expected RegistryRead, RegistryWrite, ServiceConnect, "
                                                     "DeviceConnect, separated by commas)."};
        }
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return rights;
}

result<void> validate_policy(const shared_access_policy& p) {
    auto bad = [&](std::string what) {
        return error{errc::invalid_argument, "Invalid shared access policy '" + p.key_name + "': " + std::move(what)};
    };
    if (p.key_name.empty() || p.key_name.size() > 64)
        return error{errc::invalid_argument, "A shared access policy name must have 1 to 64 characters."};
    for (char c : p.key_name) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_';
        if (!ok) {
            return error{errc::invalid_argument,
                         "A shared access policy name may contain only ASCII letters, digits, '-', '.' and '_'."};
        }
    }
    for (auto [key, field] : {std::pair{&p.primary_key, "primaryKey"}, std::pair{&p.secondary_key, "secondaryKey"}}) {
        auto raw = base64_decode(*key);
        if (!raw || raw->size() < 16 || raw->size() > 64)
            return bad(std::string(field) + " must be base64 of 16 to 64 bytes.");
    }
    if ((p.rights & all_rights) == 0 || (p.rights & ~all_rights) != 0)
        return bad(
            "rights must be a non-empty combination of RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect.");
    return {};
}

result<void> validate_policies(std::span<const shared_access_policy> policies) {
    if (policies.size() > max_policies) {
        return error{errc::invalid_argument, "A hub has at most " + std::to_string(max_policies) +
                                                 " shared access policies (got " + std::to_string(policies.size()) +
                                                 ")."};
    }
    std::size_t service = 0;
    for (std::size_t i = 0; i < policies.size(); ++i) {
        if (auto r = validate_policy(policies[i]); !r) return r;
        for (std::size_t j = 0; j < i; ++j) {
            if (iequals(policies[i].key_name, policies[j].key_name)) {
                return error{errc::invalid_argument,
                             "Duplicate shared access policy name '" + policies[i].key_name + "'."};
            }
        }
        if (policies[i].has(service_connect)) ++service;
    }
    if (service > max_service_connect_policies) {
        return error{errc::invalid_argument, "A hub has at most " + std::to_string(max_service_connect_policies) +
                                                 " shared access policies with ServiceConnect."};
    }
    return {};
}

boost::json::object to_storage_json(const shared_access_policy& p) {
    boost::json::object o;
    o["keyName"] = p.key_name;
    o["primaryKey"] = p.primary_key;
    o["secondaryKey"] = p.secondary_key;
    o["rights"] = rights_to_string(p.rights);
    return o;
}

result<shared_access_policy> policy_from_storage_json(const boost::json::value& v) {
    auto corrupt = [](std::string what) {
        return error{errc::corrupt_data, "Stored shared access policy is corrupt: " + std::move(what) + "."};
    };
    const auto* o = v.if_object();
    if (!o) return corrupt("not a JSON object");
    auto str = [&](std::string_view name) -> const boost::json::string* {
        const auto* f = o->if_contains(name);
        return f ? f->if_string() : nullptr;
    };
    const auto* name = str("keyName");
    const auto* primary = str("primaryKey");
    const auto* secondary = str("secondaryKey");
    const auto* rights_text = str("rights");
    if (!name || name->empty()) return corrupt("'keyName' is missing or not a non-empty string");
    std::string policy_name(name->c_str(), name->size());
    if (!primary) return corrupt("'primaryKey' is missing for policy '" + policy_name + "'");
    if (!secondary) return corrupt("'secondaryKey' is missing for policy '" + policy_name + "'");
    if (!rights_text) return corrupt("'rights' is missing for policy '" + policy_name + "'");
    auto rights = rights_from_string(std::string_view(rights_text->data(), rights_text->size()));
    if (!rights) return corrupt("'rights' of policy '" + policy_name + "': " + rights.error().message);

    shared_access_policy p;
    p.key_name = std::move(policy_name);
    p.primary_key.assign(primary->data(), primary->size());
    p.secondary_key.assign(secondary->data(), secondary->size());
    p.rights = *rights;
    return p;
}

}  // namespace twinhub::auth
