#include "common/log.hpp"

#include "common/time.hpp"

#include <atomic>
#include <cstdio>

namespace twinhub::log {
namespace {
std::atomic<level> g_level{level::info};

const char* name(level l) {
    switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    case level::off: return "off";
    }
    return "?";
}

void append_quoted(std::string& out, std::string_view s) {
    bool plain = !s.empty();
    for (char c : s)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) plain = false;
    if (plain) {
        out += s;
        return;
    }
    out += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
}
}  // namespace

void set_level(level l) noexcept { g_level.store(l, std::memory_order_relaxed); }
level get_level() noexcept { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view s, level& out) noexcept {
    for (level l : {level::debug, level::info, level::warn, level::error, level::off})
        if (s == name(l)) {
            out = l;
            return true;
        }
    return false;
}

void write(level l, std::string_view event, std::initializer_list<field> fields) {
    if (l < get_level()) return;
    std::string line = format_time(now());
    line += ' ';
    line += name(l);
    line += ' ';
    line += event;
    for (const auto& f : fields) {
        line += ' ';
        line += f.key;
        line += '=';
        std::visit(
            [&](auto&& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::string_view>) append_quoted(line, v);
                else if constexpr (std::is_same_v<T, bool>) line += v ? "true" : "false";
                else line += std::to_string(v);
            },
            f.v);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);  // one call per line: POSIX keeps it whole
}

}  // namespace twinhub::log
