// The cloud-to-device (C2D) message service: one durable queue per identity (devices, and modules
// as a twinhub extension), the delivery state machine of IoT Hub (enqueued -> locked -> completed |
// abandoned | rejected | expired | dead-lettered), and the hub-wide feedback queue. Protocol heads
// call only this class: the REST head (send, purge, the device HTTPS receive API), the MQTT head
// (QoS 1 delivery, PUBACK = complete) and the AMQP head (service send link on /messages/devicebound,
// device receive links, the feedback link /messages/serviceBound/feedback).
//
// Durability: a send is acknowledged (its handler gets the sequence number) only after the message
// is durable in the store (group-committed with other writes); a message is never delivered before
// that. Settlements (complete, reject, abandon, purge, expiry, dead-lettering) take effect in memory
// at once and their handlers run after the store has them. Locks live in memory only: after a
// restart every message that was locked is available again, with the delivery count it had at its
// last abandon. A delivery that was in progress at a crash is therefore not counted.
//
// Delivery count: starts at 0 and grows by one for every delivery that ends without completion
// (abandon, lock expiry, the end of the session that held the lock). When it reaches
// max_delivery_count the message is dead-lettered (DeliveryCountExceeded). A message whose expiry
// has passed is never delivered: it is removed (Expired) when found by lock_next or the sweeper, or
// when its lock ends; a locked message may still be completed after its expiry.
//
// Feedback: a message with iothub-ack positive or full gets a Success record on complete; negative
// or full gets Rejected / Expired / DeliveryCountExceeded records. A purge sends no feedback (as in
// IoT Hub). Records are appended to a durable hub-wide queue in the same store batch as the
// settlement; they are read in batches under a lock token (receive_feedback_batch), completed
// (removed) or abandoned (available again); an expired batch lock makes them available again.
//
// Handlers (`done`) run once: on the calling thread, before the call returns, for failures found
// before the store is involved (validation, not found, queue full, lock lost, shutting down);
// otherwise on the store's thread after commit. Notifications (subscribe) run on whatever thread
// made a message available (the store's, the sweeper's, a caller's), never under a lock of this
// class; post from them to your own strand and do not block. Any member may be called from a
// handler or a notification.
//
// Lock tokens are opaque strings, unique per delivery (a UUID); a token only settles a message of
// the identity it was issued for (identity isolation). A stale, settled, expired or foreign token
// fails with message_lock_lost.
//
// Thread safety: every member function may be called from any thread. The store and the
// hub_service must outlive the c2d_service; destroy it before them (the destructor stops the
// sweeper and waits for its store commits to complete).
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"
#include "service/hub_service.hpp"
#include "store/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace twinhub::service {

struct c2d_options {
    std::size_t max_queue_depth = 50;          // per identity (spec 5.6, 7.3)
    std::size_t max_message_size = 64 * 1024;  // body plus property names and values (spec 7.3)
    std::chrono::seconds default_ttl{3600};    // when the message names no expiry
    std::chrono::seconds max_ttl{48 * 3600};   // IoT Hub's maximum (spec 7.3)
    std::uint32_t max_delivery_count = 10;     // IoT Hub's default (configurable there up to 100)
    std::size_t max_feedback_batch = 100;      // records per receive_feedback_batch
    // How often the sweeper thread expires messages and locks; zero: no thread (tests call sweep()).
    std::chrono::milliseconds sweep_interval{1000};
    std::function<time_point()> clock;  // empty: twinhub::now()
};

// A message as a sender hands it in.
struct c2d_outgoing {
    std::string body;  // bytes
    std::string message_id;
    std::string correlation_id;
    std::string user_id;
    std::string content_type;
    std::string content_encoding;
    std::optional<time_point> expiry;  // absolute expiry; nullopt: now + default_ttl
    store::c2d_ack ack = store::c2d_ack::none;
    std::vector<std::pair<std::string, std::string>> application_properties;  // in order
};

// A message locked for one delivery.
struct c2d_delivery {
    store::c2d_message message;  // sequence_number, properties, delivery_count before this delivery
    std::string lock_token;
    std::optional<time_point> lock_expiry;  // nullopt: held until settled (MQTT, AMQP links)
};

struct feedback_batch {
    std::string lock_token;
    std::vector<store::feedback_record> records;  // oldest first, at least one
};

