// The hub-side registry of direct-method invocations in flight (spec 3.8, 5.8). A service call
// (REST) asks the router to invoke a method on an identity; the router hands the request to the
// identity's connection through a method_channel (the MQTT head), waits for the answer the head
// reports with on_response(), and completes the call exactly once: with the device's status and
// payload, or with an error:
//   - device_not_online (404103): not connected or not subscribed to methods within connect_timeout;
//   - gateway_timeout (504101): no answer within response_timeout after the request was handed to
//     the connection, or that connection closed (or unsubscribed) before answering: the request
//     reached the device, so the method may or may not have run, which is what 504 tells a caller
//     and 404103 (never delivered, safe to retry) would not;
//   - message_too_large (413): the device's answer is over max_response_size (the answer is dropped);
//   - shutting_down (503): the router stopped.
// Answers with an unknown, late or duplicate $rid, or from another identity, are dropped.
//
// Threading: every public function may be called from any thread concurrently. Completions run
// outside the router's lock on whichever thread settled the call: the caller of invoke() (immediate
// failures), the head's thread (answers, disconnects) or a thread running the io_context (timeouts);
// they must not block. The router calls method_channel::deliver() while holding its lock, so a
// channel must never call back into the router from deliver().
// Lifetime: the io_context and the channel must outlive the router; the router must outlive every
// head that reports to it. The destructor calls stop().
#pragma once

#include "common/errc.hpp"
#include "common/identity_key.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace twinhub::methods {

// What a connection sends on `$iothub/methods/POST/{method_name}/?$rid={rid}`.
struct method_call {
    std::string method_name;  // validated: no '/', no MQTT wildcards
    std::string rid;          // the router's request id, echoed back by the device
    std::string payload;      // JSON text, never empty ("null" when the service sent none)
};

// The protocol-head side: hands method requests to connected identities.
class method_channel {
public:
    virtual ~method_channel() = default;
    // Queues `call` on the current connection of `id` if that connection is subscribed to methods and
    // returns a non-zero number naming the connection; the head must later report its closing (or
    // its unsubscribing from methods) with method_router::on_connection_gone. Fails with
    // device_not_online when the identity has no such connection. Must not block and must not call
    // the router.
    virtual result<std::uint64_t> deliver(const identity_key& id, method_call call) = 0;
};

// The device's answer, as the service gets it: {"status": status, "payload": payload}.
struct method_response {
    int status = 0;
    std::string payload;  // JSON text: the device's body, or "null" when it sent none
};

struct invoke_options {
    std::chrono::milliseconds response_timeout{30'000};
    std::chrono::milliseconds connect_timeout{0};  // 0: the identity must be reachable now
};

struct router_options {
    std::size_t max_response_size = 128 * 1024;  // spec 7.3: 128 KB each way
};

class method_router {
public:
    using completion = std::function<void(result<method_response>)>;

    method_router(boost::asio::io_context& ioc, router_options opts = {});
    ~method_router();
    method_router(const method_router&) = delete;
    method_router& operator=(const method_router&) = delete;

    // Set before the first invoke(); nullptr makes every identity unreachable.
    void set_channel(method_channel* channel);

    // Invokes `method_name` on `id` with `payload_json` (JSON text; empty means null). `done` is
    // called exactly once (possibly before invoke returns). The arguments are trusted: the REST edge
    // validated the name, the sizes and the timeouts, and checked that the identity exists.
    void invoke(identity_key id, std::string method_name, std::string payload_json, invoke_options opts,
                completion done);

    // ---- reported by the protocol head ----
    // `id` answered request `rid` with `status` and `body` (JSON text, "null" or empty). Completes the
    // call if `rid` is pending for `id`; drops the answer otherwise.
    void on_response(const identity_key& id, std::string_view rid, int status, std::string_view body);
    // `id` is now connected and subscribed to methods: calls waiting for it are delivered.
    void on_methods_ready(const identity_key& id);
    // Connection `connection` of `id` closed or unsubscribed from methods: the calls delivered on it
    // fail now with gateway_timeout instead of at their deadline.
    void on_connection_gone(const identity_key& id, std::uint64_t connection);

    // Fails every pending call with shutting_down; later invokes fail the same way. Idempotent.
    void stop();

    // Calls not yet settled (waiting for a connection or for an answer).
    std::size_t pending() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace twinhub::methods
