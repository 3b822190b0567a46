#include "service/record_cache.hpp"

#include "common/log.hpp"
#include "service/twin_json.hpp"

#include <algorithm>

namespace twinhub::service {

std::string device_not_found_message(std::string_view id) { return "Device '" + std::string(id) + "' not found."; }
std::string module_not_found_message(std::string_view d, std::string_view m) {
    return "Module '" + std::string(m) + "' not found on device '" + std::string(d) + "'.";
}
std::string describe_key(const store::identity_key& k) {
    return k.is_module() ? k.device_id + "/" + k.module_id : k.device_id;
}

void record_cache::load(std::vector<store::device_record> ds, std::vector<store::module_record> ms) {
    for (auto& d : ds) {
        d.identity.connection_state = registry::connection_state::disconnected;
        device_entry& e = devices[d.identity.device_id];
        e.identity.committed = std::move(d.identity);
        e.twin.committed = std::make_shared<const twin::twin_document>(std::move(d.twin));
    }
    for (auto& m : ms) {
        auto it = devices.find(m.identity.device_id);
        if (it == devices.end()) {
            log::warn("service.load_orphan_module", {{"device", m.identity.device_id}, {"module", m.identity.module_id}});
            continue;
        }
        m.identity.connection_state = registry::connection_state::disconnected;
        module_entry& me = it->second.modules[m.identity.module_id];
        me.identity.committed = std::move(m.identity);
        me.twin.committed = std::make_shared<const twin::twin_document>(std::move(m.twin));
    }
}

const device_entry* record_cache::committed_device(std::string_view id) const {
    auto it = devices.find(id);
    if (it == devices.end() || !it->second.identity.committed) return nullptr;
    return &it->second;
}

const module_entry* record_cache::committed_module(const device_entry& d, std::string_view mid) {
    auto it = d.modules.find(mid);
    if (it == d.modules.end() || !it->second.identity.committed) return nullptr;
    return &it->second;
}

result<const twin::twin_document*> record_cache::committed_twin(const store::identity_key& id,
                                                                const device_entry*& dev) const {
    dev = committed_device(id.device_id);
    if (!dev) return error{errc::device_not_found, device_not_found_message(id.device_id)};
    if (!id.is_module()) return &*dev->twin.committed;
    const module_entry* m = committed_module(*dev, id.module_id);
    if (!m) return error{errc::module_not_found, module_not_found_message(id.device_id, id.module_id)};
    return &*m->twin.committed;
}

boost::json::object record_cache::twin_json_of(const device_entry& e, const store::identity_key& id) const {
    if (!id.is_module()) return service_twin_json(*e.identity.committed, *e.twin.committed);
    const module_entry& m = e.modules.find(id.module_id)->second;
    return service_twin_json(*m.identity.committed, *m.twin.committed);
}

result<boost::json::object> record_cache::twin_json(const store::identity_key& id) const {
    std::shared_lock lock(mu);
    const device_entry* e = nullptr;
    auto t = committed_twin(id, e);
    if (!t) return t.error();
    return twin_json_of(*e, id);
}

device_entry* record_cache::head_device(std::string_view id) {
    auto it = devices.find(id);
    if (it == devices.end() || !it->second.identity.view()) return nullptr;
    return &it->second;
}

module_entry* record_cache::head_module(device_entry& d, std::string_view mid) {
    auto it = d.modules.find(mid);
    if (it == d.modules.end() || !it->second.identity.view()) return nullptr;
    return &it->second;
}

std::size_t record_cache::head_module_count(const device_entry& d) {
    std::size_t n = 0;
    for (auto& [_, m] : d.modules)
        if (m.identity.view()) ++n;
    return n;
}

result<twin_slot*> record_cache::head_twin(const store::identity_key& id, device_entry*& dev) {
    dev = head_device(id.device_id);
    if (!dev) return error{errc::device_not_found, device_not_found_message(id.device_id)};
    if (!id.is_module()) return &dev->twin;
    module_entry* m = head_module(*dev, id.module_id);
    if (!m) return error{errc::module_not_found, module_not_found_message(id.device_id, id.module_id)};
    return &m->twin;
}

void record_cache::submit(write_pipeline& p, device_entry& e, const std::string& device_id, store::write_batch batch,
                          std::function<void(device_entry&)> apply, std::function<void(result<void>)> finish,
                          after_unlock& after) {
    // `e` stays in the table while the write is in flight (settle() runs only once none is).
    p.submit(
        e, device_id, std::move(batch),
        [this, &e, id = device_id, apply = std::move(apply)] {
            apply(e);
            notifier_.device_twins_changed(id, e.modules);
        },
        std::move(finish), after);
}

write_pipeline::entry_state* record_cache::entry(std::string_view key) {
    auto it = devices.find(key);
    return it == devices.end() ? nullptr : &it->second;
}

void record_cache::reset_heads(std::string_view, write_pipeline::entry_state& state) {
    auto& e = static_cast<device_entry&>(state);
    e.identity.head.reset();
    e.twin.head.reset();
    for (auto& [_, m] : e.modules) {
        m.identity.head.reset();
        m.twin.head.reset();
    }
}

// No write of the entry is in flight: heads equal committed; drop what no longer exists.
void record_cache::settle(std::string_view key, write_pipeline::entry_state& state) {
    auto& e = static_cast<device_entry&>(state);
    reset_heads(key, e);
    std::erase_if(e.modules, [](const auto& kv) { return !kv.second.identity.committed; });
    if (!e.identity.committed) devices.erase(devices.find(key));
}

}  // namespace twinhub::service
