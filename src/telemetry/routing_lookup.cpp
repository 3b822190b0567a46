// Property lookups and the decoding of JSON bodies for $body references.
#include "telemetry/routing_lookup.hpp"
#include "telemetry/routing_condition.hpp"

#include <boost/json/parse.hpp>

#include <cctype>
#include <cstdint>

namespace twinhub::telemetry {
namespace detail {

const boost::json::value* find_member(const boost::json::value& v, std::string_view key) {
    const auto* o = v.if_object();
    if (!o) return nullptr;
    if (const auto* exact = o->if_contains(key)) return exact;
    for (const auto& kv : *o)
        if (iequals(kv.key(), key)) return &kv.value();
    return nullptr;
}

const std::string* find_app_property(const routing_message& m, std::string_view name) {
    for (const auto& [k, v] : m.app_properties)
        if (k == name) return &v;
    for (const auto& [k, v] : m.app_properties)
        if (iequals(k, name)) return &v;
    return nullptr;
}

namespace {

const std::string* find_system_exact(const routing_message& m, std::string_view name) {
    auto it = m.system.find(std::string(name));
    if (it != m.system.end()) return &it->second;
    for (const auto& [k, v] : m.system)
        if (iequals(k, name)) return &v;
    return nullptr;
}

}  // namespace

const std::string* find_system_property(const routing_message& m, std::string_view name) {
    if (iequals(name, "$contentType")) return m.content_type.empty() ? nullptr : &m.content_type;
    if (iequals(name, "$contentEncoding")) return m.content_encoding.empty() ? nullptr : &m.content_encoding;
    if (const auto* v = find_system_exact(m, name)) return v;
    static constexpr std::string_view aliases[][2] = {
        {"$iothub-enqueuedtime", "$enqueuedTime"},
        {"$iothub-connection-device-id", "$connectionDeviceId"},
        {"$iothub-connection-module-id", "$connectionModuleId"},
    };
    for (const auto& pair : aliases) {
        if (iequals(name, pair[0])) return find_system_exact(m, pair[1]);
        if (iequals(name, pair[1])) return find_system_exact(m, pair[0]);
    }
    return nullptr;
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace detail

namespace {

// UTF-16 (unit 2) or UTF-32 (unit 4) to UTF-8; a BOM selects the byte order, little-endian without
// one. nullopt on a truncated unit, an unpaired surrogate or a code point past U+10FFFF.
std::optional<std::string> to_utf8(std::string_view in, std::size_t unit) {
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    std::size_t n = in.size();
    if (n % unit != 0) return std::nullopt;
    bool big = false;
    auto read = [&](std::size_t at) -> std::uint32_t {
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < unit; ++k) {
            const std::uint32_t byte = p[at + (big ? k : unit - 1 - k)];
            v = (v << 8) | byte;
        }
        return v;
    };
    std::size_t i = 0;
    if (n >= unit) {
        if (unit == 2 && p[0] == 0xFE && p[1] == 0xFF)
            big = true, i = 2;
        else if (unit == 2 && p[0] == 0xFF && p[1] == 0xFE)
            i = 2;
        else if (unit == 4 && p[0] == 0 && p[1] == 0 && p[2] == 0xFE && p[3] == 0xFF)
            big = true, i = 4;
        else if (unit == 4 && p[0] == 0xFF && p[1] == 0xFE && p[2] == 0 && p[3] == 0)
            i = 4;
    }
    std::string out;
    out.reserve(n / unit);
    for (; i < n; i += unit) {
        std::uint32_t cp = read(i);
        if (unit == 2 && cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 2 >= n) return std::nullopt;
            std::uint32_t lo = read(i + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return std::nullopt;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 2;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            return std::nullopt;
        }
        if (cp > 0x10FFFF) return std::nullopt;
        detail::append_utf8(out, cp);
    }
    return out;
}

}  // namespace

std::optional<boost::json::value> parse_json_body(std::string_view body, std::string_view content_type,
                                                  std::string_view content_encoding) {
    std::string_view media = twinhub::trim(content_type.substr(0, content_type.find(';')), " \t");
    if (!detail::iequals(media, "application/json")) return std::nullopt;
    std::string_view enc = twinhub::trim(content_encoding, " \t");
    std::optional<std::string> decoded;
    if (detail::iequals(enc, "utf-8")) {
        if (body.size() >= 3 && body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
    } else if (detail::iequals(enc, "utf-16")) {
        decoded = to_utf8(body, 2);
        if (!decoded) return std::nullopt;
        body = *decoded;
    } else if (detail::iequals(enc, "utf-32")) {
        decoded = to_utf8(body, 4);
        if (!decoded) return std::nullopt;
        body = *decoded;
    } else {
        return std::nullopt;
    }
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 64;
    boost::json::value v = boost::json::parse(body, ec, {}, opts);
    if (ec) return std::nullopt;
    return v;
}

}  // namespace twinhub::telemetry