// {"originalMessageId","description","deviceGenerationId","deviceId","enqueuedTimeUtc","statusCode"}
// per record (plus "moduleId" for a module's message, a twinhub extension), as a JSON array: the
// body of one feedback message (spec iothub-amqp 3.2).
std::string feedback_batch_json(const std::vector<store::feedback_record>& records);

// "none" | "positive" | "negative" | "full" (case-insensitive) -> c2d_ack; invalid_argument otherwise.
result<store::c2d_ack> parse_c2d_ack(std::string_view s);
const char* to_string(store::c2d_ack a) noexcept;

class c2d_service {
public:
    using subscription = std::uint64_t;

    // Loads the queues from the store and starts the sweeper (unless sweep_interval is zero).
    // Registers an observer with `hub` (so call before serving): a deleted device or module loses its
    // queue. Fails with the store's error.
    static result<std::unique_ptr<c2d_service>> open(store::store& s, hub_service& hub, c2d_options opts = {});
    ~c2d_service();

    // ---- service side ----

    // Enqueues `m` for `target`. Completes with the message's sequence number once it is durable,
    // or fails with device_not_found / module_not_found, message_too_large (over max_message_size),
    // invalid_argument (expiry not in the future or beyond max_ttl), device_queue_full (max_queue_depth
    // messages are queued or being enqueued), a store error, or shutting_down.
    void send(store::identity_key target, c2d_outgoing m, handler<std::uint64_t> done);

    // Removes every message of `target`, locked ones too (their tokens become lost). Completes with
    // the number removed once durable; device_not_found / module_not_found for an unknown identity.
    void purge(store::identity_key target, handler<std::size_t> done);

    // Messages queued for `target` (locked ones included): its cloudToDeviceMessageCount.
    std::size_t pending_count(const store::identity_key& target) const;

    // ---- device side ----

    // Calls `notify` whenever a message may have become available to lock_next for `id` (enqueued,
    // abandoned, lock expired), and once right away if one is available now. Returns the id that
    // unsubscribe() takes. Several subscribers per identity are fine; each is told.
    subscription subscribe(store::identity_key id, std::function<void()> notify);
    // After it returns, the notify function is not called again (unless already running).
    void unsubscribe(subscription s);

    // Locks the oldest available message of `id` for `lock_duration` (nullopt: until settled) and
    // returns it, or nullopt when none is available. Expired messages met on the way are removed
    // (Expired feedback). Fails only with shutting_down.
    result<std::optional<c2d_delivery>> lock_next(const store::identity_key& id,
                                                  std::optional<std::chrono::milliseconds> lock_duration);

    // Settle a locked message. Each fails at once with message_lock_lost when `lock_token` does not
    // name a current lock of `id`'s queue.
    // complete: removes it (Success feedback if asked for).
    void complete(const store::identity_key& id, std::string_view lock_token, handler<void> done);
    // abandon: makes it available again with delivery_count + 1, or dead-letters it when that
    // reaches max_delivery_count, or removes it as Expired when its expiry has passed.
    void abandon(const store::identity_key& id, std::string_view lock_token, handler<void> done);
    // reject: dead-letters it (Rejected feedback if asked for).
    void reject(const store::identity_key& id, std::string_view lock_token, handler<void> done);

    // ---- feedback (service side, /messages/serviceBound/feedback) ----

    // Like subscribe, for the feedback queue: told when unlocked records may be available.
    subscription subscribe_feedback(std::function<void()> notify);
    // Locks up to max_feedback_batch (and at most `max_records`) of the oldest unlocked records as
    // one batch for `lock_duration`; nullopt when there are none.
    std::optional<feedback_batch> receive_feedback_batch(std::chrono::milliseconds lock_duration,
                                                         std::size_t max_records = SIZE_MAX);
    // Removes the batch's records (durable when done runs); message_lock_lost for an unknown token.
    void complete_feedback(std::string_view lock_token, handler<void> done);
    // Makes the batch's records available again; message_lock_lost for an unknown token.
    result<void> abandon_feedback(std::string_view lock_token);
    // Records in the feedback queue, locked ones included.
    std::size_t feedback_count() const;

    // Expires messages and locks as of now(); the sweeper thread calls it every sweep_interval.
    void sweep();

    struct impl;

private:
    explicit c2d_service(std::unique_ptr<impl> p);
    // device_not_found / module_not_found when the hub has no such identity.
    result<void> hub_identity_exists(const store::identity_key& id) const;
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::service
