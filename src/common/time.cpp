#include "common/time.hpp"

#include <cstdio>
#include <ctime>

namespace twinhub {

std::string format_time(time_point t) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    auto ticks = duration_cast<nanoseconds>(t - secs).count() / 100;  // 100 ns units, 7 digits
    std::time_t tt = clock::to_time_t(time_point_cast<clock::duration>(secs));
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%07lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ticks));
    return buf;
}

std::string format_time_or_never(const std::optional<time_point>& t) {
    return t ? format_time(*t) : std::string(never_time);
}

std::optional<time_point> parse_time(std::string_view s) {
    int y, mo, d, h, mi, sec;
    if (s.size() < 19) return std::nullopt;
    std::string head(s.substr(0, 19));
    if (std::sscanf(head.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) return std::nullopt;
    if (y <= 1) return std::nullopt;
    long long frac = 0;
    int digits = 0;
    std::size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
            if (digits < 9) { frac = frac * 10 + (s[i] - '0'); ++digits; }
        }
    }
    while (digits < 9) { frac *= 10; ++digits; }
    if (i < s.size() && s[i] == 'Z') ++i;
    if (i != s.size()) return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    std::time_t tt = timegm(&tm);
    return time_point(std::chrono::seconds(tt)) + std::chrono::nanoseconds(frac);
}

}  // namespace twinhub
