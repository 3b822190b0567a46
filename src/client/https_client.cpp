#include "client/https_client.hpp"

#include "common/text.hpp"

#include "client/tls_context.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <optional>

namespace twinhub::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string http_response::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return v;
    return {};
}

bool http_response::has_header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return true;
    return false;
}

struct https_client::impl {
    std::string host;
    std::uint16_t port;
    std::shared_ptr<asio::ssl::context> tls;
    asio::io_context ioc;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;

    // Runs the io_context until the handler-started operation completes.
    void run() {
        ioc.restart();
        ioc.run();
    }

    result<void> open(std::chrono::milliseconds timeout) {
        stream.reset();
        buffer.clear();
        boost::system::error_code ec;
        tcp::resolver resolver(ioc);
        tcp::resolver::results_type endpoints;
        resolver.async_resolve(host, std::to_string(port), [&](boost::system::error_code e, tcp::resolver::results_type r) {
            ec = e;
            endpoints = std::move(r);
        });
        run();
        if (ec) return error{errc::connection_failed, "cannot resolve '" + host + "': " + ec.message()};
        stream.emplace(ioc, *tls);
        if (!prepare_tls_handle(stream->native_handle(), host))
            return error{errc::connection_failed, "cannot set up TLS for '" + host + "'"};
        beast::get_lowest_layer(*stream).expires_after(timeout);
        beast::get_lowest_layer(*stream).async_connect(endpoints, [&](boost::system::error_code e, const tcp::endpoint&) { ec = e; });
        run();
        if (ec) {
            stream.reset();
            return error{errc::connection_failed,
                         "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message()};
        }
        stream->async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code e) { ec = e; });
        run();
        if (ec) {
            std::string why = describe_tls_error(ec, stream->native_handle());
            stream.reset();
            return error{errc::connection_failed, "TLS handshake with " + host + ":" + std::to_string(port) +
                                                      " failed: " + why};
        }
        return {};
    }

    // One exchange on the open stream. `fresh`: the connection was just opened.
    result<http_response> exchange(const http::request<http::string_body>& req, std::chrono::milliseconds timeout,
                                   bool& retryable) {
        retryable = false;
        boost::system::error_code ec;
        beast::get_lowest_layer(*stream).expires_after(timeout);
        http::async_write(*stream, req, [&](boost::system::error_code e, std::size_t) { ec = e; });
        run();
        if (ec) {
            retryable = ec != beast::error::timeout;
            stream.reset();
            if (ec == beast::error::timeout)
                return error{errc::gateway_timeout, "the hub did not accept the request in time"};
            return error{errc::connection_failed, "sending the request failed: " + ec.message()};
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        http::async_read(*stream, buffer, parser, [&](boost::system::error_code e, std::size_t) { ec = e; });
        run();
        if (ec) {
            // The hub closed a kept-alive connection before reading the request (it restarted or
            // timed the connection out): nothing was processed, so a fresh connection may retry.
            retryable = (ec == http::error::end_of_stream || ec == asio::error::eof ||
                         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                         ec == asio::error::connection_aborted || ec == asio::ssl::error::stream_truncated) &&
                        !parser.got_some();
            stream.reset();
            if (ec == beast::error::timeout)
                return error{errc::gateway_timeout, "the hub did not answer within " +
                                                        std::to_string(timeout.count()) + " ms"};
            return error{errc::connection_failed, "reading the answer failed: " + ec.message()};
        }
        auto res = parser.release();
        http_response out;
        out.status = static_cast<int>(res.result_int());
        out.body = std::move(res.body());
        for (const auto& f : res) {
            out.headers.emplace_back(ascii_lower(f.name_string()), std::string(f.value()));
        }
        if (!res.keep_alive()) stream.reset();
        return out;
    }
};

https_client::https_client(std::string host, std::uint16_t port, std::shared_ptr<asio::ssl::context> tls)
    : impl_(std::make_unique<impl>()) {
    impl_->host = std::move(host);
    impl_->port = port;
    impl_->tls = std::move(tls);
}

https_client::~https_client() = default;

result<http_response> https_client::request(std::string_view method, std::string_view target, std::string_view body,
                                            const std::vector<std::pair<std::string, std::string>>& headers,
                                            std::chrono::milliseconds timeout) {
    auto& m = *impl_;
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, m.port == 443 ? m.host : m.host + ":" + std::to_string(m.port));
    req.set(http::field::user_agent, "twinhub-cpp/0.1.0");
    req.set(http::field::connection, "keep-alive");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
        req.set(http::field::content_type, "application/json; charset=utf-8");
        req.body() = std::string(body);
    }
    req.prepare_payload();

    for (int attempt = 0; attempt < 2; ++attempt) {
        bool fresh = !m.stream.has_value();
        if (fresh)
            if (auto r = m.open(timeout); !r) return r.error();
        bool retryable = false;
        auto r = m.exchange(req, timeout, retryable);
        if (r || fresh || !retryable) return r;
    }
    return error{errc::connection_failed, "the hub closed the connection"};
}

}  // namespace twinhub::client
