#include "common/time.hpp"

#include <cstdio>
#include <ctime>

namespace twinhub {

namespace {

// Days since 1970-01-01 -> proleptic Gregorian year/month/day (H. Hinnant's civil_from_days).
void civil_from_days(long long z, long long& y, unsigned& m, unsigned& d) {
    z += 719468;
    const long long era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<long long>(yoe) + era * 400 + (m <= 2);
}

void put_digits(char* out, unsigned long long v, int n) {
    for (int i = n - 1; i >= 0; --i, v /= 10) out[i] = static_cast<char>('0' + v % 10);
}

}  // namespace

// Every twin write stamps $metadata with this: digits are written directly (gmtime_r + snprintf
// cost about 4,000 instructions a call).
std::string format_time(time_point t) {
    using namespace std::chrono;
    const auto secs = floor<seconds>(t);
    const auto ticks = static_cast<unsigned long long>(duration_cast<nanoseconds>(t - secs).count() / 100);  // 7 digits
    const long long s = secs.time_since_epoch().count();
    const long long days = (s >= 0 ? s : s - 86399) / 86400;
    const long long sod = s - days * 86400;
    long long y;
    unsigned mo, d;
    civil_from_days(days, y, mo, d);
    if (y < 0 || y > 9999) {  // outside what the fixed-width form can hold
        char buf[96];
        std::snprintf(buf, sizeof buf, "%lld-%02u-%02uT%02lld:%02lld:%02lld.%07lluZ", y, mo, d, sod / 3600, sod / 60 % 60,
                      sod % 60, ticks);
        return buf;
    }
    std::string out(28, '\0');  // YYYY-MM-DDTHH:MM:SS.fffffffZ
    char* p = out.data();
    put_digits(p, static_cast<unsigned long long>(y), 4);
    p[4] = '-';
    put_digits(p + 5, mo, 2);
    p[7] = '-';
    put_digits(p + 8, d, 2);
    p[10] = 'T';
    put_digits(p + 11, static_cast<unsigned long long>(sod / 3600), 2);
    p[13] = ':';
    put_digits(p + 14, static_cast<unsigned long long>(sod / 60 % 60), 2);
    p[16] = ':';
    put_digits(p + 17, static_cast<unsigned long long>(sod % 60), 2);
    p[19] = '.';
    put_digits(p + 20, ticks, 7);
    p[27] = 'Z';
    return out;
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
