#include "jobs/configuration_service.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "jobs/configuration_content.hpp"
#include "query/query_engine.hpp"
#include "query/query_evaluator.hpp"
#include "query/query_parser.hpp"
#include "service/hub_service.hpp"
#include "service/twin_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace twinhub::jobs {

namespace json = boost::json;

std::string expand_configuration_refs(std::string_view q) {
    std::string out;
    out.reserve(q.size());
    for (std::size_t i = 0; i < q.size();) {
        const std::size_t at = q.find("[[", i);
        const std::size_t end = at == std::string_view::npos ? at : q.find("]]", at + 2);
        if (at == std::string_view::npos || end == std::string_view::npos) {
            out.append(q.substr(i));
            break;
        }
        std::string_view before = q.substr(i, at - i);
        if (!before.empty() && before.back() == '.') before.remove_suffix(1);
        out.append(before);
        out.append("['");
        for (char c : q.substr(at + 2, end - at - 2)) {
            if (c == '\'') out.push_back('\\');
            out.push_back(c);
        }
        out.append("']");
        i = end + 2;
    }
    return out;
}

namespace {

std::string config_key(std::string_view id) { return "config/" + std::string(id); }

std::string unquote(std::string_view s) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return std::string(s);
}

// Rows a query returns (all pages).
std::int64_t count_rows(query::query_engine& q, const std::string& sql) {
    std::int64_t n = 0;
    std::string cont;
    for (;;) {
        auto page = q.run(sql, query::max_page_items, cont);
        if (!page) return 0;
        n += static_cast<std::int64_t>(page->items.size());
        if (!page->continuation) return n;
        cont = *page->continuation;
    }
}

}  // namespace

struct configuration_service::impl {
    service::hub_service& hub;
    query::query_engine& queries;

    mutable std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::shared_ptr<const configuration>, std::less<>> configs;
    std::set<identity_key> dirty;
    bool full_pass = false;
    bool busy = false;
    bool stopping = false;
    bool started = false;
    std::thread worker;

    impl(service::hub_service& h, query::query_engine& q) : hub(h), queries(q) {}

    std::vector<std::shared_ptr<const configuration>> snapshot() const {
        std::vector<std::shared_ptr<const configuration>> v;
        for (auto& [k, c] : configs) v.push_back(c);
        return v;
    }

    json::object with_metrics(const configuration& c) const {
        json::object o = c.doc;
        const bool modules = c.kind == content_kind::module;
        const std::string select = modules ? "select deviceId, moduleId from devices.modules where "
                                           : "select deviceId from devices where ";
        json::object sq, sr;
        sq["targetedCount"] = c.target_condition.empty() ? std::string() : select + c.target_condition;
        sq["appliedCount"] = select + "configurations.[[" + c.id + "]].status = 'Applied'";
        sr["targetedCount"] = c.target_condition.empty() ? 0 : count_rows(queries, select + c.target_condition);
        sr["appliedCount"] = count_rows(queries, expand_configuration_refs(sq["appliedCount"].as_string()));
        o["systemMetrics"] = json::object{{"results", std::move(sr)}, {"queries", std::move(sq)}};
        json::object mq, mr;
        if (auto* m = c.doc.if_contains("metrics"); m && m->is_object()) {
            if (auto* q = m->get_object().if_contains("queries"); q && q->is_object()) mq = q->get_object();
        }
        for (auto& [name, sql] : mq)
            if (sql.is_string()) mr[name] = count_rows(queries, expand_configuration_refs(sql.get_string()));
        o["metrics"] = json::object{{"results", std::move(mr)}, {"queries", std::move(mq)}};
        return o;
    }

    struct write {
        identity_key key;
        json::value patch;
        json::object section;
    };

    std::optional<write> evaluate(const json::object& twin, bool module,
                                  const std::vector<std::shared_ptr<const configuration>>& all) const {
        auto d = decide(twin, module, all);
        if (!d) return std::nullopt;
        write w;
        w.key.device_id = std::string(twin.at("deviceId").as_string());
        if (module) w.key.module_id = std::string(twin.at("moduleId").as_string());
        w.patch = std::move(d->patch);
        w.section = std::move(d->section);
        return w;
    }

    void apply_writes(std::vector<write>& ws) {
        std::mutex wm;
        std::condition_variable wcv;
        std::size_t left = 0;
        constexpr std::size_t window = 256;
        for (auto& w : ws) {
            {
                std::unique_lock l(wm);
                wcv.wait(l, [&] { return left < window; });
                ++left;
            }
            hub.twins().apply_configurations(std::move(w.key), std::move(w.patch), std::move(w.section),
                                             [&](result<json::object> r) {
                                                 if (!r) log::warn("configurations.apply_failed", {{"error", r.error().message}});
                                                 std::lock_guard l(wm);
                                                 --left;
                                                 wcv.notify_all();
                                             });
        }
        std::unique_lock l(wm);
        wcv.wait(l, [&] { return left == 0; });
    }

