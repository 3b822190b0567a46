#include "service/twin_service.hpp"

#include "common/time.hpp"
#include "registry/identity.hpp"
#include "service/event_log.hpp"
#include "service/record_cache.hpp"
#include "service/twin_json.hpp"
#include "twin/twin_document.hpp"

#include <boost/json/serialize.hpp>

#include <mutex>

namespace twinhub::service {
namespace {

// IoT Hub's twin change event body: {"version", "tags"?, "properties": {"desired"|"reported": {.., "$version"}}}.
boost::json::object twin_change_body(const boost::json::object& twin, const boost::json::value& patch, bool reported) {
    boost::json::object body;
    if (auto* v = twin.if_contains("version")) body["version"] = *v;
    const auto* p = patch.if_object();
    if (!p) return body;
    if (reported) {
        boost::json::object rep = *p;
        if (auto* props = twin.if_contains("properties"); props && props->is_object())
            if (auto* r = props->as_object().if_contains("reported"); r && r->is_object())
                if (auto* v = r->as_object().if_contains("$version")) rep["$version"] = *v;
        body["properties"] = boost::json::object{{"reported", std::move(rep)}};
        return body;
    }
    if (auto* tags = p->if_contains("tags")) body["tags"] = *tags;
    if (auto* props = p->if_contains("properties"); props && props->is_object())
        if (auto* d = props->as_object().if_contains("desired"); d && d->is_object()) {
            boost::json::object des = d->as_object();
            if (auto* tp = twin.if_contains("properties"); tp && tp->is_object())
                if (auto* td = tp->as_object().if_contains("desired"); td && td->is_object())
                    if (auto* v = td->as_object().if_contains("$version")) des["$version"] = *v;
            body["properties"] = boost::json::object{{"desired", std::move(des)}};
        }
    return body;
}

}  // namespace

void twin_service::add_observer(change_observer* o) { notifier_.add_observer(o); }
void twin_service::remove_observer(change_observer* o) { notifier_.remove_observer(o); }

// One twin write: `mutate` changes a copy of the head document (or fails, leaving nothing
// changed); on success the committed document is published, the desired change (if any)
// notified, and `done` gets `make_result(new_doc)`.
template <class T>
void twin_service::write_twin(store::identity_key id, std::string if_match, const mutation& mutate,
                              std::function<T(const twin::twin_document&, const device_entry&)> make_result,
                              std::function<void(result<T>)> done) {
    after_unlock after;
    std::unique_lock lock(cache_.mu);
    device_entry* e = nullptr;
    auto ts = cache_.head_twin(id, e);
    if (!ts) return fail(after, done, ts.error());
    const twin::twin_document& cur = *(*ts)->view();
    if (!if_match.empty() && !registry::if_match_matches(if_match, twin::etag_to_string(cur.etag)))
        return fail(after, done,
                    error{errc::precondition_failed, "Precondition failed: the etag of the twin of '" +
                                                         describe_key(id) + "' is \"" +
                                                         twin::etag_to_string(cur.etag) + "\", If-Match was " +
                                                         if_match + "."});
    // The write's one copy: `mutate` changes it, then the head, the store batch and (once
    // durable) `committed` share it.
    auto written = std::make_shared<twin::twin_document>(cur);
    auto changed = mutate(*written);
    if (!changed) return fail(after, done, changed.error());
    const auto base = static_cast<std::uint64_t>(cur.version);
    (*ts)->head = written;

    store::write_batch b;
    // A shared store carries the desired patch to the other nodes' sessions (remote_changes.hpp).
    std::string desired_patch;
    if (*changed && pipeline_.store().is_shared()) desired_patch = boost::json::serialize((*changed)->patch);
    b.put_twin(id, written, store::expect::revision(base), std::move(desired_patch));
    auto result_value = std::make_shared<std::optional<T>>();
    auto apply = [id, written, make_result = std::move(make_result), result_value](device_entry& e) {
        auto& s = record_cache::twin_slot_of(e, id);
        // modelId is presence (set at connect, kept in memory): the committed value wins. The
        // store has serialized `written` by now, and readers never saw it.
        if (s.committed) written->model_id = s.committed->model_id;
        // Several nodes: another node's newer write may have been applied first (remote_changes).
        if (!s.committed || s.committed->version < written->version) s.committed = written;
        *result_value = make_result(*s.committed, e);  // the identity mirrors as of commit
    };
    auto finish = [this, id, done = std::move(done), result_value, change = std::move(*changed)](result<void> r) {
        if (!r) return done(r.error());
        if (change) notifier_.desired_changed(id, *change);
        done(std::move(**result_value));
    };
    cache_.submit(pipeline_, *e, id.device_id, std::move(b), std::move(apply), std::move(finish), after);
}

void twin_service::apply_configurations(store::identity_key id, boost::json::value desired_patch,
                                        boost::json::object configurations,
                                        std::function<void(result<boost::json::object>)> done) {
    auto now_t = now();
    write_twin<boost::json::object>(
        id, "",
        [&desired_patch, &configurations, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            std::optional<twin::desired_change> change;
            if (!desired_patch.is_null()) {
                auto r = twin::apply_service_patch(doc, desired_patch, now_t);
                if (!r) return r.error();
                change = std::move(r->desired);
            } else {
                ++doc.version;
            }
            doc.configurations = configurations;
            return change;
        },
        [this, id](const twin::twin_document&, const device_entry& e) { return cache_.twin_json_of(e, id); },
        std::move(done));
}

result<boost::json::object> twin_service::get_twin(const store::identity_key& id) const { return cache_.twin_json(id); }

void twin_service::patch_twin(store::identity_key id, boost::json::value body, std::string if_match,
                              std::function<void(result<boost::json::object>)> done) {
    if (auto* r = events_.router(); r && r->wants_twin_changes()) {
        done = [r, id, patch = body, done = std::move(done)](result<boost::json::object> t) {
            if (t) r->on_twin_change(id, "updateTwin", twin_change_body(*t, patch, false));
            done(std::move(t));
        };
    }
    auto now_t = now();
    write_twin<boost::json::object>(
        id, std::move(if_match),
        [&body, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            auto r = twin::apply_service_patch(doc, body, now_t);
            if (!r) return r.error();
            return std::move(r->desired);
        },
        [this, id](const twin::twin_document&, const device_entry& e) { return cache_.twin_json_of(e, id); },
        std::move(done));
}

void twin_service::replace_twin(store::identity_key id, boost::json::value body, std::string if_match,
                                std::function<void(result<boost::json::object>)> done) {
    if (auto* r = events_.router(); r && r->wants_twin_changes()) {
        done = [r, id, patch = body, done = std::move(done)](result<boost::json::object> t) {
            if (t) r->on_twin_change(id, "replaceTwin", twin_change_body(*t, patch, false));
            done(std::move(t));
        };
    }
    auto now_t = now();
    write_twin<boost::json::object>(
        id, std::move(if_match),
        [&body, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            auto r = twin::apply_service_replace(doc, body, now_t);
            if (!r) return r.error();
            return std::move(r->desired);
        },
        [this, id](const twin::twin_document&, const device_entry& e) { return cache_.twin_json_of(e, id); },
        std::move(done));
}

result<boost::json::object> twin_service::get_device_twin_view(const store::identity_key& id) const {
    std::shared_lock lock(cache_.mu);
    const device_entry* e = nullptr;
    auto t = cache_.committed_twin(id, e);
    if (!t) return t.error();
    return twin::device_view(**t);
}

void twin_service::patch_reported(store::identity_key id, boost::json::value patch,
                                  std::function<void(result<std::int64_t>)> done) {
    if (auto* r = events_.router(); r && r->wants_twin_changes()) {
        done = [this, r, id, patch, done = std::move(done)](result<std::int64_t> v) {
            if (v)
                if (auto t = get_twin(id)) r->on_twin_change(id, "updateTwin", twin_change_body(*t, patch, true));
            done(std::move(v));
        };
    }
    auto now_t = now();
    write_twin<std::int64_t>(
        std::move(id), {},
        [&patch, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            // `doc` is write_twin's scratch copy, thrown away on failure: merge in place.
            auto r = twin::apply_reported_patch_in_place(doc, patch, now_t);
            if (!r) return r.error();
            return std::optional<twin::desired_change>();
        },
        [](const twin::twin_document& doc, const device_entry&) { return doc.reported_version; }, std::move(done));
}

void twin_service::for_each_twin(bool modules, const std::function<bool(const boost::json::object&)>& visit) const {
    std::shared_lock lock(cache_.mu);
    for (auto& [_, e] : cache_.devices) {
        if (!e.identity.committed) continue;
        if (!modules) {
            if (!visit(service_twin_json(*e.identity.committed, *e.twin.committed))) return;
            continue;
        }
        for (auto& [__, m] : e.modules) {
            if (!m.identity.committed) continue;
            if (!visit(service_twin_json(*m.identity.committed, *m.twin.committed))) return;
        }
    }
}

}  // namespace twinhub::service
