// Id rules, etags, generation ids and If-Match matching of identities (spec 3.3, 3.6).
#include "registry/identity.hpp"

#include "common/encoding.hpp"

#include <atomic>
#include <chrono>

namespace twinhub::registry {
namespace {

constexpr std::size_t max_id_length = 128;

bool is_id_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '-': case '.': case '+': case '%': case '_': case '#': case '*': case '?': case '!':
    case '(': case ')': case ',': case '=': case '@': case '$': case '\'': case ':': case ';':
        return true;
    default:
        return false;
    }
}

std::string describe_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
    if (u == 0x20) return "' ' (space)";
    static constexpr char hex[] = "0123456789ABCDEF";
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

// Strips surrounding whitespace, a weak prefix W/ and one pair of double quotes.
std::string_view strip_etag(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.size() >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/') v.remove_prefix(2);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
}

}  // namespace

result<void> validate_id(std::string_view id, std::string_view what) {
    if (id.empty()) return error{errc::invalid_argument, std::string(what) + " must not be empty."};
    if (id.size() > max_id_length) {
        return error{errc::invalid_argument, std::string(what) + " is " + std::to_string(id.size()) +
                                                 " characters long; the maximum is 128."};
    }
    bool printable = true;
    for (char c : id) printable = printable && static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
    for (char c : id) {
        if (!is_id_char(c)) {
            std::string shown = printable ? " '" + std::string(id) + "'" : std::string();
            return error{errc::invalid_argument,
                         std::string(what) + shown + " contains " + describe_char(c) +
                             ", which is not allowed; use ASCII letters, digits and - . + % _ # * ? ! ( ) , = @ $ ' : ;"};
        }
    }
    return {};
}

std::string etag_to_string(std::uint64_t etag) { return base64_encode(std::to_string(etag)); }

std::string new_generation_id() {
    // .NET ticks (100 ns since 0001-01-01). Strictly increasing within the process, so two identities
    // created in the same tick still get distinct ids.
    static std::atomic<std::uint64_t> last{0};
    constexpr std::uint64_t epoch_ticks = 621355968000000000ULL;  // 1970-01-01 in .NET ticks
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
    std::uint64_t ticks = epoch_ticks + static_cast<std::uint64_t>(ns / 100);
    std::uint64_t prev = last.load(std::memory_order_relaxed);
    std::uint64_t next;
    do {
        next = ticks > prev ? ticks : prev + 1;
    } while (!last.compare_exchange_weak(prev, next, std::memory_order_relaxed));
    return std::to_string(next);
}

bool if_match_is_wildcard(std::string_view if_match) { return strip_etag(if_match) == "*"; }

bool if_match_matches(std::string_view if_match, std::string_view current) {
    auto v = strip_etag(if_match);
    if (v == "*") return true;
    return !v.empty() && v == strip_etag(current);
}

}  // namespace twinhub::registry
