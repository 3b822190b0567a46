// Structured logging: one line per event on stderr, `time level event key=value ...`, with stable
// event names ("mqtt.connect", "store.commit_failed"). Never pass keys, tokens or passwords.
// Thread safety: all functions may be called from any thread; lines are never interleaved.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace twinhub::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

// Events below this level are dropped. Default info; TWINHUB_LOG_LEVEL=debug|info|warn|error|off
// is read by the binaries at start-up.
void set_level(level l) noexcept;
level get_level() noexcept;
bool parse_level(std::string_view s, level& out) noexcept;

using value = std::variant<std::string_view, std::int64_t, double, bool>;
struct field {
    std::string_view key;
    value v;
    field(std::string_view k, std::string_view s) : key(k), v(s) {}
    field(std::string_view k, const std::string& s) : key(k), v(std::string_view(s)) {}
    field(std::string_view k, const char* s) : key(k), v(std::string_view(s)) {}
    template <class I, class = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
    field(std::string_view k, I i) : key(k), v(static_cast<std::int64_t>(i)) {}
    field(std::string_view k, double d) : key(k), v(d) {}
    field(std::string_view k, bool b) : key(k), v(b) {}
};

void write(level l, std::string_view event, std::initializer_list<field> fields = {});

inline void debug(std::string_view e, std::initializer_list<field> f = {}) { write(level::debug, e, f); }
inline void info(std::string_view e, std::initializer_list<field> f = {}) { write(level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<field> f = {}) { write(level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<field> f = {}) { write(level::error, e, f); }

}  // namespace twinhub::log
