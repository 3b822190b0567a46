#include "proto/mqtt/validation.hpp"

#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

namespace twinhub::mqtt {
namespace {

error invalid(std::string_view what, std::string_view violation) {
    std::string m;
    m.reserve(what.size() + violation.size() + 2);
    m.append(what).append(": ").append(violation);
    return {errc::invalid_argument, std::move(m)};
}

error invalid_at(std::string_view what, std::string_view violation, std::size_t offset) {
    return invalid(what, std::string(violation) + " at byte " + std::to_string(offset));
}

}  // namespace

result<void> validate_utf8_string(std::string_view s, std::string_view what) {
    if (s.size() > 65535) return invalid(what, "string longer than 65535 bytes");
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    // ASCII without NUL, eight bytes at a time (topics and ids usually are all of it).
    constexpr std::uint64_t high = 0x8080808080808080ULL, ones = 0x0101010101010101ULL;
    while (n - i >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if ((w & high) != 0 || ((w - ones) & ~w & high) != 0) break;  // non-ASCII or a zero byte
        i += 8;
    }
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            if (c == 0) return invalid_at(what, "contains U+0000", i);
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            // 0x80..0xBF: stray continuation; 0xC0/0xC1: always overlong; 0xF5..: beyond U+10FFFF.
            return invalid_at(what, "is not well-formed UTF-8", i);
        }
        if (n - i < len) return invalid_at(what, "ends inside a UTF-8 sequence", i);
        for (std::size_t k = 1; k < len; ++k) {
            const unsigned char cc = p[i + k];
            if ((cc & 0xC0) != 0x80) return invalid_at(what, "is not well-formed UTF-8", i);
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) {
            return invalid_at(what, "contains an overlong UTF-8 encoding", i);
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) return invalid_at(what, "contains a UTF-16 surrogate", i);
        if (cp > 0x10FFFF) return invalid_at(what, "contains a code point above U+10FFFF", i);
        i += len;
    }
    return {};
}

result<void> validate_topic_name(std::string_view topic, std::string_view what) {
    if (topic.empty()) return invalid(what, "topic name must not be empty");
    for (std::size_t pos = 0; pos < topic.size(); ++pos) {
        if (topic[pos] == '+' || topic[pos] == '#')
            return invalid_at(what, "topic name must not contain wildcards '+' or '#'", pos);
    }
    return validate_utf8_string(topic, what);
}

result<void> validate_topic_filter(std::string_view filter, std::string_view what) {
    if (filter.empty()) return invalid(what, "topic filter must not be empty");
    for (std::size_t i = 0; i < filter.size(); ++i) {
        const char c = filter[i];
        if (c != '+' && c != '#') continue;
        const bool starts_level = i == 0 || filter[i - 1] == '/';
        const bool ends_level = i + 1 == filter.size() || filter[i + 1] == '/';
        if (c == '#') {
            if (!starts_level || i + 1 != filter.size()) {
                return invalid_at(what, "'#' must be the whole last level of a topic filter", i);
            }
        } else if (!starts_level || !ends_level) {
            return invalid_at(what, "'+' must occupy a whole level of a topic filter", i);
        }
    }
    return validate_utf8_string(filter, what);
}

namespace {

constexpr std::size_t max_field = 65535;

// The encoder's preconditions: field lengths and the total size. Returns the body size.
result<std::size_t> check_sizes(const packet& p) {
    std::size_t body = 0;
    std::string_view too_long;
    auto field = [&](const std::string& s, std::string_view name) {
        if (s.size() > max_field && too_long.empty()) too_long = name;
        body += 2 + s.size();
    };
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, connect>) {
                field(v.protocol_name, "protocol name");
                field(v.client_id, "client identifier");
                if (v.will) {
                    field(v.will->topic, "Will topic");
                    field(v.will->payload, "Will message");
                }
                if (v.username) field(*v.username, "user name");
                if (v.password) field(*v.password, "password");
            } else if constexpr (std::is_same_v<T, publish>) {
                field(v.topic, "topic name");
                body += v.payload.size();
            } else if constexpr (std::is_same_v<T, subscribe>) {
                for (const auto& s : v.subscriptions) {
                    field(s.filter, "topic filter");
                    body += 1;  // requested QoS
                }
            } else if constexpr (std::is_same_v<T, unsubscribe>) {
                for (const auto& f : v.filters) field(f, "topic filter");
            } else if constexpr (std::is_same_v<T, suback>) {
                body += v.return_codes.size();
            }
        },
        p);
    const std::string what = std::string("MQTT ") + to_string(type_of(p));
    if (!too_long.empty()) {
        return error{errc::invalid_argument, what + ": " + std::string(too_long) + " longer than 65535 bytes"};
    }
    if (body > max_remaining_length - 16) {
        return error{errc::message_too_large, what + ": packet larger than MQTT allows"};
    }
    return body;
}

}  // namespace

result<void> validate_packet(const packet& p) {
    if (auto sizes = check_sizes(p); !sizes) return sizes.error();
    if (const auto* pub = std::get_if<publish>(&p); pub && pub->qos == qos::at_most_once && pub->packet_id != 0) {
        return error{errc::invalid_argument, "MQTT PUBLISH: packet identifier must be 0 at QoS 0"};
    }
    auto decoded = decode_packet(to_bytes(p), std::numeric_limits<std::size_t>::max());
    if (!decoded) return decoded.error();
    if (!(*decoded == p)) {
        return error{errc::internal, std::string("MQTT ") + to_string(type_of(p)) + ": encoding does not round-trip"};
    }
    return {};
}

}  // namespace twinhub::mqtt
