// Test fixture: a real hub_service over the memory store, an https_server on 127.0.0.1:0 over real
// TLS (throwaway certificate), and a synchronous keep-alive Beast client.
#pragma once

#include "auth/sas_token.hpp"
#include "http/https_server.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"
#include "test_tls.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <thread>

namespace twinhub::http::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

struct reply {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
    json::value json;                             // parsed body, null when empty or not JSON

    std::string header(const std::string& n) const {
        auto it = headers.find(n);
        return it == headers.end() ? std::string() : it->second;
    }
    // The IoT Hub error code name from the Message field ("DeviceNotFound"), or "".
    std::string error_code() const {
        if (!json.is_object() || !json.as_object().contains("Message")) return {};
        std::string m(json.at("Message").as_string());
        auto colon = m.find(':');
        auto semi = m.find(';');
        if (m.rfind("ErrorCode:", 0) != 0 || semi == std::string::npos) return {};
        return m.substr(colon + 1, semi - colon - 1);
    }
};

// One TLS connection; reconnects when the server closed it.
class client {
public:
    client(unsigned short port, asio::ssl::context& tls) : port_(port), tls_(tls) {}

    void connect() {
        stream_.emplace(ioc_, tls_);
        SSL_set_tlsext_host_name(stream_->native_handle(), "localhost");
        stream_->set_verify_callback(asio::ssl::host_name_verification("localhost"));
        beast::get_lowest_layer(*stream_).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
        stream_->handshake(asio::ssl::stream_base::client);
        ++connections_;
    }

    reply request(bhttp::request<bhttp::string_body> req) {
        if (!stream_) connect();
        req.set(bhttp::field::host, "localhost");
        req.prepare_payload();
        beast::error_code ec;
        bhttp::write(*stream_, req, ec);
        if (ec) {  // the server closed an idle keep-alive connection: retry once on a new one
            connect();
            bhttp::write(*stream_, req);
        }
        bhttp::response_parser<bhttp::string_body> p;
        p.body_limit(16 * 1024 * 1024);
        bhttp::read(*stream_, buffer_, p);
        auto res = p.release();
        reply r;
        r.status = static_cast<int>(res.result_int());
        r.body = res.body();
        for (auto& f : res) {
            std::string n(f.name_string());
            for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            r.headers[n] = std::string(f.value());
        }
        if (!r.body.empty()) {
            beast::error_code jec;
            r.json = json::parse(r.body, jec);
        }
        if (!res.keep_alive()) {
            stream_.reset();
            buffer_.clear();
        }
        return r;
    }

    int connections() const { return connections_; }
    beast::ssl_stream<beast::tcp_stream>* raw() { return stream_ ? &*stream_ : nullptr; }

private:
    asio::io_context ioc_;
    unsigned short port_;
    asio::ssl::context& tls_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
    beast::flat_buffer buffer_;
    int connections_ = 0;
};

// One certificate for the whole test run (key generation is not free).
inline const throwaway_certificate& shared_certificate() {
    static const throwaway_certificate c = make_throwaway_certificate();
    return c;
}

class hub_fixture : public ::testing::Test {
protected:
    static const throwaway_certificate& cert() { return shared_certificate(); }

    void SetUp() override { start_server({}); }

    void start_server(net::websocket_handler ws, std::size_t body_limit = 64 * 1024) {
        store_ = store::make_memory_store();
        auto hub = service::hub_service::open(*store_, service::hub_options{});
        ASSERT_TRUE(hub) << hub.error().message;
        hub_ = std::move(*hub);
        https_options o;
        o.host_names = {"localhost"};
        o.bind_address = "127.0.0.1";
        o.port = 0;
        o.body_limit = body_limit;
        o.read_timeout = std::chrono::seconds(5);
        server_ = std::make_unique<https_server>(ioc_, server_tls_, *hub_, o, std::move(ws));
        auto started = server_->start();
        ASSERT_TRUE(started) << started.error().message;
        ASSERT_NE(server_->port(), 0);
        thread_ = std::thread([this] { ioc_.run(); });
        client_ = std::make_unique<client>(server_->port(), client_tls_);
    }

    void TearDown() override {
        client_.reset();
        if (server_) server_->stop();
        guard_.reset();
        if (thread_.joinable()) thread_.join();
        server_.reset();
        hub_.reset();
        if (store_) store_->close();
    }

    std::string token(const std::string& policy, std::int64_t lifetime = 3600, const std::string& host = "localhost") {
        for (const auto& p : hub_->policies()) {
            if (p.key_name == policy) {
                return auth::generate_sas_token(host, p.primary_key, auth::to_unix_seconds(now()) + lifetime, policy)
                    .value();
            }
        }
        ADD_FAILURE() << "no policy " << policy;
        return {};
    }

    // Sends `target` with api-version=2021-04-12 added when it has no api-version, as every SDK
    // does (spec 3.1); call_as_is sends it unchanged.
    reply call(bhttp::verb method, const std::string& target, const std::string& body = "",
               std::map<std::string, std::string> headers = {}, std::optional<std::string> auth = std::string("owner")) {
        return call_as_is(method, with_api_version(target), body, std::move(headers), std::move(auth));
    }
    static std::string with_api_version(const std::string& target) {
        if (target.find("api-version=") != std::string::npos) return target;
        return target + (target.find('?') == std::string::npos ? "?" : "&") + "api-version=2021-04-12";
    }
    reply call_as_is(bhttp::verb method, const std::string& target, const std::string& body = "",
                     std::map<std::string, std::string> headers = {},
                     std::optional<std::string> auth = std::string("owner")) {
        bhttp::request<bhttp::string_body> req{method, target, 11};
        if (auth) req.set(bhttp::field::authorization, *auth == "owner" ? token("iothubowner") : *auth);
        if (!body.empty()) req.set(bhttp::field::content_type, "application/json; charset=utf-8");
        for (auto& [k, v] : headers) req.set(k, v);
        req.body() = body;
        return client_->request(std::move(req));
    }

    // Everything a client can observe about the registry and twins, to check that a rejected
    // request changed nothing.
    std::string snapshot() {
        json::array out;
        for (const auto& d : hub_->list_devices(1000)) {
            out.push_back(registry::to_json(d));
            out.push_back(hub_->get_twin({d.device_id, ""}).value());
            for (const auto& m : hub_->list_modules(d.device_id).value()) {
                out.push_back(registry::to_json(m));
                out.push_back(hub_->get_twin({m.device_id, m.module_id}).value());
            }
        }
        return json::serialize(out);
    }

    std::unique_ptr<store::store> store_;
    std::unique_ptr<service::hub_service> hub_;
    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{asio::make_work_guard(ioc_)};
    asio::ssl::context server_tls_ = make_server_context(cert());
    asio::ssl::context client_tls_ = make_client_context(cert());
    std::unique_ptr<https_server> server_;
    std::thread thread_;
    std::unique_ptr<client> client_;
};

}  // namespace twinhub::http::test
