#include "common/time.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <ctime>

using namespace twinhub;

TEST(time_format, seven_fractional_digits_and_z) {
    auto t = time_point(std::chrono::seconds(1672695734)) + std::chrono::nanoseconds(705029500);
    EXPECT_EQ(format_time(t), "2023-01-02T21:42:14.7050295Z");
}

// format_time writes its digits itself; gmtime_r + strftime-style formatting is the reference.
TEST(time_format, matches_gmtime_over_four_centuries_and_leap_days) {
    auto reference = [](time_point t) {
        using namespace std::chrono;
        auto secs = floor<seconds>(t);
        long long ticks = duration_cast<nanoseconds>(t - secs).count() / 100;
        std::time_t tt = static_cast<std::time_t>(secs.time_since_epoch().count());
        std::tm tm{};
        gmtime_r(&tt, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%07lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ticks);
        return std::string(buf);
    };
    std::uint64_t x = 88172645463325252ull;  // xorshift: reproducible spread of instants
    const long long span = 400LL * 146097 / 400 * 86400;  // about 400 years of seconds
    for (int i = 0; i < 200000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const long long s = static_cast<long long>(x % static_cast<std::uint64_t>(span)) - 5364662400LL;  // 1800-2200
        const long long ns = static_cast<long long>((x >> 20) % 1000000000ull);
        const auto t = time_point(std::chrono::seconds(s)) + std::chrono::nanoseconds(ns);
        ASSERT_EQ(format_time(t), reference(t)) << s << "s " << ns << "ns";
    }
    // 2000-02-29, 2000-03-01 23:59:59, 2100-03-01, the epoch, 1 s before it, 2199-12-31 23:59:59
    // (time_point counts nanoseconds in 64 bits: it holds only the years 1678-2262).
    for (long long s : {951782400LL, 951868799LL, 4107542400LL, 0LL, -1LL, 7258118399LL})
        EXPECT_EQ(format_time(time_point(std::chrono::seconds(s))), reference(time_point(std::chrono::seconds(s)))) << s;
}

TEST(time_format, never_set_is_year_one) {
    EXPECT_EQ(format_time_or_never(std::nullopt), "0001-01-01T00:00:00Z");
}

TEST(time_parse, round_trips_and_accepts_short_forms) {
    auto t = time_point(std::chrono::seconds(1672695734)) + std::chrono::nanoseconds(705029500);
    EXPECT_EQ(parse_time("2023-01-02T21:42:14.7050295Z"), t);
    EXPECT_EQ(parse_time("2023-01-02T21:42:14Z"), time_point(std::chrono::seconds(1672695734)));
    EXPECT_EQ(parse_time("2023-01-02T21:42:14"), time_point(std::chrono::seconds(1672695734)));
}

TEST(time_parse, rejects_garbage_and_never_value) {
    EXPECT_FALSE(parse_time("0001-01-01T00:00:00Z"));
    EXPECT_FALSE(parse_time("yesterday"));
    EXPECT_FALSE(parse_time("2023-01-02T21:42:14.5Zjunk"));
}
