#include "auth/authenticator.hpp"

#include "auth/sas_token.hpp"

#include <utility>

namespace twinhub::auth {
namespace {

error denied(std::string reason) {
    return {errc::unauthorized, std::move(reason)};
}

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

// Parses and turns every parse failure into unauthorized (a malformed credential is a credential
// failure on the wire).
result<sas_token> parse_for_auth(std::string_view token) {
    if (token.empty()) return denied("Missing SAS token.");
    auto t = parse_sas_token(token);
    if (!t) return denied(t.error().message);
    return t;
}

// Removes a ":digits" suffix from the first '/'-separated segment ("h:8884/devices/d" -> "h/devices/d").
std::string strip_port(std::string_view s) {
    auto slash = s.find('/');
    std::string_view host = s.substr(0, slash);
    auto colon = host.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == host.size() || host.size() - colon - 1 > 5)
        return std::string(s);
    for (char c : host.substr(colon + 1))
        if (c < '0' || c > '9') return std::string(s);
    std::string out(host.substr(0, colon));
    if (slash != std::string_view::npos) out.append(s.substr(slash));
    return out;
}

// The sr forms compared against resources: percent-decoded (when valid) and raw, each without a port.
struct sr_forms {
    std::string decoded;
    bool decoded_ok = false;
    std::string raw;
};

// Drops a leading "sb://", "amqps://" or "https://": AMQP clients (Event Hubs, CBS) sign URIs.
std::string_view strip_scheme(std::string_view s) {
    for (std::string_view scheme : {"sb://", "amqps://", "amqp://", "https://"})
        if (s.size() > scheme.size() && resource_authorizes(scheme, s.substr(0, scheme.size()))) return s.substr(scheme.size());
    return s;
}

sr_forms forms_of(const sas_token& t) {
    sr_forms f;
    f.raw = strip_port(strip_scheme(t.resource));
    if (auto d = decode_resource(t.resource)) {
        f.decoded = strip_port(strip_scheme(*d));
        f.decoded_ok = true;
    }
    return f;
}

bool prefix_of(const sr_forms& f, std::string_view resource) {
    return (f.decoded_ok && resource_authorizes(f.decoded, resource)) || resource_authorizes(f.raw, resource);
}

std::size_t normalized_size(std::string_view sr) {
    return (!sr.empty() && sr.back() == '/') ? sr.size() - 1 : sr.size();
}

// sr names exactly `resource` (case-insensitive, one trailing '/' ignored).
bool names(const sr_forms& f, std::string_view resource) {
    auto exact = [&](std::string_view sr) {
        return normalized_size(sr) == resource.size() && resource_authorizes(sr, resource);
    };
    return (f.decoded_ok && exact(f.decoded)) || exact(f.raw);
}

std::string_view shown(const sr_forms& f) {
    return f.decoded_ok ? f.decoded : f.raw;
}

const shared_access_policy* find_policy(std::span<const shared_access_policy> policies, std::string_view name) {
    for (const auto& p : policies)
        if (p.key_name == name) return &p;
    return nullptr;
}

std::string identity_text(const identity_key& id) {
    return id.is_module() ? "module '" + id.device_id + "/" + id.module_id + "'" : "device '" + id.device_id + "'";
}

}  // namespace

bool is_hub_host(std::string_view host, std::span<const std::string> hub_host_names) noexcept {
    try {
        std::string bare = strip_port(host);
        if (bare.empty() || bare.find('/') != std::string::npos) return false;
        for (const auto& h : hub_host_names) {
            std::string name = strip_port(h);
            if (name.size() == bare.size() && resource_authorizes(bare, name)) return true;
        }
        return false;
    } catch (...) {
        return false;
    }
}

bool policy_grants(const shared_access_policy& p, std::uint32_t required_any) noexcept {
    std::uint32_t held = p.rights;
    if (held & registry_write) held |= registry_read;
    return (held & required_any) != 0;
}

