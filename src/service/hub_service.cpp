// hub_service: the composition of the domain services (see hub_service.hpp) and open(), which
// loads the snapshot and records the hub's first-start state (default policies, the built-in
// endpoint's shape). Every other member forwards to one service.
#include "service/hub_service.hpp"

#include "common/log.hpp"
#include "common/time.hpp"
#include "service/metrics.hpp"
#include "service/policy_service.hpp"
#include "service/record_cache.hpp"
#include "service/remote_changes.hpp"
#include "service/session_service.hpp"
#include "service/settings_service.hpp"
#include "service/twin_service.hpp"
#include "service/write_pipeline.hpp"
#include "store/cluster_link.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace twinhub::service {

namespace {
// Counts a successful completion in `c` (and `quota` messages against the daily quota).
template <class T>
handler<T> counted(counter& c, std::uint64_t quota, handler<T> done) {
    return [&c, quota, done = std::move(done)](result<T> r) {
        if (r) {
            c.inc();
            metrics().quota_messages.inc(quota);
        }
        done(std::move(r));
    };
}
}  // namespace

// Declared in dependency order: destroyed in reverse, the services before the pipeline they use.
struct hub_service::impl {
    impl(store::store& s, const hub_options& o, std::uint32_t partitions, std::int64_t created_ns)
        : st(s),
          cache(notifier),
          pipeline(s, cache.mu, cache),
          sessions(pipeline),
          settings(pipeline),
          policies(pipeline, notifier),
          events(pipeline, notifier, partitions, created_ns),
          registry(cache, pipeline, notifier, sessions, events, o),
          twins(cache, pipeline, notifier, events),
          presence(cache) {}

    store::store& st;
    change_notifier notifier;
    record_cache cache;
    write_pipeline pipeline;
    session_service sessions;
    settings_service settings;
    policy_service policies;
    event_log events;
    registry_service registry;
    twin_service twins;
    presence_service presence;
};

hub_service::hub_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
hub_service::~hub_service() {
    // Waits for a feed delivery that is running (store.hpp: set_remote_listener).
    if (impl_->st.is_shared()) impl_->st.set_remote_listener({});
    if (auto* link = dynamic_cast<store::cluster_link*>(&impl_->st)) {
        link->set_presence_handler({});
        link->set_events_handler({});
    }
    impl_->pipeline.wait_idle();
}

result<std::unique_ptr<hub_service>> hub_service::open(store::store& s, hub_options opts) {
    auto snap = s.load();
    if (!snap) return snap.error();
    if (snap->policies.empty()) {
        auto defaults = auth::default_policies();
        store::write_batch b;
        for (auto& p : defaults) b.put_policy(p);
        if (auto r = s.commit_sync(std::move(b)); !r) return r.error();
        snap->policies = std::move(defaults);
        log::info("service.default_policies_created", {{"count", snap->policies.size()}});
    }
    // The built-in endpoint's shape, recorded when the hub is created.
    std::uint32_t partitions = opts.event_partitions ? opts.event_partitions : store::default_event_partitions;
    std::int64_t created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
    if (partitions < store::min_event_partitions || partitions > store::max_event_partitions)
        return error{errc::invalid_argument, "The number of device-to-cloud partitions must be between " +
                                                 std::to_string(store::min_event_partitions) + " and " +
                                                 std::to_string(store::max_event_partitions) + " (got " + std::to_string(partitions) + ")."};
    auto stored = std::find_if(snap->settings.begin(), snap->settings.end(), [](auto& kv) { return kv.first == "eventHub"; });
    if (stored != snap->settings.end()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(stored->second, ec);
        const auto* o = ec ? nullptr : v.if_object();
        const auto* n = o ? o->if_contains("partitions") : nullptr;
        const auto* c = o ? o->if_contains("createdTimeNs") : nullptr;
        if (!n || !n->is_int64() || n->as_int64() < store::min_event_partitions || n->as_int64() > store::max_event_partitions)
            return error{errc::corrupt_data, "The stored setting 'eventHub' is malformed."};
        const auto recorded = static_cast<std::uint32_t>(n->as_int64());
        if (opts.event_partitions && opts.event_partitions != recorded)
            return error{errc::invalid_argument, "This hub was created with " + std::to_string(recorded) +
                                                     " device-to-cloud partitions; the count is fixed at creation (asked for " +
                                                     std::to_string(opts.event_partitions) + ")."};
        partitions = recorded;
        if (c && c->is_int64()) created_ns = c->as_int64();
    } else {
        boost::json::object o{{"partitions", partitions}, {"createdTimeNs", created_ns}};
        store::write_batch b;
        b.put_setting("eventHub", boost::json::serialize(o));
        if (auto r = s.commit_sync(std::move(b)); !r) return r.error();
        snap->settings.emplace_back("eventHub", boost::json::serialize(o));
    }
    auto p = std::make_unique<impl>(s, opts, partitions, created_ns);
    p->settings.load(std::move(snap->settings));
    p->policies.load(std::move(snap->policies));
    p->cache.load(std::move(snap->devices), std::move(snap->modules));
    p->sessions.load(std::move(snap->sessions));
    log::info("service.opened", {{"devices", p->cache.devices.size()}, {"policies", p->policies.size()}});
    if (s.is_shared()) {
        // Other nodes' committed changes (docs/architecture.md, "Several nodes").
        s.set_remote_listener([raw = p.get()](std::vector<store::remote_change>& changes) {
            apply_remote_changes(changes, raw->cache, raw->policies, raw->st, raw->notifier);
        });
        log::info("service.shared_store", {{"node", s.node_id()}});
    }
    if (auto* link = dynamic_cast<store::cluster_link*>(&s)) {
        // Presence across nodes: connectionState follows whichever node holds the session.
        p->presence.set_cluster([link](const store::identity_key& id, bool c) { link->publish_presence(id, c); },
                                [link](const store::identity_key& id) { return !link->node_of(id).empty(); });
        link->set_presence_handler([raw = p.get()](const store::identity_key& id, const std::string& node) {
            raw->presence.apply_remote_presence(id, !node.empty());
        });
        // Event Hubs readers on this node wake for events any node appended.
        link->set_events_handler([raw = p.get()](std::uint32_t stream) { raw->notifier.events_appended(stream); });
    }
    return std::unique_ptr<hub_service>(new hub_service(std::move(p)));
}

