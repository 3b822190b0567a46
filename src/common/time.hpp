// UTC timestamps as IoT Hub writes them: ISO-8601 with seven fractional digits and a 'Z'
// ("2023-01-02T21:42:14.7050295Z"); the never-set value is "0001-01-01T00:00:00Z".
// Thread safety: stateless.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace twinhub {

using clock = std::chrono::system_clock;
using time_point = std::chrono::time_point<clock, std::chrono::nanoseconds>;

inline constexpr std::string_view never_time = "0001-01-01T00:00:00Z";

// "YYYY-MM-DDTHH:MM:SS.fffffffZ"; a default-constructed time_point (epoch 0) still formats as 1970.
std::string format_time(time_point t);

// A time_point, or "0001-01-01T00:00:00Z" when t is nullopt.
std::string format_time_or_never(const std::optional<time_point>& t);

// Parses the forms above (0-9 fractional digits, optional 'Z'); nullopt for "0001-01-01..." or bad input.
std::optional<time_point> parse_time(std::string_view s);

inline time_point now() { return std::chrono::time_point_cast<std::chrono::nanoseconds>(clock::now()); }

}  // namespace twinhub
