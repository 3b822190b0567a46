#include "server/storage_https.hpp"

#include "common/log.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <condition_variable>
#include <ctime>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace twinhub::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto request_timeout = std::chrono::seconds(15);

struct parsed_url {
    std::string host, port, target;
};

std::optional<parsed_url> parse_url(std::string_view url) {
    if (url.substr(0, 8) != "https://") return std::nullopt;
    url.remove_prefix(8);
    auto slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    parsed_url out;
    out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
        out.host = std::string(authority.substr(0, colon));
        out.port = std::string(authority.substr(colon + 1));
    } else {
        out.host = std::string(authority);
        out.port = "443";
    }
    if (out.host.empty()) return std::nullopt;
    return out;
}

struct response {
    int status = 0;
    std::string content_length, last_modified, error_code;
    std::string body;
};

constexpr std::uint64_t max_blob_bytes = 256ull * 1024 * 1024;

// A storage answer other than success, in the errors storage_client names.
error storage_failure(const response& r, std::string_view what) {
    std::string text = "storage answered " + std::to_string(r.status) + (r.error_code.empty() ? "" : " " + r.error_code) +
                       " " + std::string(what);
    if (r.status == 404) return error{errc::not_found, std::move(text)};
    if (r.status == 403) return error{errc::unauthorized, std::move(text)};
    return error{errc::connection_failed, std::move(text)};
}

// "Mon, 07 Dec 2026 20:05:02 GMT" -> "2026-12-07T20:05:02+00:00" (as IoT Hub writes lastUpdatedTime).
std::string iso_from_http_date(const std::string& d) {
    std::tm tm{};
    if (!strptime(d.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return {};
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    return buf;
}

}  // namespace

struct storage_https::impl {
    asio::ssl::context tls{asio::ssl::context::tls_client};
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void(bool)>> jobs;  // argument: false when shutting down
    bool stopping = false;
    std::thread worker;

    result<response> request(bhttp::verb method, const std::string& url, const std::string* body = nullptr) {
        auto u = parse_url(url);
        if (!u) return error{errc::invalid_argument, "not an https URL"};
        asio::io_context ioc;
        boost::system::error_code ec;
        tcp::resolver resolver(ioc);
        auto endpoints = resolver.resolve(u->host, u->port, ec);
        if (ec) return error{errc::connection_failed, "cannot resolve '" + u->host + "': " + ec.message()};
        beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
        SSL* ssl = stream.native_handle();
        boost::system::error_code addr_ec;
        asio::ip::make_address(u->host, addr_ec);
        if (addr_ec) {
            SSL_set_tlsext_host_name(ssl, u->host.c_str());
            SSL_set1_host(ssl, u->host.c_str());
        } else {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host.c_str());
        }
        auto run = [&] {
            ioc.restart();
            ioc.run();
        };
        beast::get_lowest_layer(stream).expires_after(request_timeout);
        beast::get_lowest_layer(stream).async_connect(endpoints, [&](boost::system::error_code e, const tcp::endpoint&) { ec = e; });
        run();
        if (ec) return error{errc::connection_failed, "cannot connect to " + u->host + ":" + u->port + ": " + ec.message()};
        stream.async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code e) { ec = e; });
        run();
        if (ec) return error{errc::connection_failed, "TLS with " + u->host + ":" + u->port + " failed: " + ec.message()};
        bhttp::request<bhttp::string_body> req{method, u->target, 11};
        req.set(bhttp::field::host, u->port == "443" ? u->host : u->host + ":" + u->port);
        req.set(bhttp::field::user_agent, "twinhub");
        req.set("x-ms-version", "2019-12-12");
        req.set(bhttp::field::connection, "close");
        if (body) {
            req.set("x-ms-blob-type", "BlockBlob");
            req.set(bhttp::field::content_type, "text/plain; charset=utf-8");
            req.body() = *body;
        }
        if (method == bhttp::verb::put) req.prepare_payload();
        bhttp::async_write(stream, req, [&](boost::system::error_code e, std::size_t) { ec = e; });
        run();
        if (ec) return error{errc::connection_failed, "sending to " + u->host + " failed: " + ec.message()};
        beast::flat_buffer buf;
        bhttp::response_parser<bhttp::string_body> parser;
        parser.skip(method == bhttp::verb::head);
        parser.body_limit(max_blob_bytes);
        bhttp::async_read(stream, buf, parser, [&](boost::system::error_code e, std::size_t) { ec = e; });
        run();
        if (ec == bhttp::error::body_limit)
            return error{errc::message_too_large, "the blob is larger than " + std::to_string(max_blob_bytes) + " bytes"};
        if (ec) return error{errc::connection_failed, "reading from " + u->host + " failed: " + ec.message()};
        auto& res = parser.get();
        response out;
        out.status = static_cast<int>(res.result_int());
        out.content_length = std::string(res[bhttp::field::content_length]);
        out.last_modified = std::string(res[bhttp::field::last_modified]);
        out.error_code = std::string(res["x-ms-error-code"]);
        if (method == bhttp::verb::get) out.body = std::move(res.body());
        return out;
    }

    void post(std::function<void(bool)> job) {
        {
            std::lock_guard l(mu);
            if (!stopping) {
                jobs.push_back(std::move(job));
                cv.notify_one();
                return;
            }
        }
        job(false);
    }

    void loop() {
        std::unique_lock l(mu);
        while (true) {
            cv.wait(l, [&] { return stopping || !jobs.empty(); });
            if (jobs.empty()) return;
            auto job = std::move(jobs.front());
            jobs.pop_front();
            const bool run = !stopping;
            l.unlock();
            job(run);
            l.lock();
        }
    }
};

storage_https::storage_https(std::vector<std::filesystem::path> ca_files) : impl_(std::make_unique<impl>()) {
    auto& m = *impl_;
    m.tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1);
    m.tls.set_default_verify_paths();
    for (auto& f : ca_files) {
        boost::system::error_code ec;
        m.tls.load_verify_file(f.string(), ec);
        if (ec) log::warn("storage.ca_file_unreadable", {{"path", f.string()}, {"why", ec.message()}});
    }
    m.tls.set_verify_mode(asio::ssl::verify_peer);
    m.worker = std::thread([&m] { m.loop(); });
}

storage_https::~storage_https() {
    {
        std::lock_guard l(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    impl_->worker.join();
}

void storage_https::create_container(std::string url, service::handler<void> done) {
    impl_->post([this, url = std::move(url), done = std::move(done)](bool run) {
        if (!run) return done(error{errc::shutting_down, "The hub is stopping."});
        auto r = impl_->request(bhttp::verb::put, url);
        if (!r) return done(r.error());
        if (r->status == 201 || r->status == 409) return done(result<void>{});  // 409: ContainerAlreadyExists
        done(error{errc::connection_failed, "storage answered " + std::to_string(r->status) + " " + r->error_code +
                                                " to creating the container"});
    });
}

void storage_https::blob_properties_of(std::string url, service::handler<service::blob_properties> done) {
    impl_->post([this, url = std::move(url), done = std::move(done)](bool run) {
        if (!run) return done(error{errc::shutting_down, "The hub is stopping."});
        auto r = impl_->request(bhttp::verb::head, url);
        if (!r) return done(r.error());
        if (r->status != 200)
            return done(error{errc::connection_failed, "storage answered " + std::to_string(r->status) +
                                                           (r->error_code.empty() ? "" : " " + r->error_code) +
                                                           " when reading the blob's properties"});
        service::blob_properties p;
        try {
            p.size = std::stoull(r->content_length);
        } catch (...) {
            return done(error{errc::connection_failed, "storage sent no Content-Length for the blob"});
        }
        p.last_modified = iso_from_http_date(r->last_modified);
        done(std::move(p));
    });
}

void storage_https::get_blob(std::string url, service::handler<std::string> done) {
    impl_->post([this, url = std::move(url), done = std::move(done)](bool run) {
        if (!run) return done(error{errc::shutting_down, "The hub is stopping."});
        auto r = impl_->request(bhttp::verb::get, url);
        if (!r) return done(r.error());
        if (r->status != 200) return done(storage_failure(*r, "when reading the blob"));
        done(std::move(r->body));
    });
}

void storage_https::probe_blob(std::string url, service::handler<answer> done) {
    impl_->post([this, url = std::move(url), done = std::move(done)](bool run) {
        if (!run) return done(error{errc::shutting_down, "The hub is stopping."});
        auto r = impl_->request(bhttp::verb::head, url);
        if (!r) return done(r.error());
        done(answer{r->status, r->error_code});
    });
}

void storage_https::put_blob(std::string url, std::string body, service::handler<void> done) {
    impl_->post([this, url = std::move(url), body = std::move(body), done = std::move(done)](bool run) {
        if (!run) return done(error{errc::shutting_down, "The hub is stopping."});
        auto r = impl_->request(bhttp::verb::put, url, &body);
        if (!r) return done(r.error());
        if (r->status != 201) return done(storage_failure(*r, "when writing the blob"));
        done(result<void>{});
    });
}

}  // namespace twinhub::server
