// The registry service: device and module CRUD over the record cache (bulk: registry_bulk.cpp).
#include "service/registry_service.hpp"

#include "common/encoding.hpp"
#include "common/time.hpp"
#include "service/change_notifier.hpp"
#include "service/event_log.hpp"
#include "service/record_cache.hpp"
#include "service/session_service.hpp"

#include <algorithm>
#include <mutex>

namespace twinhub::service {
namespace {

using registry::device_identity;
using registry::module_identity;
using twin::twin_document;

// Fills empty symmetric keys of a sas identity: new ones (create, and update as on IoT Hub), or from
// `stored` when `keep` (registry_options::keep_keys_on_empty_update).
void fill_keys(registry::authentication_mechanism& a, const registry::authentication_mechanism* stored, bool keep) {
    if (a.type != registry::auth_type::sas) return;
    const bool can_keep = keep && stored && stored->type == registry::auth_type::sas;
    auto& k = a.symmetric_key;
    if (k.primary_key.empty())
        k.primary_key = can_keep && !stored->symmetric_key.primary_key.empty() ? stored->symmetric_key.primary_key
                                                                                : generate_key();
    if (k.secondary_key.empty())
        k.secondary_key = can_keep && !stored->symmetric_key.secondary_key.empty()
                              ? stored->symmetric_key.secondary_key
                              : generate_key();
}

// What a connection authenticated with: a change means its token must be checked again.
bool same_authentication(const registry::authentication_mechanism& a, const registry::authentication_mechanism& b) {
    return a.type == b.type && a.symmetric_key.primary_key == b.symmetric_key.primary_key &&
           a.symmetric_key.secondary_key == b.symmetric_key.secondary_key &&
           a.x509_thumbprint.primary_thumbprint == b.x509_thumbprint.primary_thumbprint &&
           a.x509_thumbprint.secondary_thumbprint == b.x509_thumbprint.secondary_thumbprint;
}

// Presence lives in memory (presence_service.hpp): a committed write keeps the current values.
void keep_presence(device_identity& into, const device_identity& from) {
    into.connection_state = from.connection_state;
    into.connection_state_updated_time = from.connection_state_updated_time;
    into.last_activity_time = from.last_activity_time;
}
void keep_presence(module_identity& into, const module_identity& from) {
    into.connection_state = from.connection_state;
    into.connection_state_updated_time = from.connection_state_updated_time;
    into.last_activity_time = from.last_activity_time;
}

}  // namespace

void registry_service::do_create_device(device_identity req, handler<device_identity> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    if (auto v = registry::validate_id(req.device_id, "deviceId"); !v) return fail(after, done, v.error());
    if (cache_.head_device(req.device_id))
        return fail(after, done,
                    error{errc::device_already_exists, "Device '" + req.device_id + "' already exists."});

    const time_point t = now();
    device_identity d = std::move(req);
    d.generation_id = registry::new_generation_id();
    d.etag = 0;
    d.connection_state = registry::connection_state::disconnected;
    d.connection_state_updated_time.reset();
    d.last_activity_time.reset();
    d.status_updated_time.reset();
    d.cloud_to_device_message_count = 0;
    fill_keys(d.authentication, nullptr, false);
    if (d.iot_edge) d.device_scope = "ms-azure-iot-edge://" + d.device_id + "-" + d.generation_id;
    auto tw = std::make_shared<const twin_document>(twin::new_twin(t));

    device_entry& e = cache_.devices[d.device_id];
    e.identity.head = d;
    e.twin.head = tw;

    store::write_batch b;
    b.put_device(d, store::expect::absent());
    b.put_twin({d.device_id, {}}, tw, store::expect::any());

    auto apply = [d, tw](device_entry& e) {
        e.identity.committed = d;
        e.twin.committed = tw;
    };
    auto finish = [d, done](result<void> r) {
        if (!r) return done(r.error());
        done(d);
    };
    cache_.submit(pipeline_, e, d.device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void registry_service::update_device(device_identity req, std::string if_match, handler<device_identity> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    device_entry* e = cache_.head_device(req.device_id);
    if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(req.device_id)});
    const device_identity& cur = *e->identity.view();
    const std::string cur_etag = registry::etag_to_string(cur.etag);
    if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
        return fail(after, done,
                    error{errc::precondition_failed, "Precondition failed: the etag of device '" + cur.device_id +
                                                         "' is \"" + cur_etag + "\", If-Match was " +
                                                         if_match + "."});
    if (!req.generation_id.empty() && req.generation_id != cur.generation_id)
        return fail(after, done, error{errc::invalid_argument, "generationId of device '" + cur.device_id +
                                                                   "' cannot be changed."});
    if (req.device_scope && !req.device_scope->empty() && cur.device_scope && !cur.device_scope->empty() &&
        *req.device_scope != *cur.device_scope)
        return fail(after, done, error{errc::invalid_argument, "deviceScope of device '" + cur.device_id +
                                                                   "' cannot be changed."});

    device_identity d = std::move(req);
    d.device_id = cur.device_id;
    d.generation_id = cur.generation_id;
    d.etag = cur.etag + 1;
    keep_presence(d, cur);
    d.cloud_to_device_message_count = cur.cloud_to_device_message_count;
    d.status_updated_time = d.status != cur.status ? std::optional<time_point>(now()) : cur.status_updated_time;
    if (!d.device_scope || d.device_scope->empty()) d.device_scope = cur.device_scope;
    if (d.parent_scopes.empty()) d.parent_scopes = cur.parent_scopes;
    fill_keys(d.authentication, &cur.authentication, opts_.keep_keys_on_empty_update);

    std::vector<store::identity_key> revoked;
    if (cur.status == registry::device_status::enabled && d.status == registry::device_status::disabled) {
        revoked.push_back({d.device_id, {}});
        for (auto& [mid, m] : e->modules)
            if (m.identity.view()) revoked.push_back({d.device_id, mid});
    }
    const bool credentials_changed = !same_authentication(cur.authentication, d.authentication);
    const std::uint64_t base = cur.etag;
    e->identity.head = d;

    store::write_batch b;
    b.put_device(d, store::expect::revision(base));
    auto apply = [d](device_entry& e) {
        device_identity v = d;
        if (e.identity.committed) keep_presence(v, *e.identity.committed);
        e.identity.committed = std::move(v);
    };
    auto finish = [this, d, done, revoked = std::move(revoked), credentials_changed](result<void> r) {
        if (!r) return done(r.error());
        notifier_.identities_revoked(revoked);
        if (credentials_changed) notifier_.credentials_changed({d.device_id, {}});
        done(d);
    };
    cache_.submit(pipeline_, *e, d.device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void registry_service::do_delete_device(std::string device_id, std::string if_match, handler<void> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    device_entry* e = cache_.head_device(device_id);
    if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(device_id)});
    const device_identity& cur = *e->identity.view();
    const std::string cur_etag = registry::etag_to_string(cur.etag);
    if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
        return fail(after, done,
                    error{errc::precondition_failed, "Precondition failed: the etag of device '" + device_id +
                                                         "' is \"" + cur_etag + "\", If-Match was " +
                                                         if_match + "."});
    std::vector<store::identity_key> revoked{{device_id, {}}};
    for (auto& [mid, m] : e->modules) {
        if (m.identity.view()) revoked.push_back({device_id, mid});
        m.identity.head = std::optional<module_identity>();
        m.twin.head = shared_twin();
    }
    const std::uint64_t base = cur.etag;
    e->identity.head = std::optional<device_identity>();
    e->twin.head = shared_twin();

    store::write_batch b;
    b.delete_device(device_id, store::expect::revision(base));
    auto apply = [this, device_id](device_entry& e) {
        e.identity.committed.reset();
        e.twin.committed.reset();
        for (auto& [_, m] : e.modules) {
            m.identity.committed.reset();
            m.twin.committed.reset();
        }
        sessions_.drop_sessions_of(device_id, {});
    };
    auto finish = [this, done, revoked = std::move(revoked)](result<void> r) {
        if (!r) return done(r.error());
        notifier_.identities_revoked(revoked);
        done({});
    };
    cache_.submit(pipeline_, *e, device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void registry_service::do_create_module(module_identity req, handler<module_identity> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    if (auto v = registry::validate_id(req.device_id, "deviceId"); !v) return fail(after, done, v.error());
    if (auto v = registry::validate_id(req.module_id, "moduleId"); !v) return fail(after, done, v.error());
    device_entry* e = cache_.head_device(req.device_id);
    if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(req.device_id)});
    if (record_cache::head_module(*e, req.module_id))
        return fail(after, done, error{errc::module_already_exists, "Module '" + req.module_id +
                                                                        "' already exists on device '" +
                                                                        req.device_id + "'."});
    if (record_cache::head_module_count(*e) >= opts_.max_modules_per_device)
        return fail(after, done, error{errc::too_many_modules,
                                       "Device '" + req.device_id + "' already has the maximum of " +
                                           std::to_string(opts_.max_modules_per_device) + " modules."});

    module_identity m = std::move(req);
    m.generation_id = registry::new_generation_id();
    m.etag = 0;
    m.connection_state = registry::connection_state::disconnected;
    m.connection_state_updated_time.reset();
    m.last_activity_time.reset();
    m.cloud_to_device_message_count = 0;
    fill_keys(m.authentication, nullptr, false);
    auto tw = std::make_shared<const twin_document>(twin::new_twin(now()));

    module_entry& me = e->modules[m.module_id];
    me.identity.head = m;
    me.twin.head = tw;

    store::write_batch b;
    b.put_module(m, store::expect::absent());
    b.put_twin({m.device_id, m.module_id}, tw, store::expect::any());
    auto apply = [m, tw](device_entry& e) {
        module_entry& me = e.modules[m.module_id];
        me.identity.committed = m;
        me.twin.committed = tw;
    };
    auto finish = [m, done](result<void> r) {
        if (!r) return done(r.error());
        done(m);
    };
    cache_.submit(pipeline_, *e, m.device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void registry_service::update_module(module_identity req, std::string if_match, handler<module_identity> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    device_entry* e = cache_.head_device(req.device_id);
    if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(req.device_id)});
    module_entry* me = record_cache::head_module(*e, req.module_id);
    if (!me)
        return fail(after, done,
                    error{errc::module_not_found, module_not_found_message(req.device_id, req.module_id)});
    const module_identity& cur = *me->identity.view();
    const std::string cur_etag = registry::etag_to_string(cur.etag);
    if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
        return fail(after, done,
                    error{errc::precondition_failed, "Precondition failed: the etag of module '" + cur.module_id +
                                                         "' is \"" + cur_etag + "\", If-Match was " +
                                                         if_match + "."});
    if (!req.generation_id.empty() && req.generation_id != cur.generation_id)
        return fail(after, done, error{errc::invalid_argument, "generationId of module '" + cur.module_id +
                                                                   "' cannot be changed."});

    module_identity m = std::move(req);
    m.device_id = cur.device_id;
    m.module_id = cur.module_id;
    m.generation_id = cur.generation_id;
    m.etag = cur.etag + 1;
    keep_presence(m, cur);
    m.cloud_to_device_message_count = cur.cloud_to_device_message_count;
    fill_keys(m.authentication, &cur.authentication, opts_.keep_keys_on_empty_update);
    const bool credentials_changed = !same_authentication(cur.authentication, m.authentication);
    const std::uint64_t base = cur.etag;
    me->identity.head = m;

    store::write_batch b;
    b.put_module(m, store::expect::revision(base));
    auto apply = [m](device_entry& e) {
        module_entry& me = e.modules[m.module_id];
        module_identity v = m;
        if (me.identity.committed) keep_presence(v, *me.identity.committed);
        me.identity.committed = std::move(v);
    };
    auto finish = [this, m, done, credentials_changed](result<void> r) {
        if (!r) return done(r.error());
        if (credentials_changed) notifier_.credentials_changed({m.device_id, m.module_id});
        done(m);
    };
    cache_.submit(pipeline_, *e, m.device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void registry_service::do_delete_module(std::string device_id, std::string module_id, std::string if_match, handler<void> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    device_entry* e = cache_.head_device(device_id);
    if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(device_id)});
    module_entry* me = record_cache::head_module(*e, module_id);
    if (!me) return fail(after, done, error{errc::module_not_found, module_not_found_message(device_id, module_id)});
    const module_identity& cur = *me->identity.view();
    const std::string cur_etag = registry::etag_to_string(cur.etag);
    if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
        return fail(after, done,
                    error{errc::precondition_failed, "Precondition failed: the etag of module '" + module_id +
                                                         "' is \"" + cur_etag + "\", If-Match was " +
                                                         if_match + "."});
    const std::uint64_t base = cur.etag;
    me->identity.head = std::optional<module_identity>();
    me->twin.head = shared_twin();

    store::write_batch b;
    b.delete_module(device_id, module_id, store::expect::revision(base));
    auto apply = [this, device_id, module_id](device_entry& e) {
        module_entry& me = e.modules[module_id];
        me.identity.committed.reset();
        me.twin.committed.reset();
        sessions_.drop_sessions_of(device_id, module_id);
    };
    auto finish = [this, done, key = store::identity_key{device_id, module_id}](result<void> r) {
        if (!r) return done(r.error());
        notifier_.identities_revoked({key});
        done({});
    };
    cache_.submit(pipeline_, *e, device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void registry_service::create_device(registry::device_identity req, handler<registry::device_identity> done) {
    if (auto* r = events_.router(); r && r->wants_lifecycle()) {
        done = [this, r, done = std::move(done)](result<registry::device_identity> d) {
            if (d) {
                store::identity_key id{d->device_id, {}};
                if (auto t = cache_.twin_json(id)) r->on_lifecycle(id, "createDeviceIdentity", std::move(*t));
            }
            done(std::move(d));
        };
    }
    do_create_device(std::move(req), std::move(done));
}

result<registry::device_identity> registry_service::get_device(std::string_view device_id) const {
    std::shared_lock lock(cache_.mu);
    const device_entry* e = cache_.committed_device(device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(device_id)};
    return *e->identity.committed;
}

std::vector<registry::device_identity> registry_service::list_devices(std::size_t top) const {
    const std::size_t limit = top == 0 ? opts_.max_list : std::min(top, opts_.max_list);
    std::shared_lock lock(cache_.mu);
    std::vector<registry::device_identity> out;
    for (auto& [_, e] : cache_.devices) {
        if (out.size() >= limit) break;
        if (e.identity.committed) out.push_back(*e.identity.committed);
    }
    return out;
}

void registry_service::delete_device(std::string device_id, std::string if_match, handler<void> done) {
    if (auto* r = events_.router(); r && r->wants_lifecycle()) {
        store::identity_key id{device_id, {}};
        if (auto t = cache_.twin_json(id)) {
            done = [r, id, twin = std::move(*t), done = std::move(done)](result<void> res) mutable {
                if (res) r->on_lifecycle(id, "deleteDeviceIdentity", std::move(twin));
                done(std::move(res));
            };
        }
    }
    do_delete_device(std::move(device_id), std::move(if_match), std::move(done));
}

registry_statistics registry_service::statistics() const {
    std::shared_lock lock(cache_.mu);
    registry_statistics s;
    for (auto& [_, e] : cache_.devices) {
        if (!e.identity.committed) continue;
        ++s.total_device_count;
        if (e.identity.committed->status == registry::device_status::enabled)
            ++s.enabled_device_count;
        else
            ++s.disabled_device_count;
    }
    return s;
}

void registry_service::create_module(registry::module_identity req, handler<registry::module_identity> done) {
    if (auto* r = events_.router(); r && r->wants_lifecycle()) {
        done = [this, r, done = std::move(done)](result<registry::module_identity> m) {
            if (m) {
                store::identity_key id{m->device_id, m->module_id};
                if (auto t = cache_.twin_json(id)) r->on_lifecycle(id, "createModuleIdentity", std::move(*t));
            }
            done(std::move(m));
        };
    }
    do_create_module(std::move(req), std::move(done));
}

result<registry::module_identity> registry_service::get_module(std::string_view device_id,
                                                          std::string_view module_id) const {
    std::shared_lock lock(cache_.mu);
    const device_entry* e = cache_.committed_device(device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(device_id)};
    const module_entry* m = record_cache::committed_module(*e, module_id);
    if (!m) return error{errc::module_not_found, module_not_found_message(device_id, module_id)};
    return *m->identity.committed;
}

result<std::vector<registry::module_identity>> registry_service::list_modules(std::string_view device_id) const {
    std::shared_lock lock(cache_.mu);
    const device_entry* e = cache_.committed_device(device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(device_id)};
    std::vector<registry::module_identity> out;
    for (auto& [_, m] : e->modules)
        if (m.identity.committed) out.push_back(*m.identity.committed);
    return out;
}

void registry_service::delete_module(std::string device_id, std::string module_id, std::string if_match,
                                handler<void> done) {
    if (auto* r = events_.router(); r && r->wants_lifecycle()) {
        store::identity_key id{device_id, module_id};
        if (auto t = cache_.twin_json(id)) {
            done = [r, id, twin = std::move(*t), done = std::move(done)](result<void> res) mutable {
                if (res) r->on_lifecycle(id, "deleteModuleIdentity", std::move(twin));
                done(std::move(res));
            };
        }
    }
    do_delete_module(std::move(device_id), std::move(module_id), std::move(if_match), std::move(done));
}

}  // namespace twinhub::service
