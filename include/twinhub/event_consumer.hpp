// A reader of the hub's built-in Event Hubs-compatible endpoint (spec iothub-amqp 5): the
// device-to-cloud messages (telemetry, module outputs) the hub stored, per partition, in order,
// with the annotations IoT Hub adds (iothub-connection-device-id, -module-id, iothub-enqueuedtime,
// iothub-message-source, ...). Authenticated like service_client, with a shared access policy from
// a service connection string; the policy needs ServiceConnect.
//
// Connection: TLS to HostName (without the connection string's REST port) on service_options
// amqp_port (5671 by default), SASL ANONYMOUS, a CBS put-token (renewed before it expires), then
// a $management READ for the partition ids (never assumed) and one receiver per partition on
// {eventHub}/ConsumerGroups/{group}/Partitions/{p} with a selector filter for the start position.
// connect() does all of it; receive() connects first when not connected. After a lost connection
// the next receive() connects again and resumes each partition after the last event it returned
// (a partition that has returned none starts at its start position again).
//
// Flow control: each partition receiver holds at most options.prefetch events (link credit plus
// events buffered here); credit is granted back one event at a time as receive() hands them out, so
// a slow reader never makes the hub push without bound.
//
// Every call is synchronous and waits at most service_options::timeout (receive: its own timeout,
// plus connecting). Errors:
//   * the consumer group does not exist: not_found, with the hub's description;
//   * the put-token was refused, or the policy lacks ServiceConnect: unauthorized;
//   * an unknown partition (partition_info, event_consumer_options::partitions): not_found;
//   * the hub could not be reached, TLS failed, or the connection dropped: connection_failed;
//   * no answer within the timeout: gateway_timeout.
//
// Thread safety: an event_consumer may be used from several threads at once (each event goes to
// one receive() call); all AMQP work happens on its private I/O thread. Not copyable; moving it is
// not thread-safe. The destructor closes.
#pragma once

#include "twinhub/error.hpp"
#include "twinhub/registry_manager.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub {

// Where a partition receiver starts. The default is latest: only events enqueued after it attaches.
struct event_position {
    enum class kind { earliest, latest, enqueued_time, sequence_number } what = kind::latest;
    std::chrono::system_clock::time_point enqueued_time{};  // kind::enqueued_time: events enqueued after it
    std::int64_t sequence_number = 0;                       // kind::sequence_number
    bool inclusive = false;  // sequence_number: include the event with that number itself

    static event_position earliest() { return {kind::earliest}; }
    static event_position latest() { return {kind::latest}; }
    static event_position from_enqueued_time(std::chrono::system_clock::time_point t) {
        event_position p{kind::enqueued_time};
        p.enqueued_time = t;
        return p;
    }
    static event_position from_sequence_number(std::int64_t n, bool inclusive = false) {
        event_position p{kind::sequence_number};
        p.sequence_number = n;
        p.inclusive = inclusive;
        return p;
    }
};

struct event_consumer_options {
    service_options service;  // TLS, amqp_port, timeout, token lifetime
    std::string consumer_group = "$Default";
    event_position start = event_position::latest();
    std::map<std::string, event_position> partition_start;  // per partition id; overrides `start`
    std::vector<std::string> partitions;                    // the partitions to read; empty: all the hub has
    std::uint32_t prefetch = 100;                           // events in flight or buffered, per partition (1..10000)
};

// One event as the hub stored it.
struct event_data {
    std::string partition;
    std::int64_t sequence_number = 0;                     // x-opt-sequence-number
    std::string offset;                                   // x-opt-offset
    std::chrono::system_clock::time_point enqueued_time;  // x-opt-enqueued-time (millisecond precision)
    std::string device_id;                                // iothub-connection-device-id
    std::string module_id;  // iothub-connection-module-id; empty for a device's own messages
    std::string body;       // bytes
    // The device's application properties (an AMQP map: order not kept); non-string values as text.
    std::vector<std::pair<std::string, std::string>> properties;
    // The message's AMQP properties under their AMQP names (message-id, correlation-id, user-id, to,
    // content-type, content-encoding, ...) and every message annotation but the x-opt-* ones
    // (iothub-connection-device-id, iothub-enqueuedtime, iothub-message-source, ...), like the
    // systemProperties of the Event Hubs SDKs. Timestamps are Unix milliseconds.
    boost::json::object system_properties;
    // All message annotations as sent, x-opt-* included (timestamps as Unix milliseconds).
    boost::json::object annotations;
};

struct event_hub_properties {
    std::string name;  // the Event Hub name of the built-in endpoint
    std::vector<std::string> partition_ids;
};

struct partition_properties {
    std::string partition;
    std::int64_t begin_sequence_number = 0;
    std::int64_t last_enqueued_sequence_number = -1;  // -1: nothing enqueued yet
    std::string last_enqueued_offset;
    std::chrono::system_clock::time_point last_enqueued_time;
    bool is_empty = true;
};

class event_consumer {
public:
    // Parses a service connection string and checks the options; fails with invalid_argument when
    // it is not one, the TLS options are unusable, the consumer group is empty or prefetch is out of
    // range. Does not connect.
    static result<event_consumer> from_connection_string(std::string_view connection_string,
                                                         event_consumer_options options = {});

    event_consumer(event_consumer&&) noexcept;
    event_consumer& operator=(event_consumer&&) noexcept;
    ~event_consumer();

    // Opens the connection, authenticates, reads the partition ids and attaches a receiver to each
    // partition (see above). Succeeds at once when already connected. The start positions apply to
    // the first connect; a reconnect resumes after the last event handed out per partition.
    result<void> connect();
    // Closes the connection; buffered events not yet returned are dropped (a reconnect reads them
    // again). Idempotent.
    void close();
    bool connected() const;

    // The Event Hub name and partition ids, from a $management READ (connects first).
    result<event_hub_properties> hub_properties();
    result<std::vector<std::string>> partition_ids();
    // One partition's sequence numbers and last enqueued time, from a $management READ.
    result<partition_properties> partition_info(std::string_view partition);

    // The next event of any partition (per partition in order), waiting up to `timeout`; nullopt
    // when none arrived in time.
    result<std::optional<event_data>> receive(std::chrono::milliseconds timeout);

    const std::string& host_name() const;

    struct impl;

private:
    explicit event_consumer(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub
