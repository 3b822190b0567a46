// State shared by the MQTT listener and its sessions (internal to src/mqtt): options, the hub, and
// the session registry: one authenticated session per identity (a new CONNECT replaces the old,
// spec 5.3) plus every open session, for stop().
// Thread safety: registry members lock a mutex; everything else is immutable after start or atomic.
#pragma once

#include "mqtt/mqtt_server.hpp"
#include "service/hub_service.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>

namespace twinhub::mqtt {

class session;

struct mqtt_server::state {
    state(boost::asio::io_context& i, boost::asio::ssl::context& t, service::hub_service& h, mqtt_options o)
        : ioc(i), tls(t), hub(h), opts(std::move(o)) {}

    boost::asio::io_context& ioc;
    boost::asio::ssl::context& tls;
    service::hub_service& hub;
    const mqtt_options opts;
    std::atomic<method_response_handler*> methods{nullptr};
    std::atomic<service::c2d_service*> c2d{nullptr};
    std::atomic<bool> stopped{false};
    std::atomic<std::uint64_t> next_connection_id{1};
    // +1 on every credentials or policy change, before the sessions concerned are told. A CONNECT
    // that authenticated against older credentials sees it changed once it has claimed its
    // identity, and checks again: a change committed between its check and its claim is not missed.
    std::atomic<std::uint64_t> credentials_epoch{0};

    // ---- registry ----
    // Makes `s` the session of `id`; returns the one it replaces (to be closed), if any.
    std::shared_ptr<session> claim(const store::identity_key& id, const std::shared_ptr<session>& s);
    // Forgets `s` as the session of `id` if it still is; true when it was.
    bool release(const store::identity_key& id, const session* s);
    std::shared_ptr<session> find(const store::identity_key& id) const;

    void add_open(const std::shared_ptr<session>& s);
    void remove_open(const session* s);
    std::vector<std::shared_ptr<session>> open_sessions() const;
    std::size_t open_count() const;

private:
    mutable std::mutex mu_;
    std::map<store::identity_key, std::weak_ptr<session>> by_identity_;
    std::unordered_map<const session*, std::weak_ptr<session>> open_;
};

}  // namespace twinhub::mqtt
