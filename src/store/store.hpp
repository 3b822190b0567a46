// The durable store: domain-level persistence for policies, identities, twins, MQTT sessions, the
// telemetry log, the cloud-to-device (C2D) queues and the hub-wide C2D feedback queue. Backends: memory (tests), SQLite (the
// embedded default), PostgreSQL (one node for now; scale-out is issue 18 item 2); all pass
// tests/unit/store/conformance.
//
// Writes are grouped into a write_batch, committed atomically (all of it or none of it). A batch
// may carry conditions (expected revisions); if one fails, the batch changes nothing and completes
// with that error (device_already_exists, device_not_found, module_not_found,
// module_already_exists, precondition_failed). Batches from many callers are group-committed:
// a backend may apply many batches in one transaction and one fsync, but each batch succeeds or
// fails on its own. A batch is durable when its completion reports success: it survives kill -9.
//
// Completions run on a store-owned thread, in commit order. Keep them short (post elsewhere); they
// must not call commit_sync on the same store, nor destroy it (commit() and close() are fine).
//
// Backends: make_memory_store() (store/memory_store.hpp), open_sqlite_store(path)
// (store/sqlite_store.hpp), open_postgres_store(url) (store/postgres_store.hpp).
//
// Thread safety: every member function may be called from any thread concurrently.
#pragma once

#include "auth/shared_access_policy.hpp"
#include "common/errc.hpp"
#include "common/identity_key.hpp"
#include "registry/identity.hpp"
#include "twin/twin_document.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace twinhub::store {

// Identifies a device (module_id empty) or a module (common/identity_key.hpp).
using identity_key = twinhub::identity_key;

// A condition on the record a write replaces. `revision` is the identity's etag counter or the
// twin's `version`. Failures, in order of checking:
//   - the device (or, for a module's record, the module) a write needs is missing: device_not_found /
//     module_not_found, whatever the condition (except delete with any(): then a no-op);
//   - absent() and the record exists: device_already_exists / module_already_exists (a twin:
//     precondition_failed);
//   - present() or revision() and the record is missing: device_not_found / module_not_found (a
//     twin whose identity exists but that was never written: not_found);
//   - revision(n) and the stored revision differs: precondition_failed.
struct expect {
    enum class kind { any, absent, present, revision };
    kind k = kind::any;
    std::uint64_t rev = 0;

    static expect any() { return {}; }
    static expect absent() { return {kind::absent, 0}; }    // create-only
    static expect present() { return {kind::present, 0}; }  // update of an existing record, any revision
    static expect revision(std::uint64_t r) { return {kind::revision, r}; }
};

// Persistent MQTT session state of one client id (spec 5.3): the subscriptions of a clean-session 0
// client, restored on reconnect.
struct session_record {
    std::string client_id;                                      // "dev1" or "dev1/mod1"
    std::vector<std::pair<std::string, std::uint8_t>> subscriptions;  // topic filter, granted QoS
};

// One device-to-cloud message in the built-in endpoint log, partitioned by identity.
struct event_record {
    identity_key source;
    std::string body;
    std::vector<std::pair<std::string, std::string>> system_properties;
    std::vector<std::pair<std::string, std::string>> application_properties;
    std::int64_t enqueued_time_ns = 0;
    std::uint64_t sequence_number = 0;  // assigned by the store at commit, per partition
    // Set by the writer (hub_service: stream_base(endpoint) + partition_of(source, count)); the
    // store keeps one sequence per value, below max_event_streams.
    std::uint32_t partition = 0;
};

// How a C2D message asks for feedback (the `iothub-ack` property): positive = on completion,
// negative = on rejection, expiry or too many deliveries, full = both.
enum class c2d_ack : std::uint8_t { none = 0, positive = 1, negative = 2, full = 3 };

// One queued cloud-to-device message of one identity (device or module). Locks are not stored:
// they live in the service's memory, and a message locked at a crash is simply queued again.
struct c2d_message {
    std::uint64_t sequence_number = 0;  // assigned by the caller; unique, increasing, never reused
    identity_key target;
    std::string body;
    std::string message_id;
    std::string correlation_id;
    std::string user_id;
    std::string content_type;
    std::string content_encoding;
    std::int64_t enqueued_time_ns = 0;  // Unix epoch
    std::int64_t expiry_time_ns = 0;    // absolute, Unix epoch
    c2d_ack ack = c2d_ack::none;
    std::vector<std::pair<std::string, std::string>> application_properties;
    std::uint32_t delivery_count = 0;  // deliveries that ended without completion (abandon, lock expiry)

    friend bool operator==(const c2d_message&, const c2d_message&) = default;
};

// One record of the hub-wide feedback queue (spec iothub-amqp 3.2). status_code is one of
// Success, Expired, DeliveryCountExceeded, Rejected, Purged.
struct feedback_record {
    std::uint64_t sequence_number = 0;  // assigned by the caller; unique, increasing, never reused
    std::string original_message_id;
    std::string description;
    std::string device_generation_id;
    std::string device_id;
    std::string module_id;  // twinhub extension: empty for devices
    std::int64_t enqueued_time_ns = 0;  // when the outcome happened
    std::string status_code;

    friend bool operator==(const feedback_record&, const feedback_record&) = default;
};

// The durable C2D state, read once at start-up.
struct c2d_state {
    std::vector<c2d_message> messages;      // in sequence_number order
    std::vector<feedback_record> feedback;  // in sequence_number order
    // Greater than every sequence number ever written (also of messages since deleted).
    std::uint64_t next_message_sequence = 1;
    std::uint64_t next_feedback_sequence = 1;
};

class write_batch {
public:
    void put_policy(auth::shared_access_policy p);
    void delete_policy(std::string key_name);

    // Identity writes. delete_device also deletes the device's twin, its modules and their twins,
    // its session records and the C2D messages of the device and its modules; delete_module deletes
    // the module's twin, session and C2D messages.
    void put_device(registry::device_identity d, expect e = expect::any());
    void delete_device(std::string device_id, expect e = expect::present());
    void put_module(registry::module_identity m, expect e = expect::any());
    void delete_module(std::string device_id, std::string module_id, expect e = expect::present());

    // Twin writes; the identity must exist (in the store or earlier in this batch).
    void put_twin(identity_key id, twin::twin_document t, expect e = expect::any());
    // The same, sharing a document the caller keeps (hub_service's head and committed value).
    // `desired_patch` (only for a store whose is_shared() is true): the device-facing desired
    // patch this write makes (JSON with "$version"), carried to the other nodes' remote_listener.
    void put_twin(identity_key id, std::shared_ptr<const twin::twin_document> t, expect e = expect::any(),
                  std::string desired_patch = {});

    void put_session(session_record s);
    void delete_session(std::string client_id);

    void append_event(event_record e);
    // Retention: deletes up to max_rows of the oldest events of `partition` enqueued before
    // `before_ns`, never the partition's last event (its sequence number must survive a restart).
    void trim_events(std::uint32_t partition, std::int64_t before_ns, std::uint32_t max_rows);

    // Hub-wide settings (consumer groups, the endpoint's partition count, ...): a key and a JSON document.
    void put_setting(std::string key, std::string doc);
    void delete_setting(std::string key);

    // C2D queue writes. enqueue_c2d needs the target identity (device_not_found /
    // module_not_found otherwise); a sequence number already stored is storage_error. The others
    // are no-ops for a sequence number that is not stored (a purge or a device delete won).
    // With `assigned` (only for a store whose allocates_sequence_numbers() is true), the store
    // ignores m.sequence_number (and f.sequence_number for append_feedback) and allocates the next
    // number in the database, inside the commit; it writes the number to *assigned before the
    // batch's completion runs (several nodes on one database never collide).
    void enqueue_c2d(c2d_message m, std::shared_ptr<std::uint64_t> assigned = {});
    void update_c2d_delivery_count(std::uint64_t sequence_number, std::uint32_t delivery_count);
    void delete_c2d(std::uint64_t sequence_number);
    void append_feedback(feedback_record f, std::shared_ptr<std::uint64_t> assigned = {});
    void delete_feedback(std::uint64_t sequence_number);