result<const shared_access_policy*> authorize_service(std::string_view authorization,
                                                      std::span<const std::string> hub_host_names,
                                                      std::span<const shared_access_policy> policies,
                                                      std::uint32_t required_any, time_point now,
                                                      std::string_view resource_path) {
    auto t = parse_for_auth(authorization);
    if (!t) return t.error();
    if (t->key_name.empty()) {
        return denied("The SAS token has no 'skn': service calls need a token signed with a shared access policy key.");
    }
    const auto* policy = find_policy(policies, t->key_name);
    if (!policy) return denied("Unknown shared access policy " + quoted(t->key_name) + ".");
    if (auto r = verify_signature(*t, policy->primary_key, policy->secondary_key, "policy " + quoted(policy->key_name));
        !r) {
        return r.error();
    }
    if (auto r = check_expiry(*t, now); !r) return r.error();

    auto sr = forms_of(*t);
    bool host_ok = false;
    for (const auto& host : hub_host_names) {
        std::string resource = strip_port(host);
        if (!resource_path.empty()) resource.append("/").append(resource_path);
        host_ok = host_ok || prefix_of(sr, resource);
    }
    if (!host_ok) {
        return denied("The SAS token resource " + quoted(shown(sr)) +
                      " does not authorise this hub's host name or the resource accessed.");
    }
    if (!policy_grants(*policy, required_any)) {
        std::string needed = rights_to_string(required_any);
        return denied("Authorization rule " + quoted(policy->key_name) + " does not allow access for " +
                      quoted(needed.empty() ? std::string_view("this operation") : std::string_view(needed)) +
                      " (it grants " + quoted(rights_to_string(policy->rights)) + ").");
    }
    return policy;
}

result<device_authorization> authorize_device(std::string_view token, std::span<const std::string> hub_host_names,
                                              const identity_key& identity, const identity_keys& keys,
                                              std::span<const shared_access_policy> policies, time_point now) {
    auto t = parse_for_auth(token);
    if (!t) return t.error();
    auto sr = forms_of(*t);
    device_authorization out;
    out.expiry = t->expiry;

    if (t->key_name.empty()) {
        if (keys.primary_key.empty() && keys.secondary_key.empty()) {
            return denied("The " + identity_text(identity) + " has no symmetric keys; it cannot use a SAS token.");
        }
        if (auto r = verify_signature(*t, keys.primary_key, keys.secondary_key, identity_text(identity)); !r) {
            return r.error();
        }
        if (auto r = check_expiry(*t, now); !r) return r.error();
        bool ok = false;
        for (const auto& host : hub_host_names)
            ok = ok || names(sr, identity_resource(strip_port(host), identity.device_id, identity.module_id));
        if (!ok) {
            return denied("The SAS token resource " + quoted(shown(sr)) + " does not name the " +
                          identity_text(identity) + " (expected '{host}/devices/" + identity.device_id +
                          (identity.is_module() ? "/modules/" + identity.module_id : std::string()) + "').");
        }
        return out;
    }

    const auto* policy = find_policy(policies, t->key_name);
    if (!policy) return denied("Unknown shared access policy " + quoted(t->key_name) + ".");
    if (auto r = verify_signature(*t, policy->primary_key, policy->secondary_key, "policy " + quoted(policy->key_name));
        !r) {
        return r.error();
    }
    if (auto r = check_expiry(*t, now); !r) return r.error();
    bool ok = false;
    for (const auto& host : hub_host_names)
        ok = ok || prefix_of(sr, identity_resource(strip_port(host), identity.device_id, identity.module_id));
    if (!ok) {
        return denied("The SAS token resource " + quoted(shown(sr)) + " does not authorise the " +
                      identity_text(identity) + ".");
    }
    if (!policy->has(device_connect)) {
        return denied("Authorization rule " + quoted(policy->key_name) + " does not allow access for 'DeviceConnect'.");
    }
    out.policy_name = policy->key_name;
    return out;
}

}  // namespace twinhub::auth
