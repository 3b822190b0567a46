#include "common/time.hpp"

#include <gtest/gtest.h>

using namespace twinhub;

TEST(time_format, seven_fractional_digits_and_z) {
    auto t = time_point(std::chrono::seconds(1672695734)) + std::chrono::nanoseconds(705029500);
    EXPECT_EQ(format_time(t), "2023-01-02T21:42:14.7050295Z");
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
