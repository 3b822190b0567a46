// The seam for direct methods over MQTT (spec 5.8), which another issue implements: the MQTT head
// delivers method-request PUBLISHes to connected, subscribed identities and hands the devices'
// `$iothub/methods/res/{status}/?$rid=` PUBLISHes to a method_response_handler. Nothing here knows
// about timeouts or the service API; that is the methods module's job.
// Thread safety: see each member.
#pragma once

#include "store/store.hpp"

#include <cstdint>
#include <string>

namespace twinhub::mqtt {

// What the hub sends on `$iothub/methods/POST/{name}/?$rid={rid}`.
struct method_request {
    std::string method_name;  // no '/' (the C SDK tokenises on it)
    std::string rid;          // request id, echoed back by the device
    std::string payload;      // JSON text; "null" when the service sent no payload (never empty)
};

// Receives method responses from devices. Called on the responding session's strand: return
// quickly (post elsewhere). Must outlive the mqtt_server it is registered with.
class method_response_handler {
public:
    virtual ~method_response_handler() = default;
    // `payload` is the body as sent: JSON text, "null", or empty (Python/C send nothing).
    virtual void on_method_response(const store::identity_key& id, const std::string& rid, int status,
                                    const std::string& payload) = 0;
    // The session of `id` is now subscribed to methods (SUBACK sent, or a clean-session 0 CONNECT
    // restored the subscription): requests waiting for the identity can be sent.
    virtual void on_methods_ready(const store::identity_key& id) {}
    // Connection `connection` of `id` (the number send_method_request returned) closed or
    // unsubscribed from methods: requests sent on it will not be answered.
    virtual void on_methods_gone(const store::identity_key& id, std::uint64_t connection) {}
};

}  // namespace twinhub::mqtt
