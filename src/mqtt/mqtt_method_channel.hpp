// Binds a method_router to the MQTT head (spec 5.8): the router's method_channel is
// mqtt_server::send_method_request, and the head's method responses, readiness and closed
// connections are reported to the router.
// Lifetime: the router and the mqtt_server must outlive this object; construct it before devices
// connect. The destructor detaches both sides (call it when no I/O thread runs, as the server does).
// Thread safety: deliver() and the handler callbacks may be called from any thread (see the router).
#pragma once

#include "methods/method_router.hpp"
#include "mqtt/method_seam.hpp"

namespace twinhub::mqtt {

class mqtt_server;

// The MQTT head's side of the methods module: it depends on methods/, never the other way round.
class mqtt_method_channel final : public methods::method_channel, public method_response_handler {
public:
    mqtt_method_channel(methods::method_router& router, mqtt_server& mqtt);
    ~mqtt_method_channel() override;
    mqtt_method_channel(const mqtt_method_channel&) = delete;
    mqtt_method_channel& operator=(const mqtt_method_channel&) = delete;

    result<std::uint64_t> deliver(const store::identity_key& id, methods::method_call call) override;

    void on_method_response(const store::identity_key& id, const std::string& rid, int status,
                            const std::string& payload) override;
    void on_methods_ready(const store::identity_key& id) override;
    void on_methods_gone(const store::identity_key& id, std::uint64_t connection) override;

private:
    methods::method_router& router_;
    mqtt_server& mqtt_;
};

}  // namespace twinhub::mqtt