    void loop() {
        std::unique_lock lock(mu);
        for (;;) {
            cv.wait(lock, [&] { return stopping || full_pass || !dirty.empty(); });
            if (stopping) return;
            auto all = snapshot();
            const bool full = full_pass;
            auto keys = std::move(dirty);
            dirty.clear();
            full_pass = false;
            busy = true;
            lock.unlock();
            std::vector<write> ws;
            if (full) {
                for (bool modules : {false, true}) {
                    hub.twins().for_each_twin(modules, [&](const json::object& t) {
                        if (auto w = evaluate(t, modules, all)) ws.push_back(std::move(*w));
                        return true;
                    });
                }
            } else {
                for (const auto& k : keys) {
                    auto t = hub.twins().get_twin(k);
                    if (!t) continue;
                    if (auto w = evaluate(*t, k.is_module(), all)) ws.push_back(std::move(*w));
                }
            }
            apply_writes(ws);
            lock.lock();
            busy = false;
            cv.notify_all();
        }
    }

    void load() {
        for (auto& [key, doc] : hub.settings_with_prefix("config/")) {
            boost::system::error_code ec;
            auto v = json::parse(doc, ec);
            if (ec || !v.is_object()) continue;
            auto c = configuration_from_storage(v.get_object());
            if (!c) {
                log::warn("configurations.load_skipped", {{"key", key}});
                continue;
            }
            std::string id = c->id;  // (the right side of = is evaluated first)
            configs[id] = std::make_shared<const configuration>(std::move(*c));
        }
        full_pass = !configs.empty();
    }
};

configuration_service::configuration_service(service::hub_service& hub, query::query_engine& queries)
    : impl_(std::make_unique<impl>(hub, queries)) {}

configuration_service::~configuration_service() { stop(); }

void configuration_service::start() {
    auto& m = *impl_;
    {
        std::lock_guard lock(m.mu);
        if (m.started) return;
        m.started = true;
        m.load();
    }
    m.hub.add_observer(this);
    m.worker = std::thread([&m] { m.loop(); });
}

void configuration_service::stop() {
    auto& m = *impl_;
    bool was_started = false;
    {
        std::lock_guard lock(m.mu);
        was_started = m.started && !m.stopping;
        m.stopping = true;
    }
    m.cv.notify_all();
    if (m.worker.joinable()) m.worker.join();
    if (was_started) m.hub.remove_observer(this);
}

void configuration_service::on_twin_changed(const identity_key& id) {
    auto& m = *impl_;
    std::lock_guard lock(m.mu);
    if (m.configs.empty() || m.stopping) return;
    m.dirty.insert(id);
    m.cv.notify_all();
}

void configuration_service::wait_idle() {
    auto& m = *impl_;
    std::unique_lock lock(m.mu);
    m.cv.wait(lock, [&] { return m.stopping || (!m.busy && !m.full_pass && m.dirty.empty()); });
}

void configuration_service::put(std::string id, const json::value& body, std::optional<std::string> if_match,
                                completion done) {
    auto& m = *impl_;
    const time_point t = now();
    auto c = parse_configuration(id, body, t);
    if (!c) return done(c.error());
    {
        std::lock_guard lock(m.mu);
        auto it = m.configs.find(id);
        if (!if_match) {
            if (it != m.configs.end())
                return done(error{errc::device_already_exists, "The configuration '" + id + "' already exists."});
            if (m.configs.size() >= max_configurations)
                return done(error{errc::too_many_devices, "The hub already has " + std::to_string(max_configurations) +
                                                              " configurations, the maximum."});
            c->etag_counter = 1;
        } else {
            const std::string want = unquote(*if_match);
            if (it == m.configs.end()) {
                if (want != "*")
                    return done(error{errc::precondition_failed, "The configuration '" + id + "' does not exist."});
                c->etag_counter = 1;
            } else {
                const configuration& cur = *it->second;
                if (want != "*" && want != configuration_etag(cur))
                    return done(error{errc::precondition_failed, "Precondition failed: the etag of the configuration '" + id +
                                                                     "' is \"" + configuration_etag(cur) + "\"."});
                if (cur.content != c->content)
                    return done(error{errc::invalid_argument,
                                      "The content of a configuration cannot be changed; create a new configuration."});
                c->etag_counter = cur.etag_counter + 1;
                c->created = cur.created;
            }
        }
        finish_document(*c);
    }
    auto stored = std::make_shared<configuration>(std::move(*c));
    m.hub.put_setting(config_key(id), json::serialize(stored->doc), [&m, stored, done = std::move(done)](result<void> r) {
        if (!r) return done(r.error());
        {
            std::lock_guard lock(m.mu);
            m.configs[stored->id] = stored;
            m.full_pass = true;
        }
        m.cv.notify_all();
        done(stored->doc);
    });
}

result<json::object> configuration_service::get(std::string_view id) const {
    auto& m = *impl_;
    std::shared_ptr<const configuration> c;
    {
        std::lock_guard lock(m.mu);
        auto it = m.configs.find(id);
        if (it == m.configs.end())
            return error{errc::not_found, "The configuration '" + std::string(id) + "' does not exist."};
        c = it->second;
    }
    return m.with_metrics(*c);
}

