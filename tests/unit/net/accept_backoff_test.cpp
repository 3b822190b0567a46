#include "net/accept_backoff.hpp"

#include <boost/asio/error.hpp>
#include <gtest/gtest.h>

#include <cerrno>

using namespace twinhub::net;
using namespace std::chrono_literals;

namespace {
boost::system::error_code sys(int e) { return {e, boost::system::system_category()}; }
}  // namespace

TEST(classify_accept_error, descriptor_buffer_and_memory_exhaustion_back_off) {
    for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) EXPECT_EQ(classify_accept_error(sys(e)), accept_error_kind::resource_exhausted) << e;
    EXPECT_EQ(classify_accept_error(boost::asio::error::no_descriptors), accept_error_kind::resource_exhausted);
}

TEST(classify_accept_error, a_connection_lost_before_accept_is_skipped) {
    for (int e : {ECONNABORTED, EPROTO, EPERM, ENETDOWN, EHOSTUNREACH, ENETUNREACH, EINTR})
        EXPECT_EQ(classify_accept_error(sys(e)), accept_error_kind::connection_lost) << e;
    EXPECT_EQ(classify_accept_error(boost::asio::error::connection_aborted), accept_error_kind::connection_lost);
}

TEST(classify_accept_error, anything_else_is_other_and_also_retried) {
    EXPECT_EQ(classify_accept_error(sys(EBADF)), accept_error_kind::other);
    EXPECT_EQ(classify_accept_error(sys(EINVAL)), accept_error_kind::other);
    EXPECT_EQ(classify_accept_error(boost::asio::error::make_error_code(boost::asio::error::eof)), accept_error_kind::other);
}

TEST(accept_backoff, waits_double_from_initial_to_max_and_only_the_first_failure_is_reported) {
    accept_backoff b;  // 10 ms .. 1 s
    const auto t0 = accept_backoff::clock::now();
    std::vector<long> delays;
    int reported = 0;
    for (int i = 0; i < 12; ++i) {
        auto s = b.failed("Too many open files", t0 + i * 100ms);
        delays.push_back(static_cast<long>(s.delay.count()));
        reported += s.report;
    }
    EXPECT_EQ(delays, (std::vector<long>{10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000}));
    EXPECT_EQ(reported, 1);
    EXPECT_TRUE(b.failing());
    EXPECT_EQ(b.failures(), 12u);
}

TEST(accept_backoff, a_connection_served_settle_after_the_last_failure_ends_the_episode) {
    accept_backoff b({.initial = 5ms, .max = 50ms, .settle = 100ms});
    const auto t0 = accept_backoff::clock::now();
    EXPECT_FALSE(b.served(t0));  // no episode: nothing to report
    b.failed("Too many open files", t0);
    b.failed("Too many open files", t0 + 5ms);
    b.failed("std::bad_alloc", t0 + 15ms);
    EXPECT_FALSE(b.served(t0 + 50ms)) << "a descriptor freed for a moment does not end the episode";
    EXPECT_TRUE(b.failing());
    auto r = b.served(t0 + 250ms);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->failures, 3u);
    EXPECT_EQ(r->lasted, 250ms);
    EXPECT_EQ(r->first_cause, "Too many open files");
    EXPECT_EQ(r->last_cause, "std::bad_alloc");
    EXPECT_FALSE(b.failing());
    EXPECT_FALSE(b.served(t0 + 300ms));  // once per episode

    // The next episode starts again from the initial wait and is reported again.
    auto s = b.failed("Too many open files", t0 + 1s);
    EXPECT_TRUE(s.report);
    EXPECT_EQ(s.delay, 5ms);
}

TEST(accept_backoff, failures_between_brief_successes_stay_one_unreported_episode_and_keep_doubling) {
    accept_backoff b({.initial = 10ms, .max = 1s, .settle = 1s});
    auto t = accept_backoff::clock::now();
    int reported = 0;
    std::vector<long> delays;
    for (int i = 0; i < 6; ++i) {
        auto s = b.failed("Too many open files", t);
        reported += s.report;
        delays.push_back(static_cast<long>(s.delay.count()));
        t += s.delay;
        EXPECT_FALSE(b.served(t + 1ms));  // one connection got a descriptor that a peer freed
    }
    EXPECT_EQ(reported, 1);
    EXPECT_EQ(delays, (std::vector<long>{10, 20, 40, 80, 160, 320}));
    auto r = b.served(t + 2s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->failures, 6u);
}

TEST(accept_backoff, lost_connections_in_a_row_become_a_failure_at_the_limit) {
    accept_backoff b({.initial = 10ms, .max = 1s, .max_lost_in_a_row = 3});
    EXPECT_FALSE(b.lost_connection());
    EXPECT_FALSE(b.lost_connection());
    EXPECT_TRUE(b.lost_connection());
    EXPECT_FALSE(b.lost_connection());  // counting starts over
    b.served(accept_backoff::clock::now());  // an accept in between resets the count
    EXPECT_FALSE(b.lost_connection());
    EXPECT_FALSE(b.lost_connection());
    EXPECT_TRUE(b.lost_connection());
}
