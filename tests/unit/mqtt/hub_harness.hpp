// In-process test harness for the MQTT head: a hub_service over the memory store, an mqtt_server on
// a real TLS port 0 with a throw-away CA, and a blocking TLS MQTT client built on the codec.
#pragma once

#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "mqtt/mqtt_server.hpp"
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "server/certificates.hpp"
#include "server/server_tls.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <poll.h>

#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace twinhub::mqtt::test {

namespace asio = boost::asio;
inline const std::string hub_host = "hub.test.local";

template <class T>
T wait_for(std::function<void(service::handler<T>)> start) {
    std::promise<result<T>> p;
    start([&p](result<T> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    if (!r) throw std::runtime_error("hub call failed: " + r.error().message);
    if constexpr (!std::is_void_v<T>) return std::move(*r);
}

template <class T>
T h_get(result<T> r) {
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(*r);
}

struct hub_harness {
    std::unique_ptr<store::store> store = store::make_memory_store();
    std::unique_ptr<service::hub_service> hub;
    asio::io_context ioc{2};
    asio::ssl::context tls{asio::ssl::context::tls_server};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::unique_ptr<mqtt_server> server;
    std::vector<std::thread> threads;
    server::pem_pair ca;

    explicit hub_harness(mqtt_options o = {}) {
        log::level lvl;
        if (const char* v = std::getenv("TWINHUB_LOG_LEVEL"); v && log::parse_level(v, lvl)) log::set_level(lvl);
        auto h = service::hub_service::open(*store, service::hub_options{});
        if (!h) throw std::runtime_error(h.error().message);
        hub = std::move(*h);
        ca = server::make_ca("twinhub test CA", 2);
        auto cert = server::make_server_certificate(ca, {"localhost", "127.0.0.1", hub_host}, 2);
        server::apply_server_tls_policy(tls);  // twinhubd's policy (src/server/server_tls)
        tls.use_certificate_chain(asio::buffer(cert.certificate));
        tls.use_private_key(asio::buffer(cert.private_key), asio::ssl::context::pem);
        o.host_names = {hub_host};
        o.bind_address = "127.0.0.1";
        o.port = 0;
        server = std::make_unique<mqtt_server>(ioc, tls, *hub, o);
        if (auto r = server->start(); !r) throw std::runtime_error(r.error().message);
        work.emplace(ioc.get_executor());
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { ioc.run(); });
    }
    ~hub_harness() {
        server->stop();
        work.reset();
        for (auto& t : threads) t.join();
        server.reset();
        hub.reset();
        store->close();
    }

    // Creates a device (and optionally a module) with generated keys; returns the primary key.
    std::string add_device(const std::string& d) {
        registry::device_identity req;
        req.device_id = d;
        auto created = wait_for<registry::device_identity>(
            [&](service::handler<registry::device_identity> h) { hub->create_device(req, std::move(h)); });
        return created.authentication.symmetric_key.primary_key;
    }
    std::string add_module(const std::string& d, const std::string& m) {
        registry::module_identity req;
        req.device_id = d;
        req.module_id = m;
        auto created = wait_for<registry::module_identity>(
            [&](service::handler<registry::module_identity> h) { hub->create_module(req, std::move(h)); });
        return created.authentication.symmetric_key.primary_key;
    }
    void set_device_enabled(const std::string& d, bool enabled) {
        auto dev = hub->get_device(d);
        if (!dev) throw std::runtime_error(dev.error().message);
        auto req = *dev;
        req.status = enabled ? registry::device_status::enabled : registry::device_status::disabled;
        wait_for<registry::device_identity>(
            [&](service::handler<registry::device_identity> h) { hub->update_device(req, "*", std::move(h)); });
    }
    // Replaces the identity's keys (an empty key keeps the stored one) and waits for the commit.
    registry::device_identity set_device_keys(const std::string& d, const std::string& primary,
                                              const std::string& secondary = {}) {
        auto dev = h_get(hub->get_device(d));
        dev.authentication.symmetric_key = {primary, secondary};
        return wait_for<registry::device_identity>(
            [&](service::handler<registry::device_identity> h) { hub->update_device(dev, "*", std::move(h)); });
    }
    registry::module_identity set_module_keys(const std::string& d, const std::string& m, const std::string& primary,
                                              const std::string& secondary = {}) {
        auto mod = h_get(hub->get_module(d, m));
        mod.authentication.symmetric_key = {primary, secondary};
        return wait_for<registry::module_identity>(
            [&](service::handler<registry::module_identity> h) { hub->update_module(mod, "*", std::move(h)); });
    }
    auth::shared_access_policy policy(const std::string& name) const {
        for (auto& p : hub->policies())
            if (p.key_name == name) return p;
        throw std::runtime_error("no policy " + name);
    }
    auth::shared_access_policy put_policy(const auth::shared_access_policy& p) {
        return wait_for<auth::shared_access_policy>(
            [&](service::handler<auth::shared_access_policy> h) { hub->put_policy(p, std::move(h)); });
    }
    void delete_policy(const std::string& name) {
        wait_for<void>([&](service::handler<void> h) { hub->delete_policy(name, std::move(h)); });
    }
    boost::json::object patch_desired(const store::identity_key& id, const std::string& desired_json) {
        auto body = boost::json::parse("{\"properties\":{\"desired\":" + desired_json + "}}");
        return wait_for<boost::json::object>(
            [&](service::handler<boost::json::object> h) { hub->patch_twin(id, body, "", std::move(h)); });
    }
};

inline std::string sas_for(const std::string& d, const std::string& m, const std::string& key,
                           std::chrono::seconds ttl = std::chrono::hours(1), const std::string& host = hub_host) {
    auto se = auth::to_unix_seconds(now()) + ttl.count();
    auto t = auth::generate_sas_token(percent_encode(auth::identity_resource(host, d, m)), key, se);
    if (!t) throw std::runtime_error(t.error().message);
    return *t;
}

inline mqtt::connect connect_packet(const std::string& d, const std::string& m, const std::string& key, bool clean = false,
                              std::uint16_t keep_alive = 60) {
    mqtt::connect c;
    c.client_id = m.empty() ? d : d + "/" + m;
    c.username = hub_host + "/" + c.client_id + "/?api-version=2021-04-12&DeviceClientType=test";
    c.password = sas_for(d, m, key);
    c.clean_session = clean;
    c.keep_alive = keep_alive;
    return c;
}

// A CONNECT with a token signed by the shared access policy `policy_name` (skn) for the identity.
inline mqtt::connect policy_connect_packet(const std::string& d, const std::string& m, const std::string& policy_name,
                                           const std::string& policy_key) {
    auto c = connect_packet(d, m, policy_key);
    auto se = auth::to_unix_seconds(now()) + 3600;
    auto t =
        auth::generate_sas_token(percent_encode(auth::identity_resource(hub_host, d, m)), policy_key, se, policy_name);
    if (!t) throw std::runtime_error(t.error().message);
    c.password = *t;
    return c;
}

// A blocking MQTT-over-TLS client for tests. Reads time out after `timeout`.
class test_client {
public:
    explicit test_client(unsigned short port, std::chrono::milliseconds timeout = std::chrono::seconds(5))
        : ctx_(asio::ssl::context::tls_client), stream_(ioc_, ctx_), timeout_(timeout) {
        ctx_.set_verify_mode(asio::ssl::verify_none);
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
        stream_.lowest_layer().connect(ep);
        set_timeout(timeout);
    }
    void handshake() { stream_.handshake(asio::ssl::stream_base::client); }
    // The connection's SSL object, to restrict versions or suites before handshake().
    SSL* native() { return stream_.native_handle(); }

    void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

    void send(const packet& p) { send_raw(to_bytes(p)); }
    void send_raw(const std::string& bytes) { asio::write(stream_, asio::buffer(bytes)); }

    // The next packet, or nullopt on close/timeout (closed() tells which).
    std::optional<packet> next() {
        for (;;) {
            auto r = dec_.next();
            if (!r) throw std::runtime_error("client decode error: " + r.error().message);
            if (*r) return std::move(**r);
            char buf[4096];
            boost::system::error_code ec;
            std::size_t n = 0;
            bool done = false;
            stream_.async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t k) {
                ec = e;
                n = k;
                done = true;
            });
            ioc_.restart();
            ioc_.run_for(timeout_);
            if (!done) {
                boost::system::error_code ignored;
                stream_.lowest_layer().cancel(ignored);
                ioc_.restart();
                ioc_.run();
                if (ec == asio::error::operation_aborted) {
                    closed_ = false;
                    return std::nullopt;
                }
            }
            if (ec) {
                closed_ = true;
                return std::nullopt;
            }
            dec_.feed(buf, n);
        }
    }
    template <class T>
    T expect() {
        auto p = next();
        if (!p) throw std::runtime_error(closed_ ? "connection closed" : "timed out");
        if (!std::holds_alternative<T>(*p))
            throw std::runtime_error(std::string("unexpected packet ") + to_string(type_of(*p)));
        return std::get<T>(std::move(*p));
    }
    // True when the server closes the connection before `within` (no packet other than the ones
    // skipped is accepted).
    bool closed_within(std::chrono::milliseconds within) {
        set_timeout(within);
        for (;;) {
            auto p = next();
            if (!p) return closed_;
        }
    }
    connack connect_with(const mqtt::connect& c) {
        send(c);
        return expect<connack>();
    }
    bool closed() const { return closed_; }

private:
    asio::io_context ioc_;
    asio::ssl::context ctx_;
    asio::ssl::stream<asio::ip::tcp::socket> stream_;
    std::chrono::milliseconds timeout_;
    decoder dec_{1 << 24};
    bool closed_ = false;
};

}  // namespace twinhub::mqtt::test
