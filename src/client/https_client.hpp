// A minimal synchronous HTTPS/1.1 client for the service REST API: one kept-alive TLS connection,
// reopened when the hub closed it (a request that fails on a reused connection before any answer
// is retried once on a fresh one), a deadline on every request.
// Thread safety: none; registry_manager serialises calls with a mutex.
#pragma once

#include "common/errc.hpp"

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace twinhub::client {

struct http_response {
    int status = 0;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names

    // The first header named `name` (lower case), or empty.
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
};

class https_client {
public:
    https_client(std::string host, std::uint16_t port, std::shared_ptr<boost::asio::ssl::context> tls);
    ~https_client();
    https_client(const https_client&) = delete;
    https_client& operator=(const https_client&) = delete;

    // Sends one request; any HTTP status is a success here. Fails with connection_failed (DNS, TCP,
    // TLS, closed connection) or gateway_timeout (no complete answer within `timeout`).
    result<http_response> request(std::string_view method, std::string_view target, std::string_view body,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  std::chrono::milliseconds timeout);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::client
