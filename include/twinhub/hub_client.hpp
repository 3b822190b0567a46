// The device side of the SDK: one identity's MQTT connection to the hub (spec 5), the common base of
// device_client and module_client (create them with their create_from_connection_string).
//
// Behaviour:
//   * connect() opens the connection (TLS or WebSocket), sends CONNECT with clean session 0 and a SAS
//     token made from the identity key, subscribes to twin responses and desired-property patches,
//     and reads the twin once (the baseline for desired-property resync).
//   * While connected a private I/O thread keeps the connection alive (PINGREQ), renews the SAS
//     token before it expires by reconnecting with clean session 0, and, when the connection is lost,
//     reconnects with exponential backoff. After such a reconnect it re-subscribes, reads the twin
//     and, if desired.$version moved, delivers one synthesised patch (the merge-patch diff, with
//     nulls for removed keys, plus "$version") so that the application misses nothing.
//   * Calls made while reconnecting wait for the connection (up to operation_timeout).
//
// Errors: unauthorized (CONNACK 5: wrong key, unknown or disabled identity), connection_failed
// (unreachable, TLS, connection lost before the answer), gateway_timeout (no answer within
// operation_timeout), and for twin operations the hub's errorCode mapped to errc, with its message.
//
// Cloud-to-device messages (device_client::on_message, module_client::on_input_message): setting a
// handler subscribes (QoS 1, now and after every reconnect); the handler gets each message, and
// when it returns the SDK sends the PUBACK that completes the message in the hub. At-least-once: a
// handler that throws, or a connection lost before the PUBACK, leaves the message with the hub,
// which delivers it again on a later connection (MQTT has no reject or abandon; use the HTTPS
// device API for those).
//
// Handlers (desired patches, methods, C2D messages, connection state) run on a dedicated callback thread, one at a
// time, in arrival order; they may call any method of this client. Setting a handler replaces the
// previous one. What a handler uses must outlive the client: the destructor waits for a running
// handler, and handlers may run until then.
//
// Thread safety: every public method may be called from any thread concurrently, except that the
// destructor (which disconnects) must not race with other calls. Not copyable; movable only while
// no other thread uses the object.
#pragma once

#include "twinhub/c2d_message.hpp"
#include "twinhub/client_options.hpp"
#include "twinhub/error.hpp"
#include "twinhub/message.hpp"
#include "twinhub/method.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace twinhub {

class hub_client {
public:
    using desired_patch_handler = std::function<void(const boost::json::object& patch)>;
    using method_handler = std::function<method_response(const method_request& request)>;
    using connection_handler = std::function<void(bool connected, const error& reason)>;
    using c2d_handler = std::function<void(const received_c2d_message& message)>;

    hub_client(hub_client&&) noexcept;
    hub_client& operator=(hub_client&&) noexcept;
    virtual ~hub_client();

    // Connects (see above). Fails with unauthorized, connection_failed or gateway_timeout; calling
    // it while connected succeeds at once.
    result<void> connect();
    // Sends DISCONNECT and closes; stops reconnecting. Idempotent.
    void disconnect();
    bool connected() const;

    // {"desired": {..., "$version": n}, "reported": {..., "$version": m}} (spec 4.5).
    result<boost::json::object> get_twin();
    // Merge-patches the reported properties; returns the new reported $version.
    result<std::int64_t> patch_twin_reported_properties(const boost::json::object& patch);

    // The next desired-property patch ({..., "$version": n}), waiting up to `timeout`; std::nullopt
    // when none arrived in time. Patches are queued from connect() on (up to 1000, oldest dropped)
    // unless a handler is set.
    result<std::optional<boost::json::object>> receive_twin_desired_properties_patch(
        std::chrono::milliseconds timeout);
    // Alternative to receiving: called with each patch (including synthesised ones). Patches already
    // queued are handed to the new handler first. An empty function returns to queueing.
    void on_twin_desired_properties_patch(desired_patch_handler handler);

    // Sends a message (QoS 1) and waits for the hub's PUBACK.
    result<void> send_message(const message& m);

    // Answers direct method `method_name` (or, with an empty name, every method without its own
    // handler). Methods without any handler are answered 501. Subscribes to method calls.
    void on_method(std::string method_name, method_handler handler);

    void on_connection_state_change(connection_handler handler);

    const std::string& device_id() const;
    const std::string& module_id() const;  // empty for a device client

    struct impl;

protected:
    explicit hub_client(std::unique_ptr<impl> p);
    // Replaces the C2D handler; the first non-empty one subscribes, an empty one unsubscribes.
    // Fails (with the handler still set, and no subscription) when connected and the hub refused
    // or did not answer the (UN)SUBSCRIBE; while disconnected it succeeds and takes effect at connect.
    result<void> set_c2d_handler(c2d_handler handler);
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub
