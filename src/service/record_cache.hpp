// The versioned record cache: every identity and twin of the hub in memory, as readers see them
// (`committed`: durable and acknowledged) and as the next write sees them (`head`, set only while
// writes are in flight). The registry, twin and presence services share it; the write pipeline
// applies completed writes to it (record_cache is the pipeline's target).
//
// In-flight accounting is per device entry (the device, its twin, its modules and their twins): a
// module write may depend on its device's in-flight create, and a device delete cascades over its
// modules.
//
// Thread safety: `mu` guards everything here. Readers take it shared and look at committed state
// only; writers take it exclusively, build on head-or-committed and submit() through the pipeline.
#pragma once

#include "common/errc.hpp"
#include "registry/identity.hpp"
#include "service/change_notifier.hpp"
#include "service/handler.hpp"
#include "service/write_pipeline.hpp"
#include "store/store.hpp"
#include "twin/twin_document.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace twinhub::service {

// A record as readers see it (`committed`) and as the next write sees it (`head`, set only while
// writes are in flight; an inner nullopt means "deleted by an in-flight write").
// `H` holds one T or none: std::optional<T>, or for twins a shared immutable document, so that
// the head, the store batch and the committed value of a twin write are one document, not copies.
template <class T, class H = std::optional<T>>
struct slot {
    H committed;
    std::optional<H> head;

    const H& view() const { return head ? *head : committed; }
};

using shared_twin = std::shared_ptr<const twin::twin_document>;
using twin_slot = slot<twin::twin_document, shared_twin>;

struct module_entry {
    slot<registry::module_identity> identity;
    twin_slot twin;
};

// The write accounting (in_flight, epoch) is the base: the pipeline hands it back to the cache.
struct device_entry : write_pipeline::entry_state {
    slot<registry::device_identity> identity;
    twin_slot twin;
    std::map<std::string, module_entry, std::less<>> modules;
};

using device_map = std::map<std::string, device_entry, std::less<>>;

// The devices in id order (listings and queries walk them sorted), with a hash index beside the
// ordered map for lookups by id: a lookup is a hash and one compare instead of a walk down the tree
// (17 string compares at 100,000 devices, each a likely cache miss). The map's nodes never move,
// so the index holds its iterators; erase() keeps the two in step.
class device_table {
public:
    using iterator = device_map::iterator;
    using const_iterator = device_map::const_iterator;

    iterator begin() { return map_.begin(); }
    iterator end() { return map_.end(); }
    const_iterator begin() const { return map_.begin(); }
    const_iterator end() const { return map_.end(); }
    std::size_t size() const { return map_.size(); }

    iterator find(std::string_view id) {
        auto i = index_.find(id);
        return i == index_.end() ? map_.end() : i->second;
    }
    const_iterator find(std::string_view id) const {
        auto i = index_.find(id);
        return i == index_.end() ? map_.end() : const_iterator(i->second);
    }
    device_entry& operator[](const std::string& id) {
        auto [it, added] = map_.try_emplace(id);
        if (added) index_.emplace(std::string_view(it->first), it);
        return it->second;
    }
    void erase(iterator it) {
        index_.erase(std::string_view(it->first));
        map_.erase(it);
    }

private:
    device_map map_;
    std::unordered_map<std::string_view, iterator> index_;
};

std::string device_not_found_message(std::string_view id);
std::string module_not_found_message(std::string_view device_id, std::string_view module_id);
std::string describe_key(const store::identity_key& k);

template <class T>
void fail(after_unlock& after, const handler<T>& done, error err) {
    after.add([done, err = std::move(err)] { done(err); });
}

class record_cache final : public write_pipeline::target {
public:
    explicit record_cache(const change_notifier& n) : notifier_(n) {}

    mutable std::shared_mutex mu;
    device_table devices;

    // Fills the cache from the store's snapshot (every identity Disconnected). Before serving.
    void load(std::vector<store::device_record> devices, std::vector<store::module_record> modules);

    // Readers (mu shared or exclusive): committed state only; nullptr when absent.
    const device_entry* committed_device(std::string_view id) const;
    static const module_entry* committed_module(const device_entry& d, std::string_view module_id);
    // The committed twin of `id`, with its device entry in `dev`; device_not_found, module_not_found.
    result<const twin::twin_document*> committed_twin(const store::identity_key& id, const device_entry*& dev) const;
    // The service twin JSON of `id`, which must be committed in `e`.
    boost::json::object twin_json_of(const device_entry& e, const store::identity_key& id) const;
    // Takes mu shared: the service twin JSON of `id`.
    result<boost::json::object> twin_json(const store::identity_key& id) const;

    // Writers (mu exclusive): head-or-committed; nullptr when absent.
    device_entry* head_device(std::string_view id);
    static module_entry* head_module(device_entry& d, std::string_view module_id);
    static std::size_t head_module_count(const device_entry& d);
    // The twin slot a write to `id` builds on, or the error for a missing identity.
    result<twin_slot*> head_twin(const store::identity_key& id, device_entry*& dev);
    static twin_slot& twin_slot_of(device_entry& e, const store::identity_key& id) {
        return id.is_module() ? e.modules[id.module_id].twin : e.twin;
    }

    // mu exclusive, e = devices[device_id]: commits `batch` through `p`; on success `apply` runs
    // under mu and the entry's twins are reported changed (change_observer::on_twin_changed).
    void submit(write_pipeline& p, device_entry& e, const std::string& device_id, store::write_batch batch,
                std::function<void(device_entry&)> apply, std::function<void(result<void>)> finish,
                after_unlock& after);

    // mu exclusive: the presence or model id of one identity changed.
    void twin_changed(const store::identity_key& id) const { notifier_.twin_changed(id); }

    // write_pipeline::target
    write_pipeline::entry_state* entry(std::string_view key) override;
    void reset_heads(std::string_view key, write_pipeline::entry_state& e) override;
    void settle(std::string_view key, write_pipeline::entry_state& e) override;

private:
    const change_notifier& notifier_;
};

}  // namespace twinhub::service
