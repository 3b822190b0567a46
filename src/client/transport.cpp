#include "client/transport.hpp"

#include "client/tls_context.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace twinhub::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using asio::awaitable;

void transport::send(std::string bytes) {
    if (closed_) return;
    queue_.push_back(std::move(bytes));
    if (writing_) return;
    writing_ = true;
    auto self = self_.lock();
    if (!self) return;
    asio::co_spawn(co_spawn_executor_, drain(self), asio::detached);
}

awaitable<void> transport::drain(std::shared_ptr<transport> self) {
    while (!queue_.empty() && !closed_) {
        std::string b = std::move(queue_.front());
        queue_.pop_front();
        auto ec = co_await write(b);
        if (ec) {
            close();
            break;
        }
    }
    queue_.clear();
    writing_ = false;
}

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// TCP connect + TLS handshake on `s`, shared by both transports.
awaitable<result<void>> open_tls(tls_stream& s, const std::string& host, std::uint16_t port,
                                 std::chrono::milliseconds timeout) {
    error_code ec;
    tcp::resolver resolver(co_await asio::this_coro::executor);
    auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return error{errc::connection_failed, "cannot resolve '" + host + "': " + ec.message()};
    if (!prepare_tls_handle(s.native_handle(), host))
        co_return error{errc::connection_failed, "cannot set up TLS for '" + host + "'"};
    auto& low = beast::get_lowest_layer(s);
    low.expires_after(timeout);
    co_await low.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return error{errc::connection_failed,
                        "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message()};
    co_await s.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return error{errc::connection_failed, "TLS handshake with " + host + ":" + std::to_string(port) +
                                                     " failed: " + describe_tls_error(ec, s.native_handle())};
    low.expires_never();
    co_return result<void>{};
}

class tls_transport final : public transport {
public:
    tls_transport(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls)
        : tls_(std::move(tls)), s_(ex, *tls_) {}

    awaitable<result<void>> open(std::string host, std::uint16_t port, std::chrono::milliseconds timeout) override {
        co_return co_await open_tls(s_, host, port, timeout);
    }
    awaitable<std::pair<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
        error_code ec;
        std::size_t n = co_await s_.async_read_some(b, asio::redirect_error(asio::use_awaitable, ec));
        co_return std::pair{ec, n};
    }
    void close() override {
        if (closed_) return;
        closed_ = true;
        error_code ec;
        beast::get_lowest_layer(s_).socket().shutdown(tcp::socket::shutdown_both, ec);
        beast::get_lowest_layer(s_).socket().close(ec);
    }

protected:
    awaitable<error_code> write(const std::string& bytes) override {
        error_code ec;
        co_await asio::async_write(s_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
        co_return ec;
    }

private:
    std::shared_ptr<asio::ssl::context> tls_;
    tls_stream s_;
};

class websocket_transport final : public transport {
public:
    websocket_transport(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls)
        : tls_(std::move(tls)), ws_(ex, *tls_) {}

    awaitable<result<void>> open(std::string host, std::uint16_t port, std::chrono::milliseconds timeout) override {
        auto r = co_await open_tls(ws_.next_layer(), host, port, timeout);
        if (!r) co_return r;
        beast::websocket::stream_base::timeout t = beast::websocket::stream_base::timeout::suggested(beast::role_type::client);
        t.handshake_timeout = timeout;
        ws_.set_option(t);
        ws_.set_option(beast::websocket::stream_base::decorator([](beast::websocket::request_type& req) {
            req.set(beast::http::field::sec_websocket_protocol, "mqtt");
            req.set(beast::http::field::user_agent, "twinhub-cpp/0.1.0");
        }));
        beast::websocket::response_type res;
        error_code ec;
        std::string host_header = port == 443 ? host : host + ":" + std::to_string(port);
        co_await ws_.async_handshake(res, host_header, "/$iothub/websocket", asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return error{errc::connection_failed, "WebSocket upgrade at " + host_header +
                                                         "/$iothub/websocket failed: " + ec.message()};
        ws_.binary(true);
        co_return result<void>{};
    }
    awaitable<std::pair<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
        error_code ec;
        std::size_t n = co_await ws_.async_read_some(b, asio::redirect_error(asio::use_awaitable, ec));
        co_return std::pair{ec, n};
    }
    void close() override {
        if (closed_) return;
        closed_ = true;
        error_code ec;
        beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
        beast::get_lowest_layer(ws_).socket().close(ec);
    }

protected:
    awaitable<error_code> write(const std::string& bytes) override {
        error_code ec;
        co_await ws_.async_write(asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
        co_return ec;
    }

private:
    std::shared_ptr<asio::ssl::context> tls_;
    beast::websocket::stream<tls_stream> ws_;
};

}  // namespace

std::shared_ptr<transport> make_tls_transport(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls) {
    auto t = std::make_shared<tls_transport>(ex, std::move(tls));
    t->self_ = t;
    t->co_spawn_executor_ = ex;
    return t;
}

std::shared_ptr<transport> make_websocket_transport(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls) {
    auto t = std::make_shared<websocket_transport>(ex, std::move(tls));
    t->self_ = t;
    t->co_spawn_executor_ = ex;
    return t;
}

}  // namespace twinhub::client
