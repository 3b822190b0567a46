// tcp_listener over real loopback sockets: a handler that throws, descriptor exhaustion (a lowered
// RLIMIT_NOFILE in this process), close(), a taken port.
#include "net/tcp_listener.hpp"

#include "common/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace twinhub;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A raw client socket connected to 127.0.0.1:port (the kernel completes the handshake from the
// listen backlog, whether or not the listener has accepted yet); -1 when the connect failed.
int connect_to(int fd, unsigned short port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? fd : -1;
}

int connect_new(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (connect_to(fd, port) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// True when the peer closed `fd` within `wait` (read returns 0 or an error).
bool closed_by_peer(int fd, std::chrono::milliseconds wait) {
    timeval tv{static_cast<time_t>(wait.count() / 1000), static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    const auto r = ::recv(fd, &c, 1, 0);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

std::size_t open_descriptors() {
    std::size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        (void)e;
        ++n;
    }
    return n - 1;  // the iterator's own
}

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!p()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
    return n;
}

// A listener on 127.0.0.1:0 whose handler keeps every accepted socket (or runs `on_socket`), with
// the io_context running on one thread.
struct listener_fixture {
    asio::io_context ioc;
    std::mutex mu;
    std::vector<tcp::socket> kept;
    std::atomic<int> handled{0};
    std::function<void(tcp::socket&)> on_socket;
    std::unique_ptr<net::tcp_listener> listener;
    std::thread thread;

    listener_fixture() {
        net::listener_options o;
        o.name = "test";
        o.protocol = "TEST";
        o.port_option = "--test-port";
        o.bind_address = "127.0.0.1";
        o.port = 0;
        o.backoff.settle = 200ms;
        listener = std::make_unique<net::tcp_listener>(
            ioc, o, [this] { return asio::any_io_executor(asio::make_strand(ioc)); },
            [this](tcp::socket&& s) {
                ++handled;
                if (on_socket) on_socket(s);
                std::lock_guard l(mu);
                kept.push_back(std::move(s));
            });
    }
    void run() {
        auto r = listener->start();
        ASSERT_TRUE(r) << r.error().message;
        thread = std::thread([this] { ioc.run(); });
    }
    std::size_t kept_count() {
        std::lock_guard l(mu);
        return kept.size();
    }
    void drop_kept() {
        std::lock_guard l(mu);
        kept.clear();
    }
    ~listener_fixture() {
        listener->close();
        listener.reset();
        ioc.stop();
        if (thread.joinable()) thread.join();
    }
};

}  // namespace

TEST(tcp_listener, a_handler_that_throws_loses_only_its_connection) {
    listener_fixture f;
    f.on_socket = [&](tcp::socket&) {
        if (f.handled == 1) throw std::runtime_error("cannot set this one up");
    };
    f.run();
    testing::internal::CaptureStderr();
    int first = connect_new(f.listener->port());
    ASSERT_GE(first, 0);
    EXPECT_TRUE(closed_by_peer(first, 2s)) << "the connection whose setup threw is closed";
    int second = connect_new(f.listener->port());
    ASSERT_GE(second, 0);
    EXPECT_TRUE(eventually([&] { return f.kept_count() == 1; })) << "the next connection is served";
    EXPECT_FALSE(closed_by_peer(second, 100ms));
    std::this_thread::sleep_for(250ms);  // the settle time: the next connection ends the episode
    int third = connect_new(f.listener->port());
    ASSERT_GE(third, 0);
    EXPECT_TRUE(eventually([&] { return f.kept_count() == 2; }));
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(count(log, "warn net.connection_setup_failed listener=test"), 1u) << log;
    EXPECT_NE(log.find("cannot set this one up"), std::string::npos) << log;
    EXPECT_EQ(count(log, "info net.accept_recovered listener=test"), 1u) << log;
    ::close(first);
    ::close(second);
    ::close(third);
}

// Regression (issue 12 item 7): with the descriptors used up, accept() fails with EMFILE at once and
// for as long as that lasts; the listener waits between attempts, logs one line, and serves every
// queued connection once descriptors are free again.
TEST(tcp_listener, descriptor_exhaustion_backs_off_logs_once_and_recovers) {
    twinhub::log::set_level(twinhub::log::level::info);
    listener_fixture f;
    f.run();
    constexpr int flood = 40, room = 5;
    std::vector<int> clients;
    for (int i = 0; i < flood; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM, 0));  // before the limit
    testing::internal::CaptureStderr();
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
    rlimit low = old;
    low.rlim_cur = open_descriptors() + room;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int fd : clients) ASSERT_GE(connect_to(fd, f.listener->port()), 0);  // connect needs no new descriptor
    EXPECT_TRUE(eventually([&] { return f.handled >= room; }));
    std::this_thread::sleep_for(200ms);
    const int stuck = f.handled;
    std::this_thread::sleep_for(1500ms);  // ~8 failed attempts at 10, 20, 40 ... 1000 ms
    EXPECT_EQ(f.handled, stuck) << "no accept can succeed without a free descriptor";
    EXPECT_LT(stuck, flood);

    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
    f.drop_kept();
    EXPECT_TRUE(eventually([&] { return f.handled == flood; })) << f.handled << " of " << flood << " served";
    std::this_thread::sleep_for(250ms);  // the settle time
    int late = connect_new(f.listener->port());
    ASSERT_GE(late, 0);
    EXPECT_TRUE(eventually([&] { return f.handled == flood + 1; })) << "a new connection after the episode is served";
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(count(log, "net.accept_failed"), 1u) << log;
    EXPECT_NE(log.find("warn net.accept_failed listener=test port=" + std::to_string(f.listener->port()) +
                       " error=\"Too many open files\""),
              std::string::npos)
        << log;
    EXPECT_EQ(count(log, "info net.accept_recovered listener=test"), 1u) << log;
    EXPECT_EQ(count(log, "\n"), 2u) << "two lines for the whole episode:\n" << log;
    for (int fd : clients) ::close(fd);
    ::close(late);
}

TEST(tcp_listener, close_stops_accepting_and_the_port_refuses) {
    listener_fixture f;
    f.run();
    const auto port = f.listener->port();
    int c = connect_new(port);
    ASSERT_GE(c, 0);
    EXPECT_TRUE(eventually([&] { return f.handled == 1; }));
    f.listener->close();
    f.listener->close();  // idempotent
    EXPECT_TRUE(eventually([&] {
        int d = connect_new(port);
        if (d >= 0) ::close(d);
        return d < 0 && errno == ECONNREFUSED;
    }));
    ::close(c);
}

TEST(tcp_listener, a_taken_port_fails_naming_the_port_and_the_option) {
    listener_fixture f;
    f.run();
    asio::io_context io;
    net::listener_options o;
    o.name = "test";
    o.protocol = "TEST";
    o.port_option = "--test-port";
    o.bind_address = "127.0.0.1";
    o.port = f.listener->port();
    net::tcp_listener second(io, o, [&] { return asio::any_io_executor(io.get_executor()); }, [](tcp::socket&&) {});
    auto r = second.start();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_NE(r.error().message.find(std::to_string(o.port)), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("--test-port"), std::string::npos) << r.error().message;
    o.bind_address = "not-an-ip";
    net::tcp_listener third(io, o, [&] { return asio::any_io_executor(io.get_executor()); }, [](tcp::socket&&) {});
    auto bad = third.start();
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    EXPECT_NE(bad.error().message.find("not-an-ip"), std::string::npos);
}
