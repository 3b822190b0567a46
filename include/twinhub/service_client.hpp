// The service side of cloud-to-device messaging, over AMQP 1.0 as IoT Hub offers it (spec
// iothub-amqp 2, 3.1, 3.2; iothub-protocol 3.10): send messages to devices and modules, and read the
// feedback the hub produces when they are settled. Authenticated like registry_manager, with a
// shared access policy from a service connection string; the policy needs ServiceConnect.
//
// Connection: TLS to HostName (without the connection string's REST port) on service_options
// amqp_port (5671 by default), SASL ANONYMOUS, then a CBS put-token on $cbs (audience: the hub
// host; a SAS token of sas_token_ttl from the policy key, renewed on the same link before it
// expires), then a sender on /messages/devicebound. connect() does all of it; send() and
// receive_feedback() connect first when not connected (again after a lost connection).
//
// Every call is synchronous and waits at most service_options::timeout. Errors:
//   * the hub rejected the message: the errc of its AMQP condition, with its description --
//     device_not_found / module_not_found (amqp:not-found), device_queue_full
//     (amqp:resource-limit-exceeded), message_too_large (amqp:link:message-size-exceeded),
//     unauthorized (amqp:unauthorized-access), invalid_argument (com.microsoft:argument-error);
//   * the put-token was refused (status-code other than 200), or the policy lacks ServiceConnect:
//     unauthorized;
//   * the hub could not be reached, TLS failed, or the connection dropped: connection_failed (a send
//     whose connection dropped before the hub settled it may or may not have been queued);
//   * no answer within the timeout: gateway_timeout.
//
// Thread safety: a service_client may be used from several threads at once; all AMQP work happens
// on its private I/O thread. Not copyable; moving it is not thread-safe. The destructor closes.
#pragma once

#include "twinhub/c2d_message.hpp"
#include "twinhub/error.hpp"
#include "twinhub/registry_manager.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub {

class service_client {
public:
    // Parses a service connection string; fails with invalid_argument when it is not one, or when
    // the TLS options are unusable. Does not connect.
    static result<service_client> from_connection_string(std::string_view connection_string,
                                                         service_options options = {});

    service_client(service_client&&) noexcept;
    service_client& operator=(service_client&&) noexcept;
    ~service_client();

    // Opens the connection, authenticates and attaches the C2D sender (see above). Succeeds at once
    // when already connected.
    result<void> connect();
    // Closes the AMQP connection (feedback batches received but not yet returned go back to the
    // hub). Idempotent; a later call connects again.
    void close();
    bool connected() const;

    // Sends `message` to /devices/{device_id}/messages/devicebound (or, with a module id, to the
    // module: /devices/{d}/modules/{m}/messages/devicebound, a twinhub extension that IoT Hub
    // lacks) and returns once the hub has settled the delivery: success means the message is
    // durably queued.
    result<void> send(std::string_view device_id, const c2d_message& message);
    result<void> send(std::string_view device_id, std::string_view module_id, const c2d_message& message);

    // The next feedback batch from /messages/serviceBound/feedback (one or more records), waiting
    // up to `timeout`; an empty vector when none arrived in time. The batch is accepted (removed from
    // the hub) as it is returned. The first call attaches the feedback receiver; feedback is hub-wide,
    // so two receivers share the batches.
    result<std::vector<feedback_record>> receive_feedback(std::chrono::milliseconds timeout);

    const std::string& host_name() const;

    struct impl;

private:
    explicit service_client(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub
