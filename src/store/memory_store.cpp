#include "store/memory_store.hpp"

#include "store/commit_queue.hpp"
#include "store/conditions.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace twinhub::store {
namespace {

struct module_entry {
    registry::module_identity identity;
    std::optional<twin::twin_document> twin;
};

struct device_entry {
    registry::device_identity identity;
    std::optional<twin::twin_document> twin;
    std::map<std::string, module_entry> modules;
};

struct state {
    std::map<std::string, auth::shared_access_policy> policies;
    std::map<std::string, device_entry> devices;
    std::map<std::string, session_record> sessions;
    struct event_log {
        std::deque<event_record> events;  // dense sequence numbers: index == seq - front's seq
        std::uint64_t next = 0;
    };
    std::map<std::uint32_t, event_log> events;
    std::map<std::string, std::string> settings;
    std::map<std::uint64_t, c2d_message> c2d;
    std::map<std::uint64_t, feedback_record> feedback;
    std::uint64_t next_c2d_seq = 1;       // above every sequence number ever stored
    std::uint64_t next_feedback_seq = 1;
};

// The device part of an MQTT client id ("dev" or "dev/mod"); device ids never contain '/'.
std::string device_of_client(const std::string& client_id) { return client_id.substr(0, client_id.find('/')); }

class memory_store final : public store {
public:
    memory_store() : writer_([this] { run(); }) {}
    ~memory_store() override { close(); }

    result<snapshot> load() override {
        std::lock_guard lock(state_m_);
        snapshot s;
        for (auto& [_, p] : st_.policies) s.policies.push_back(p);
        for (auto& [_, d] : st_.devices) {
            s.devices.push_back({d.identity, d.twin.value_or(twin::twin_document{})});
            for (auto& [_, m] : d.modules) s.modules.push_back({m.identity, m.twin.value_or(twin::twin_document{})});
        }
        for (auto& [_, x] : st_.sessions) s.sessions.push_back(x);
        for (auto& [k, v] : st_.settings) s.settings.emplace_back(k, v);
        return s;
    }

    void commit(write_batch batch, commit_handler done) override {
        pending p{std::move(batch), std::move(done)};
        if (!queue_.push(p)) p.done(error{errc::shutting_down, "The store is closed."});
    }

    result<std::vector<event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                  std::size_t max_count) override {
        if (partition >= max_event_streams)
            return error{errc::invalid_argument, "Partition " + std::to_string(partition) + " does not exist."};
        std::lock_guard lock(state_m_);
        std::vector<event_record> out;
        auto it = st_.events.find(partition);
        if (it == st_.events.end() || it->second.events.empty()) return out;
        auto& log = it->second.events;
        const auto first = log.front().sequence_number;
        for (auto i = std::max(from, first) - first; i < log.size() && out.size() < max_count; ++i) out.push_back(log[i]);
        return out;
    }

    result<partition_info> event_partition_info(std::uint32_t partition) override {
        if (partition >= max_event_streams)
            return error{errc::invalid_argument, "Partition " + std::to_string(partition) + " does not exist."};
        std::lock_guard lock(state_m_);
        partition_info i;
        auto it = st_.events.find(partition);
        if (it == st_.events.end()) return i;
        auto& log = it->second.events;
        i.begin_sequence_number = it->second.next;
        if (!log.empty()) {
            i.begin_sequence_number = log.front().sequence_number;
            i.last_sequence_number = static_cast<std::int64_t>(log.back().sequence_number);
            i.last_enqueued_time_ns = log.back().enqueued_time_ns;
        }
        return i;
    }

    result<c2d_state> load_c2d() override {
        std::lock_guard lock(state_m_);
        c2d_state out;
        for (auto& [_, m] : st_.c2d) out.messages.push_back(m);
        for (auto& [_, f] : st_.feedback) out.feedback.push_back(f);
        out.next_message_sequence = st_.next_c2d_seq;
        out.next_feedback_sequence = st_.next_feedback_seq;
        return out;
    }

