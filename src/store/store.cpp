// write_batch builders, commit_sync and the event partition hash shared by every backend.
#include "store/store.hpp"

#include <future>

namespace twinhub::store {

void write_batch::put_policy(auth::shared_access_policy p) { ops_.emplace_back(put_policy_op{std::move(p)}); }

void write_batch::delete_policy(std::string key_name) { ops_.emplace_back(delete_policy_op{std::move(key_name)}); }

void write_batch::put_device(registry::device_identity d, expect e) { ops_.emplace_back(put_device_op{std::move(d), e}); }

void write_batch::delete_device(std::string device_id, expect e) {
    ops_.emplace_back(delete_device_op{std::move(device_id), e});
}

void write_batch::put_module(registry::module_identity m, expect e) { ops_.emplace_back(put_module_op{std::move(m), e}); }

void write_batch::delete_module(std::string device_id, std::string module_id, expect e) {
    ops_.emplace_back(delete_module_op{std::move(device_id), std::move(module_id), e});
}

void write_batch::put_twin(identity_key id, twin::twin_document t, expect e) {
    ops_.emplace_back(put_twin_op{std::move(id), std::make_shared<const twin::twin_document>(std::move(t)), e, {}});
}

void write_batch::put_twin(identity_key id, std::shared_ptr<const twin::twin_document> t, expect e,
                          std::string desired_patch) {
    ops_.emplace_back(put_twin_op{std::move(id), std::move(t), e, std::move(desired_patch)});
}

void write_batch::put_session(session_record s) { ops_.emplace_back(put_session_op{std::move(s)}); }

void write_batch::delete_session(std::string client_id) { ops_.emplace_back(delete_session_op{std::move(client_id)}); }

void write_batch::append_event(event_record e) { ops_.emplace_back(append_event_op{std::move(e)}); }

void write_batch::trim_events(std::uint32_t partition, std::int64_t before_ns, std::uint32_t max_rows) {
    ops_.emplace_back(trim_events_op{partition, before_ns, max_rows});
}

void write_batch::put_setting(std::string key, std::string doc) { ops_.emplace_back(put_setting_op{std::move(key), std::move(doc)}); }

void write_batch::delete_setting(std::string key) { ops_.emplace_back(delete_setting_op{std::move(key)}); }

void write_batch::enqueue_c2d(c2d_message m, std::shared_ptr<std::uint64_t> assigned) {
    ops_.emplace_back(enqueue_c2d_op{std::move(m), std::move(assigned)});
}

void write_batch::update_c2d_delivery_count(std::uint64_t seq, std::uint32_t delivery_count) {
    ops_.emplace_back(update_c2d_op{seq, delivery_count});
}

void write_batch::delete_c2d(std::uint64_t seq) { ops_.emplace_back(delete_c2d_op{seq}); }

void write_batch::append_feedback(feedback_record f, std::shared_ptr<std::uint64_t> assigned) {
    ops_.emplace_back(append_feedback_op{std::move(f), std::move(assigned)});
}

void write_batch::delete_feedback(std::uint64_t seq) { ops_.emplace_back(delete_feedback_op{seq}); }

namespace {
thread_local completion_group* tl_completion_group = nullptr;
}

completion_group::completion_group() noexcept : prev_(tl_completion_group) { tl_completion_group = this; }

completion_group::~completion_group() {
    // Deferred work may defer more (run it too); it runs outside the group: current() is the outer one.
    tl_completion_group = prev_;
    for (std::size_t i = 0; i < deferred_.size(); ++i) {
        auto f = std::move(deferred_[i]);
        f();
    }
}

completion_group* completion_group::current() noexcept { return tl_completion_group; }

void completion_group::defer(std::function<void()> f) { deferred_.push_back(std::move(f)); }

result<void> store::commit_sync(write_batch batch) {
    std::promise<result<void>> p;
    auto f = p.get_future();
    commit(std::move(batch), [&p](result<void> r) { p.set_value(std::move(r)); });
    return f.get();
}

std::uint32_t partition_of(const identity_key& k, std::uint32_t partition_count) noexcept {
    // FNV-1a: stable across processes and builds, unlike std::hash, because partitions are durable.
    std::uint32_t h = 2166136261u;
    auto mix = [&h](unsigned char c) {
        h ^= c;
        h *= 16777619u;
    };
    for (unsigned char c : k.device_id) mix(c);
    mix('/');
    for (unsigned char c : k.module_id) mix(c);
    return partition_count == 0 ? 0 : h % partition_count;
}

result<std::vector<auth::shared_access_policy>> store::load_policies() {
    auto s = load();
    if (!s) return s.error();
    return std::move(s->policies);
}

}  // namespace twinhub::store
