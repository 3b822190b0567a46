#include "http/request_target.hpp"

#include "common/encoding.hpp"

namespace twinhub::http {

std::optional<std::string_view> request_target::query_value(std::string_view name) const {
    for (const auto& [k, v] : query) {
        if (k == name) return std::string_view(v);
    }
    return std::nullopt;
}

std::string_view target_path(std::string_view target) noexcept {
    auto q = target.find_first_of("?#");
    return q == std::string_view::npos ? target : target.substr(0, q);
}

namespace {

// Query strings are form-encoded: '+' is a space there (never in the path).
std::optional<std::string> decode_query_part(std::string_view s) {
    std::string plus_free(s);
    for (auto& c : plus_free) {
        if (c == '+') c = ' ';
    }
    return percent_decode(plus_free);
}

}  // namespace

result<request_target> parse_request_target(std::string_view target) {
    request_target out;
    std::string_view path = target_path(target);
    std::string_view query;
    if (path.size() < target.size() && target[path.size()] == '?') {
        query = target.substr(path.size() + 1);
        auto hash = query.find('#');
        if (hash != std::string_view::npos) query = query.substr(0, hash);
    }
    if (path.empty() || path.front() != '/') {
        return error{errc::invalid_argument, "The request path must start with '/'."};
    }
    path.remove_prefix(1);
    if (!path.empty() && path.back() == '/') path.remove_suffix(1);
    while (!path.empty()) {
        auto slash = path.find('/');
        std::string_view raw = path.substr(0, slash);
        if (raw.empty()) {
            return error{errc::invalid_argument, "The request path contains an empty segment ('//')."};
        }
        auto decoded = percent_decode(raw);
        if (!decoded) {
            return error{errc::invalid_argument, "The request path contains a malformed percent-escape."};
        }
        out.segments.push_back(std::move(*decoded));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            auto name = decode_query_part(pair.substr(0, eq));
            auto value = decode_query_part(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
            if (!name || !value) {
                return error{errc::invalid_argument, "The query string contains a malformed percent-escape."};
            }
            out.query.emplace_back(std::move(*name), std::move(*value));
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

}  // namespace twinhub::http