    bool empty() const noexcept { return ops_.empty(); }
    std::size_t size() const noexcept { return ops_.size(); }

    struct put_policy_op { auth::shared_access_policy p; };
    struct delete_policy_op { std::string key_name; };
    struct put_device_op { registry::device_identity d; expect e; };
    struct delete_device_op { std::string device_id; expect e; };
    struct put_module_op { registry::module_identity m; expect e; };
    struct delete_module_op { std::string device_id, module_id; expect e; };
    struct put_twin_op { identity_key id; std::shared_ptr<const twin::twin_document> t; expect e; std::string desired_patch; };
    struct put_session_op { session_record s; };
    struct delete_session_op { std::string client_id; };
    struct append_event_op { event_record e; };
    struct trim_events_op { std::uint32_t partition; std::int64_t before_ns; std::uint32_t max_rows; };
    struct put_setting_op { std::string key, doc; };
    struct delete_setting_op { std::string key; };
    struct enqueue_c2d_op { c2d_message m; std::shared_ptr<std::uint64_t> assigned; };
    struct update_c2d_op { std::uint64_t seq; std::uint32_t delivery_count; };
    struct delete_c2d_op { std::uint64_t seq; };
    struct append_feedback_op { feedback_record f; std::shared_ptr<std::uint64_t> assigned; };
    struct delete_feedback_op { std::uint64_t seq; };
    using op = std::variant<put_policy_op, delete_policy_op, put_device_op, delete_device_op, put_module_op,
                            delete_module_op, put_twin_op, put_session_op, delete_session_op, append_event_op,
                            enqueue_c2d_op, update_c2d_op, delete_c2d_op, append_feedback_op, delete_feedback_op,
                            trim_events_op, put_setting_op, delete_setting_op>;

    const std::vector<op>& ops() const noexcept { return ops_; }
    // For backends: they fill in each append_event_op's sequence_number at commit,
    // so that the change listener sees them.
    std::vector<op>& ops() noexcept { return ops_; }

private:
    std::vector<op> ops_;
};

// An identity with its twin; `twin` is a default twin_document when the identity's twin was never
// written (the registry writes both in one batch).
struct device_record {
    registry::device_identity identity;
    twin::twin_document twin;
};

struct module_record {
    registry::module_identity identity;
    twin::twin_document twin;
};

// Everything the hub needs in memory at start-up.
struct snapshot {
    std::vector<auth::shared_access_policy> policies;
    std::vector<device_record> devices;
    std::vector<module_record> modules;
    std::vector<session_record> sessions;
    std::vector<std::pair<std::string, std::string>> settings;  // key, JSON document
};

using commit_handler = std::function<void(result<void>)>;

// A record change another node committed to a shared store, read back from the database's change
// feed (issue 18 item 2; docs/architecture.md "Several nodes"). The record's state is as of that
// commit; changes arrive in commit order (per twin: in version order), each once.
struct remote_change {
    enum class kind : std::uint8_t { twin, device, device_deleted, module, module_deleted, policies };
    kind k = kind::twin;
    identity_key id;
    std::optional<twin::twin_document> twin;             // kind::twin
    std::string desired_patch;                           // kind::twin: "" or the desired patch (JSON)
    std::optional<registry::device_identity> device;     // kind::device
    std::optional<registry::module_identity> module;     // kind::module
};
// Called on a store-owned thread with each batch of other nodes' changes, in commit order.
using remote_listener = std::function<void(std::vector<remote_change>&)>;

// Called after each committed batch, on the store's thread, before the batch's own completion
// handler. (With several nodes on one PostgreSQL, issue 18 item 2, it is to see the batches other
// nodes committed too; not yet.)
using change_listener = std::function<void(const write_batch&)>;

