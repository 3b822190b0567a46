#include "amqp/address.hpp"

#include "common/encoding.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace twinhub::amqp {
namespace {

// Drops "scheme://host[:port]" in front of a path.
std::string_view strip_uri(std::string_view a) {
    auto p = a.find("://");
    if (p == std::string_view::npos) return a;
    auto slash = a.find('/', p + 3);
    return slash == std::string_view::npos ? std::string_view{} : a.substr(slash);
}

// Splits "/a/b/c" (leading '/' optional) into its words; empty words make it invalid.
std::optional<std::vector<std::string_view>> words(std::string_view path) {
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    std::vector<std::string_view> out;
    if (path.empty()) return out;
    for (;;) {
        auto p = path.find('/');
        auto w = path.substr(0, p);
        if (w.empty()) return std::nullopt;
        out.push_back(w);
        if (p == std::string_view::npos) return out;
        path.remove_prefix(p + 1);
    }
}

std::optional<std::string> id(std::string_view raw) {
    auto d = percent_decode(raw);
    if (!d || d->empty()) return std::nullopt;
    return d;
}

// "devices/{d}[/modules/{m}]" followed by the rest: fills `identity` and returns the rest.
std::optional<std::span<const std::string_view>> identity_prefix(std::span<const std::string_view> w,
                                                                 store::identity_key& identity) {
    if (w.size() < 2 || !iequals(w[0], "devices")) return std::nullopt;
    auto d = id(w[1]);
    if (!d) return std::nullopt;
    identity.device_id = std::move(*d);
    w = w.subspan(2);
    if (w.size() >= 2 && iequals(w[0], "modules")) {
        auto m = id(w[1]);
        if (!m) return std::nullopt;
        identity.module_id = std::move(*m);
        w = w.subspan(2);
    }
    return w;
}

}  // namespace

std::optional<link_address> parse_link_address(std::string_view address) {
    auto path = strip_uri(address);
    if (path == "$cbs" || path == "/$cbs") return link_address{link_kind::cbs, {}};
    if (path == "$management" || path == "/$management") return link_address{link_kind::eventhub_management, {}};
    auto w = words(path);
    if (!w) return std::nullopt;
    // Event Hubs: the entity is one word, or IoT Hub's "messages/events".
    {
        std::size_t n = w->size() >= 2 && iequals((*w)[0], "messages") && iequals((*w)[1], "events") ? 2 : 1;
        if (w->size() == n + 1 && (*w)[n] == "$management") {
            link_address a{link_kind::eventhub_management, {}};
            a.entity = n == 2 ? "messages/events" : std::string((*w)[0]);
            return a;
        }
        if (w->size() == n + 4 && iequals((*w)[n], "ConsumerGroups") && iequals((*w)[n + 2], "Partitions")) {
            auto cg = id((*w)[n + 1]);
            auto p = id((*w)[n + 3]);
            if (!cg || !p) return std::nullopt;
            link_address a{link_kind::eventhub_partition, {}};
            a.entity = n == 2 ? "messages/events" : std::string((*w)[0]);
            a.consumer_group = std::move(*cg);
            a.partition = std::move(*p);
            return a;
        }
    }
    if (w->size() == 2 && iequals((*w)[0], "messages") && iequals((*w)[1], "devicebound"))
        return link_address{link_kind::service_c2d, {}};
    if (w->size() == 3 && iequals((*w)[0], "messages") && iequals((*w)[1], "servicebound")) {
        if (iequals((*w)[2], "feedback")) return link_address{link_kind::service_feedback, {}};
        if (iequals((*w)[2], "filenotifications")) return link_address{link_kind::service_file_notifications, {}};
        return std::nullopt;
    }
    link_address a{link_kind::telemetry, {}};
    auto rest = identity_prefix(*w, a.identity);
    if (!rest) return std::nullopt;
    if (rest->size() == 2 && iequals((*rest)[0], "messages") && iequals((*rest)[1], "events")) a.kind = link_kind::telemetry;
    else if (rest->size() == 2 && iequals((*rest)[0], "messages") && iequals((*rest)[1], "devicebound"))
        a.kind = link_kind::c2d;
    else if (rest->size() == 1 && iequals((*rest)[0], "twin")) a.kind = link_kind::twin;
    else if (rest->size() == 2 && iequals((*rest)[0], "methods") && iequals((*rest)[1], "devicebound"))
        a.kind = link_kind::methods;
    else return std::nullopt;
    return a;
}

std::optional<store::identity_key> parse_c2d_destination(std::string_view to) {
    auto a = parse_link_address(to);
    if (!a || a->kind != link_kind::c2d) return std::nullopt;
    return a->identity;
}

std::optional<audience> parse_audience(std::string_view sr, std::span<const std::string> host_names) {
    for (std::string_view scheme : {"sb://", "amqps://", "https://"})
        if (sr.size() >= scheme.size() && iequals(sr.substr(0, scheme.size()), scheme)) sr.remove_prefix(scheme.size());
    auto decoded = percent_decode(sr);
    if (!decoded) return std::nullopt;
    std::string_view s = *decoded;
    auto slash = s.find('/');
    std::string_view host = s.substr(0, slash);
    if (auto colon = host.find(':'); colon != std::string_view::npos) host = host.substr(0, colon);
    if (std::none_of(host_names.begin(), host_names.end(), [&](const std::string& h) { return iequals(h, host); }))
        return std::nullopt;
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : s.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    audience out;
    if (path.empty()) {
        out.hub = true;
        return out;
    }
    out.path = std::string(path.substr(1));
    auto w = words(path);
    if (!w || w->empty()) return std::nullopt;
    if (!iequals((*w)[0], "devices")) {  // {host}/messages/events..., {host}/{eventhub}/...
        out.hub = true;
        return out;
    }
    auto rest = identity_prefix(*w, out.identity);
    if (!rest || !rest->empty()) return std::nullopt;
    return out;
}

}  // namespace twinhub::amqp