std::vector<json::object> configuration_service::list(std::size_t top) const {
    auto& m = *impl_;
    std::vector<std::shared_ptr<const configuration>> all;
    {
        std::lock_guard lock(m.mu);
        all = m.snapshot();
    }
    std::vector<json::object> out;
    for (auto& c : all) {
        if (out.size() >= top) break;
        out.push_back(m.with_metrics(*c));
    }
    return out;
}

void configuration_service::remove(std::string id, std::optional<std::string> if_match,
                                   std::function<void(result<void>)> done) {
    auto& m = *impl_;
    {
        std::lock_guard lock(m.mu);
        auto it = m.configs.find(id);
        if (it == m.configs.end())
            return done(error{errc::not_found, "The configuration '" + id + "' does not exist."});
        if (if_match) {
            const std::string want = unquote(*if_match);
            if (want != "*" && want != configuration_etag(*it->second))
                return done(error{errc::precondition_failed, "Precondition failed: the etag of the configuration '" + id +
                                                                 "' is \"" + configuration_etag(*it->second) + "\"."});
        }
    }
    m.hub.put_setting(config_key(id), "", [&m, id, done = std::move(done)](result<void> r) {
        if (!r) return done(r.error());
        {
            std::lock_guard lock(m.mu);
            m.configs.erase(id);
            m.full_pass = true;  // its section entries go away; its desired values stay
        }
        m.cv.notify_all();
        done({});
    });
}

result<json::object> configuration_service::test_queries(const json::value& body) const {
    if (!body.is_object()) return error{errc::invalid_argument, "The request body must be a JSON object."};
    const auto& o = body.get_object();
    json::object out;
    std::string target_error;
    if (auto* t = o.if_contains("targetCondition"); t && !t->is_null()) {
        if (!t->is_string()) return error{errc::invalid_argument, "targetCondition must be a string."};
        if (!t->get_string().empty()) {
            if (auto p = query::parse("SELECT * FROM devices WHERE " + std::string(t->get_string())); !p)
                target_error = p.error().message;
        }
    }
    out["targetConditionError"] = target_error;
    json::object errors;
    if (auto* q = o.if_contains("customMetricQueries"); q && !q->is_null()) {
        if (!q->is_object()) return error{errc::invalid_argument, "customMetricQueries must be a JSON object."};
        for (auto& [name, sql] : q->get_object()) {
            if (!sql.is_string()) {
                errors[name] = "The query must be a string.";
                continue;
            }
            if (auto p = query::parse(expand_configuration_refs(sql.get_string())); !p) errors[name] = p.error().message;
        }
    }
    out["customMetricQueryErrors"] = std::move(errors);
    return out;
}

void configuration_service::apply_content(std::string device_id, const json::value& body,
                                          std::function<void(result<void>)> done) {
    auto& m = *impl_;
    auto plan = parse_apply_request(body);
    if (!plan) return done(plan.error());
    auto dev = m.hub.get_device(device_id);
    if (!dev) return done(dev.error());
    if (plan->device_patch) {
        return m.hub.patch_twin(identity_key{device_id, ""}, json::value(*plan->device_patch), "",
                                [done = std::move(done)](result<json::object> r) {
                                    if (!r) return done(r.error());
                                    done({});
                                });
    }
    if (!dev->iot_edge)
        return done(error{errc::invalid_argument, "The device '" + device_id +
                                                      "' is not an IoT Edge device (capabilities.iotEdge); modulesContent "
                                                      "applies to edge devices only."});
    // One module after the other: create the identity if missing, then replace its desired properties.
    struct chain {
        service::hub_service& hub;
        std::string device_id;
        std::vector<std::pair<std::string, json::object>> modules;
        std::size_t next = 0;
        std::function<void(result<void>)> done;
    };
    auto c = std::make_shared<chain>(chain{m.hub, device_id, std::move(plan->modules), 0, std::move(done)});
    auto step = std::make_shared<std::function<void()>>();
    *step = [c, step]() {
        if (c->next == c->modules.size()) {
            auto d = std::move(c->done);
            *step = nullptr;  // break the cycle
            return d({});
        }
        auto& [mid, desired] = c->modules[c->next++];
        identity_key key{c->device_id, mid};
        auto write = [c, step, key, desired = desired]() {
            json::object b{{"properties", json::object{{"desired", desired}}}};
            c->hub.replace_twin(key, json::value(std::move(b)), "", [c, step](result<json::object> r) {
                if (!r) {
                    auto d = std::move(c->done);
                    *step = nullptr;
                    return d(r.error());
                }
                (*step)();
            });
        };
        if (c->hub.get_module(key.device_id, key.module_id)) return write();
        registry::module_identity mi;
        mi.device_id = key.device_id;
        mi.module_id = key.module_id;
        if (!mi.module_id.empty() && mi.module_id[0] == '$') mi.managed_by = "IotEdge";
        c->hub.create_module(std::move(mi), [c, step, write](result<registry::module_identity> r) {
            if (!r && r.error().code != errc::module_already_exists) {
                auto d = std::move(c->done);
                *step = nullptr;
                return d(r.error());
            }
            write();
        });
    };
    (*step)();
}

}  // namespace twinhub::jobs