    void set_change_listener(change_listener l) override {
        std::lock_guard lock(listener_m_);
        listener_ = std::move(l);
    }

    void close() override {
        queue_.close();
        std::lock_guard lock(close_m_);
        if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
    }

private:
    struct pending {
        write_batch batch;
        commit_handler done;
    };

    void run() {
        std::vector<pending> group;
        std::vector<result<void>> results;
        while (queue_.take(group, 1024)) {
            results.clear();
            {
                std::lock_guard lock(state_m_);
                for (auto& p : group) results.push_back(apply(p.batch));
            }
            complete_group(group, results, listener_m_, listener_);
        }
    }

    // Applies one batch under state_m_: all of it, or (undoing what it did) none of it.
    result<void> apply(write_batch& b) {
        std::vector<std::function<void()>> undo;
        auto r = apply_ops(b, undo);
        if (!r)
            for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
        return r;
    }

    template <class Map>
    void save(Map& m, const typename Map::key_type& k, std::vector<std::function<void()>>& undo) {
        auto it = m.find(k);
        std::optional<typename Map::mapped_type> prev;
        if (it != m.end()) prev = it->second;
        undo.push_back([&m, k, prev = std::move(prev)] {
            if (prev) m.insert_or_assign(k, *prev);
            else m.erase(k);
        });
    }

    result<void> apply_ops(write_batch& b, std::vector<std::function<void()>>& undo) {
        for (auto& o : b.ops()) {
            result<void> r = std::visit([&](auto& op) { return apply_op(op, undo); }, o);
            if (!r) return r;
        }
        return {};
    }