registry_service& hub_service::registry() noexcept { return impl_->registry; }
twin_service& hub_service::twins() noexcept { return impl_->twins; }
presence_service& hub_service::presence() noexcept { return impl_->presence; }
session_service& hub_service::sessions() noexcept { return impl_->sessions; }
policy_service& hub_service::access_policies() noexcept { return impl_->policies; }
settings_service& hub_service::hub_settings() noexcept { return impl_->settings; }
event_log& hub_service::events() noexcept { return impl_->events; }

void hub_service::add_observer(change_observer* o) { impl_->notifier.add_observer(o); }
void hub_service::certificates_changed() const { impl_->notifier.certificates_changed(); }
void hub_service::remove_observer(change_observer* o) { impl_->notifier.remove_observer(o); }
void hub_service::set_event_router(event_router* r) { impl_->events.set_router(r); }

// ---- policies ----
std::vector<auth::shared_access_policy> hub_service::policies() const { return impl_->policies.policies(); }
void hub_service::put_policy(auth::shared_access_policy p, handler<auth::shared_access_policy> done) {
    impl_->policies.put(std::move(p), std::move(done));
}
void hub_service::delete_policy(std::string key_name, handler<void> done) {
    impl_->policies.remove(std::move(key_name), std::move(done));
}

// ---- devices, modules, bulk ----
void hub_service::create_device(registry::device_identity req, handler<registry::device_identity> done) {
    impl_->registry.create_device(std::move(req), std::move(done));
}
void hub_service::update_device(registry::device_identity req, std::string if_match,
                                handler<registry::device_identity> done) {
    impl_->registry.update_device(std::move(req), std::move(if_match), std::move(done));
}
result<registry::device_identity> hub_service::get_device(std::string_view device_id) const {
    return impl_->registry.get_device(device_id);
}
std::vector<registry::device_identity> hub_service::list_devices(std::size_t top) const {
    return impl_->registry.list_devices(top);
}
void hub_service::delete_device(std::string device_id, std::string if_match, handler<void> done) {
    impl_->registry.delete_device(std::move(device_id), std::move(if_match), std::move(done));
}
registry_statistics hub_service::statistics() const { return impl_->registry.statistics(); }
std::int64_t hub_service::connected_device_count() const { return impl_->presence.connected_device_count(); }

void hub_service::create_module(registry::module_identity req, handler<registry::module_identity> done) {
    impl_->registry.create_module(std::move(req), std::move(done));
}
void hub_service::update_module(registry::module_identity req, std::string if_match,
                                handler<registry::module_identity> done) {
    impl_->registry.update_module(std::move(req), std::move(if_match), std::move(done));
}
result<registry::module_identity> hub_service::get_module(std::string_view device_id,
                                                          std::string_view module_id) const {
    return impl_->registry.get_module(device_id, module_id);
}
result<std::vector<registry::module_identity>> hub_service::list_modules(std::string_view device_id) const {
    return impl_->registry.list_modules(device_id);
}
void hub_service::delete_module(std::string device_id, std::string module_id, std::string if_match,
                                handler<void> done) {
    impl_->registry.delete_module(std::move(device_id), std::move(module_id), std::move(if_match), std::move(done));
}
void hub_service::bulk(std::vector<bulk_entry> entries, handler<bulk_result> done) {
    impl_->registry.bulk(std::move(entries), std::move(done));
}

// ---- twins ----
result<boost::json::object> hub_service::get_twin(const store::identity_key& id) const {
    return impl_->twins.get_twin(id);
}
void hub_service::patch_twin(store::identity_key id, boost::json::value body, std::string if_match,
                             handler<boost::json::object> done) {
    impl_->twins.patch_twin(std::move(id), std::move(body), std::move(if_match),
                            counted(metrics().c2d_twin_update_success, 1, std::move(done)));
}
void hub_service::replace_twin(store::identity_key id, boost::json::value body, std::string if_match,
                               handler<boost::json::object> done) {
    impl_->twins.replace_twin(std::move(id), std::move(body), std::move(if_match),
                              counted(metrics().c2d_twin_update_success, 1, std::move(done)));
}
result<boost::json::object> hub_service::get_device_twin_view(const store::identity_key& id) const {
    auto r = impl_->twins.get_device_twin_view(id);
    if (r) metrics().d2c_twin_read_success.inc(), metrics().quota_messages.inc();
    return r;
}
void hub_service::patch_reported(store::identity_key id, boost::json::value patch, handler<std::int64_t> done) {
    impl_->twins.patch_reported(std::move(id), std::move(patch), counted(metrics().d2c_twin_update_success, 1, std::move(done)));
}
void hub_service::for_each_twin(bool modules, const std::function<bool(const boost::json::object&)>& visit) const {
    impl_->twins.for_each_twin(modules, visit);
}

// ---- presence and credentials ----
result<identity_credentials> hub_service::credentials(const store::identity_key& id) const {
    return impl_->presence.credentials(id);
}
void hub_service::set_connection_state(const store::identity_key& id, bool connected) {
    impl_->presence.set_connection_state(id, connected);
}
void hub_service::touch_activity(const store::identity_key& id) { impl_->presence.touch_activity(id); }
void hub_service::set_model_id(const store::identity_key& id, std::string model_id) {
    impl_->presence.set_model_id(id, std::move(model_id));
}

// ---- MQTT sessions ----
std::optional<store::session_record> hub_service::get_session(std::string_view client_id) const {
    return impl_->sessions.get(client_id);
}
void hub_service::put_session(store::session_record s, handler<void> done) {
    impl_->sessions.put(std::move(s), std::move(done));
}
void hub_service::delete_session(std::string client_id, handler<void> done) {
    impl_->sessions.remove(std::move(client_id), std::move(done));
}

// ---- settings ----
std::optional<std::string> hub_service::setting(std::string_view key) const { return impl_->settings.get(key); }
std::vector<std::pair<std::string, std::string>> hub_service::settings_with_prefix(std::string_view prefix) const {
    return impl_->settings.with_prefix(prefix);
}
void hub_service::put_setting(std::string key, std::string doc, handler<void> done) {
    impl_->settings.put(std::move(key), std::move(doc), std::move(done));
}

// ---- telemetry ----
std::uint32_t hub_service::event_partition_count() const noexcept { return impl_->events.partition_count(); }
std::int64_t hub_service::event_hub_created_ns() const noexcept { return impl_->events.created_ns(); }
void hub_service::append_event(store::event_record e, handler<void> done) {
    metrics().d2c_telemetry_ingress_all.inc();
    done = counted(metrics().d2c_telemetry_ingress_success, quota_blocks(e.body.size(), 4096), std::move(done));
    std::vector<store::event_record> one;
    one.push_back(std::move(e));
    impl_->events.append(std::move(one), std::move(done));
}
void hub_service::append_events(std::vector<store::event_record> events, handler<void> done) {
    impl_->events.append(std::move(events), std::move(done));
}
void hub_service::append_routed_events(std::vector<store::event_record> events, handler<void> done) {
    impl_->events.append_routed(std::move(events), std::move(done));
}
void hub_service::trim_events(const std::vector<std::uint32_t>& streams, std::int64_t before_ns, std::uint32_t max_rows,
                              handler<void> done) {
    impl_->events.trim(streams, before_ns, max_rows, std::move(done));
}
result<std::vector<store::event_record>> hub_service::read_events(std::uint32_t partition, std::uint64_t from,
                                                                  std::size_t max_count) const {
    return impl_->events.read(partition, from, max_count);
}
result<store::store::partition_info> hub_service::event_partition_info(std::uint32_t partition) const {
    return impl_->events.partition_info(partition);
}

}  // namespace twinhub::service