class store {
public:
    virtual ~store() = default;

    // Reads the whole durable state. Fails with storage_error or corrupt_data.
    virtual result<snapshot> load() = 0;

    // Only the shared access policies: cheap even for a large hub (tools that need a key use it).
    virtual result<std::vector<auth::shared_access_policy>> load_policies();

    // Queues `batch` for a group commit; `done` runs once, after the batch is durable or has failed.
    // After close(), completes at once with shutting_down.
    virtual void commit(write_batch batch, commit_handler done) = 0;

    // commit() and wait. Never call from a completion handler.
    result<void> commit_sync(write_batch batch);

    // Events of one partition with sequence_number >= from, at most max_count.
    virtual result<std::vector<event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                          std::size_t max_count) = 0;

    // The first and last event of one partition (begin > last when it is empty).
    struct partition_info {
        std::uint64_t begin_sequence_number = 0;
        std::int64_t last_sequence_number = -1;  // -1: empty
        std::int64_t last_enqueued_time_ns = 0;
    };
    virtual result<partition_info> event_partition_info(std::uint32_t partition) = 0;

    // The C2D queues and the feedback queue. Fails with storage_error or corrupt_data.
    virtual result<c2d_state> load_c2d() = 0;

    virtual void set_change_listener(change_listener l) = 0;

    // True when several hub nodes may share this store (PostgreSQL): event sequence numbers are
    // then allocated from counter rows inside each commit, and C2D and feedback writers pass
    // `assigned` (write_batch::enqueue_c2d) instead of numbering from memory. False (memory,
    // SQLite): the single-node paths, unchanged.
    virtual bool allocates_sequence_numbers() const noexcept { return false; }

    // True when other nodes may write this store too: it then records each committed record write
    // in a change feed in the same transaction, and passes other nodes' changes to the remote
    // listener (polled; set before serving). False (memory, SQLite): never called.
    virtual bool is_shared() const noexcept { return false; }
    virtual void set_remote_listener(remote_listener) {}
    // This node's name in the shared store's node table ("" when not shared).
    virtual std::string node_id() const { return {}; }

    // Finishes the queued commits, then stops accepting new ones. Idempotent.
    virtual void close() = 0;
};

// The completions of one committed group, run back to back on the store's thread. A backend that
// group-commits opens a completion_group around the loop that runs a group's completions; while it
// is open, completion_group::current() returns it on that thread (nullptr elsewhere, and while a
// completion runs inline in commit()). A completion may defer() work to run right after the last
// completion of the group, e.g. to apply a whole group's results under one lock acquisition.
// Deferred functions run in the order they were deferred, still on the store's thread and still
// before the next group's completions.
//
// Thread safety: one thread only (the one that opened it).
class completion_group {
public:
    completion_group() noexcept;
    ~completion_group();
    completion_group(const completion_group&) = delete;
    completion_group& operator=(const completion_group&) = delete;

    static completion_group* current() noexcept;
    void defer(std::function<void()> f);

private:
    completion_group* prev_;
    std::vector<std::function<void()>> deferred_;
};

// Partitions of the built-in endpoint: 4 unless the hub was created with another count (2-32, as
// Azure's tiers allow). An identity's partition is a stable hash of its key modulo the count.
inline constexpr std::uint32_t default_event_partitions = 4;
inline constexpr std::uint32_t min_event_partitions = 2;
inline constexpr std::uint32_t max_event_partitions = 32;
std::uint32_t partition_of(const identity_key& k, std::uint32_t partition_count) noexcept;
// The store keeps one sequence per event_record::partition value below this ("streams"): the built-in
// endpoint uses 0..count-1; custom Event Hubs endpoints use stream_base(endpoint index) + partition.
inline constexpr std::uint32_t max_event_streams = 4096;
inline constexpr std::uint32_t stream_base(std::uint32_t endpoint_index) noexcept { return endpoint_index * max_event_partitions; }

}  // namespace twinhub::store