    result<void> apply_op(write_batch::put_policy_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.policies, op.p.key_name, undo);
        st_.policies.insert_or_assign(op.p.key_name, op.p);
        return {};
    }

    result<void> apply_op(write_batch::delete_policy_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.policies, op.key_name, undo);
        st_.policies.erase(op.key_name);
        return {};
    }

    result<void> apply_op(write_batch::put_device_op& op, std::vector<std::function<void()>>& undo) {
        auto it = st_.devices.find(op.d.device_id);
        std::optional<std::uint64_t> cur;
        if (it != st_.devices.end()) cur = it->second.identity.etag;
        if (auto r = check_condition(op.e, cur, device_kind(op.d.device_id)); !r) return r;
        if (it == st_.devices.end()) {
            undo.push_back([this, id = op.d.device_id] { st_.devices.erase(id); });
            st_.devices.emplace(op.d.device_id, device_entry{op.d, std::nullopt, {}});
        } else {
            undo.push_back([this, prev = it->second.identity] { st_.devices.at(prev.device_id).identity = prev; });
            it->second.identity = op.d;
        }
        return {};
    }

    result<void> apply_op(write_batch::delete_device_op& op, std::vector<std::function<void()>>& undo) {
        auto it = st_.devices.find(op.device_id);
        std::optional<std::uint64_t> cur;
        if (it != st_.devices.end()) cur = it->second.identity.etag;
        if (auto r = check_condition(op.e, cur, device_kind(op.device_id)); !r) return r;
        if (it != st_.devices.end()) {
            save(st_.devices, op.device_id, undo);
            st_.devices.erase(it);
        }
        erase_c2d_if([&](const identity_key& k) { return k.device_id == op.device_id; }, undo);
        for (auto s = st_.sessions.begin(); s != st_.sessions.end();) {
            if (device_of_client(s->first) == op.device_id) {
                undo.push_back([this, rec = s->second] { st_.sessions.insert_or_assign(rec.client_id, rec); });
                s = st_.sessions.erase(s);
            } else {
                ++s;
            }
        }
        return {};
    }

    result<void> apply_op(write_batch::put_module_op& op, std::vector<std::function<void()>>& undo) {
        auto d = st_.devices.find(op.m.device_id);
        if (d == st_.devices.end()) return error{errc::device_not_found, "Device '" + op.m.device_id + "' not found."};
        auto& mods = d->second.modules;
        auto it = mods.find(op.m.module_id);
        std::optional<std::uint64_t> cur;
        if (it != mods.end()) cur = it->second.identity.etag;
        if (auto r = check_condition(op.e, cur, module_kind(op.m.device_id, op.m.module_id)); !r) return r;
        if (it == mods.end()) {
            undo.push_back([this, d = op.m.device_id, m = op.m.module_id] { st_.devices.at(d).modules.erase(m); });
            mods.emplace(op.m.module_id, module_entry{op.m, std::nullopt});
        } else {
            undo.push_back([this, prev = it->second.identity] {
                st_.devices.at(prev.device_id).modules.at(prev.module_id).identity = prev;
            });
            it->second.identity = op.m;
        }
        return {};
    }

    result<void> apply_op(write_batch::delete_module_op& op, std::vector<std::function<void()>>& undo) {
        auto d = st_.devices.find(op.device_id);
        if (d == st_.devices.end()) {
            if (op.e.k == expect::kind::any) return {};
            return error{errc::device_not_found, "Device '" + op.device_id + "' not found."};
        }
        auto& mods = d->second.modules;
        auto it = mods.find(op.module_id);
        std::optional<std::uint64_t> cur;
        if (it != mods.end()) cur = it->second.identity.etag;
        if (auto r = check_condition(op.e, cur, module_kind(op.device_id, op.module_id)); !r) return r;
        if (it != mods.end()) {
            undo.push_back([this, d = op.device_id, prev = it->second] {
                st_.devices.at(d).modules.insert_or_assign(prev.identity.module_id, prev);
            });
            mods.erase(it);
        }
        std::string client = op.device_id + "/" + op.module_id;
        save(st_.sessions, client, undo);
        st_.sessions.erase(client);
        erase_c2d_if([&](const identity_key& k) { return k.device_id == op.device_id && k.module_id == op.module_id; },
                     undo);
        return {};
    }

    result<void> apply_op(write_batch::put_twin_op& op, std::vector<std::function<void()>>& undo) {
        auto d = st_.devices.find(op.id.device_id);
        if (d == st_.devices.end())
            return error{errc::device_not_found, "Device '" + op.id.device_id + "' not found."};
        std::optional<twin::twin_document>* slot = &d->second.twin;
        if (op.id.is_module()) {
            auto m = d->second.modules.find(op.id.module_id);
            if (m == d->second.modules.end())
                return error{errc::module_not_found,
                             "Module '" + op.id.module_id + "' on device '" + op.id.device_id + "' not found."};
            slot = &m->second.twin;
        }
        std::optional<std::uint64_t> cur;
        if (*slot) cur = static_cast<std::uint64_t>((*slot)->version);
        if (auto r = check_condition(op.e, cur, twin_kind(op.id)); !r) return r;
        // Undo finds the slot again by key: a later op of the batch may have erased and the undo
        // of that op re-created the entry.
        undo.push_back([this, id = op.id, prev = *slot] { twin_slot(id) = prev; });
        *slot = *op.t;
        return {};
    }

    result<void> apply_op(write_batch::put_session_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.sessions, op.s.client_id, undo);
        st_.sessions.insert_or_assign(op.s.client_id, op.s);
        return {};
    }

    result<void> apply_op(write_batch::delete_session_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.sessions, op.client_id, undo);
        st_.sessions.erase(op.client_id);
        return {};
    }

    result<void> apply_op(write_batch::append_event_op& op, std::vector<std::function<void()>>& undo) {
        if (op.e.partition >= max_event_streams)
            return error{errc::invalid_argument, "Partition " + std::to_string(op.e.partition) + " does not exist."};
        auto& log = st_.events[op.e.partition];
        op.e.sequence_number = log.next++;
        undo.push_back([&log] {
            log.events.pop_back();
            --log.next;
        });
        log.events.push_back(op.e);
        return {};
    }

    result<void> apply_op(write_batch::trim_events_op& op, std::vector<std::function<void()>>& undo) {
        auto it = st_.events.find(op.partition);
        if (it == st_.events.end()) return {};
        auto& log = it->second.events;
        for (std::uint32_t n = 0; n < op.max_rows && log.size() > 1 && log.front().enqueued_time_ns < op.before_ns; ++n) {
            undo.push_back([&log, e = log.front()] { log.push_front(e); });
            log.pop_front();
        }
        return {};
    }

    result<void> apply_op(write_batch::put_setting_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.settings, op.key, undo);
        st_.settings.insert_or_assign(op.key, op.doc);
        return {};
    }

    result<void> apply_op(write_batch::delete_setting_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.settings, op.key, undo);
        st_.settings.erase(op.key);
        return {};
    }

    template <class Pred>
    void erase_c2d_if(Pred pred, std::vector<std::function<void()>>& undo) {
        for (auto it = st_.c2d.begin(); it != st_.c2d.end();) {
            if (pred(it->second.target)) {
                undo.push_back([this, m = it->second] { st_.c2d.emplace(m.sequence_number, m); });
                it = st_.c2d.erase(it);
            } else {
                ++it;
            }
        }
    }

    result<void> apply_op(write_batch::enqueue_c2d_op& op, std::vector<std::function<void()>>& undo) {
        auto d = st_.devices.find(op.m.target.device_id);
        if (d == st_.devices.end())
            return error{errc::device_not_found, "Device '" + op.m.target.device_id + "' not found."};
        if (op.m.target.is_module() && !d->second.modules.contains(op.m.target.module_id))
            return error{errc::module_not_found, "Module '" + op.m.target.module_id + "' on device '" +
                                                     op.m.target.device_id + "' not found."};
        const auto seq = op.m.sequence_number;
        if (seq == 0 || st_.c2d.contains(seq))
            return error{errc::storage_error, "C2D message " + std::to_string(seq) + " is already stored."};
        undo.push_back([this, seq, prev = st_.next_c2d_seq] {
            st_.c2d.erase(seq);
            st_.next_c2d_seq = prev;
        });
        st_.c2d.emplace(seq, op.m);
        st_.next_c2d_seq = std::max(st_.next_c2d_seq, seq + 1);
        return {};
    }

    result<void> apply_op(write_batch::update_c2d_op& op, std::vector<std::function<void()>>& undo) {
        auto it = st_.c2d.find(op.seq);
        if (it == st_.c2d.end()) return {};
        undo.push_back([this, seq = op.seq, prev = it->second.delivery_count] { st_.c2d.at(seq).delivery_count = prev; });
        it->second.delivery_count = op.delivery_count;
        return {};
    }

    result<void> apply_op(write_batch::delete_c2d_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.c2d, op.seq, undo);
        st_.c2d.erase(op.seq);
        return {};
    }

    result<void> apply_op(write_batch::append_feedback_op& op, std::vector<std::function<void()>>& undo) {
        const auto seq = op.f.sequence_number;
        if (seq == 0 || st_.feedback.contains(seq))
            return error{errc::storage_error, "Feedback record " + std::to_string(seq) + " is already stored."};
        undo.push_back([this, seq, prev = st_.next_feedback_seq] {
            st_.feedback.erase(seq);
            st_.next_feedback_seq = prev;
        });
        st_.feedback.emplace(seq, op.f);
        st_.next_feedback_seq = std::max(st_.next_feedback_seq, seq + 1);
        return {};
    }

    result<void> apply_op(write_batch::delete_feedback_op& op, std::vector<std::function<void()>>& undo) {
        save(st_.feedback, op.seq, undo);
        st_.feedback.erase(op.seq);
        return {};
    }

    std::optional<twin::twin_document>& twin_slot(const identity_key& id) {
        auto& d = st_.devices.at(id.device_id);
        return id.is_module() ? d.modules.at(id.module_id).twin : d.twin;
    }

    std::mutex state_m_;
    state st_;
    std::mutex listener_m_;
    change_listener listener_;
    std::mutex close_m_;
    commit_queue<pending> queue_;
    std::thread writer_;  // last: starts after everything it uses exists
};

}  // namespace

std::unique_ptr<store> make_memory_store() { return std::make_unique<memory_store>(); }

}  // namespace twinhub::store
