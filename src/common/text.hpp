// ASCII text helpers for protocol names, keywords and header names (never locale-dependent).
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace twinhub {

// Equal ignoring ASCII case ("Content-Type" == "content-type"); other bytes compare exactly.
bool iequals(std::string_view a, std::string_view b) noexcept;

// A copy with ASCII letters lowercased; other bytes kept.
std::string ascii_lower(std::string_view s);

// `s` without the leading and trailing characters that are in `ws` (default: space, tab, CR, LF).
std::string_view trim(std::string_view s, std::string_view ws = " \t\r\n") noexcept;

}  // namespace twinhub
