// What a store shared by several hub nodes (PostgreSQL) offers beyond store.hpp: presence across
// nodes (issue 18 item 2). A node publishes the sessions it holds; every other node learns, through
// the database's change feed, which node holds which identity's session. A node whose heartbeat
// row is older than dead_node_after (killed, cut off) has its sessions cleared by whichever node
// notices first, within dead_node_after plus one sweep interval.
// Direct methods cross nodes the same way: a call for an identity whose session another node holds
// is written for that node, which invokes it on its session and writes the result back.
// Obtained with dynamic_cast<cluster_link*>(&store); stores of one node do not implement it.
// Thread safety: every member from any thread; the handler runs on the store's feed thread.
#pragma once

#include "common/identity_key.hpp"
#include "store/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace twinhub::store {

inline constexpr std::chrono::seconds dead_node_after{10};

class cluster_link {
public:
    virtual ~cluster_link() = default;

    // This node now holds (connected) or no longer holds a session of `id`. Asynchronous: the
    // feed thread writes it within one poll interval.
    virtual void publish_presence(const identity_key& id, bool connected) = 0;

    // Another node now holds a session of `id` (`node` its id) or none does (`node` empty).
    using presence_handler = std::function<void(const identity_key& id, const std::string& node)>;
    // Also called, once set, for every session other nodes held when this node started.
    virtual void set_presence_handler(presence_handler h) = 0;

    // The other node holding a session of `id`, or "".
    virtual std::string node_of(const identity_key& id) const = 0;

    // A direct-method call forwarded to the node holding the session.
    struct method_call {
        std::string origin;  // the calling node
        identity_key target;
        std::string method, rid, payload;
        std::uint64_t connection = 0;  // the origin's name for this forwarded call
    };
    // Its outcome, sent back to the origin: the device's answer, or delivered = false when the
    // holding node could not reach the session (it is gone; the origin fails the call).
    struct method_result {
        identity_key target;
        std::string rid;
        std::uint64_t connection = 0;
        bool delivered = true;
        int status = 0;
        std::string payload;
    };
    // Asynchronous: the feed thread writes them within one poll interval.
    virtual void send_method_call(const std::string& node, method_call c) = 0;
    virtual void send_method_result(const std::string& origin, method_result r) = 0;
    // Called on the feed thread with calls for this node and results of this node's calls.
    virtual void set_method_handlers(std::function<void(method_call)> on_call,
                                     std::function<void(method_result)> on_result) = 0;
    // This node's id (calls name it as their origin).
    virtual std::string self() const = 0;

    // Called on the feed thread with each event stream (store.hpp: event_record::partition) whose
    // sequence counter advanced since the last poll, whichever node appended: readers wake up.
    virtual void set_events_handler(std::function<void(std::uint32_t stream)> h) = 0;

    // A C2D queue or feedback queue write another node committed (each C2D write records one, in
    // commit order with the record changes): every node applies them to its in-memory queues.
    struct c2d_change {
        enum class kind : std::uint8_t { enqueued, delivery_count, deleted, feedback_appended, feedback_deleted };
        kind k = kind::enqueued;
        identity_key id;  // the message's target (not for feedback kinds)
        std::uint64_t seq = 0;
        std::uint32_t delivery_count = 0;         // kind::delivery_count
        std::optional<c2d_message> message;       // kind::enqueued: as stored; nullopt if gone since
        std::optional<feedback_record> feedback;  // kind::feedback_appended: nullopt if gone since
    };
    // Called on the feed thread with each poll's C2D changes of other nodes, in commit order, after
    // the record changes of the same poll went to the remote listener. Replacing it waits for a
    // call that is running.
    virtual void set_c2d_handler(std::function<void(std::vector<c2d_change>&)> h) = 0;
};

}  // namespace twinhub::store
