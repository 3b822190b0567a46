#include "jobs/configuration_content.hpp"

#include "common/encoding.hpp"
#include "query/query_evaluator.hpp"
#include "query/query_parser.hpp"

#include <charconv>
#include <cmath>

namespace twinhub::jobs {

namespace json = boost::json;

namespace {

error bad(std::string m) { return error{errc::invalid_argument, std::move(m)}; }

bool valid_config_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    constexpr std::string_view extra = "-:+%_#*?!(),=@;$'";
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || extra.find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

constexpr std::string_view desired_prefix = "properties.desired";

// deviceContent / moduleContent entries.
result<void> parse_entries(const json::object& content, std::string_view where,
                           std::vector<std::pair<std::vector<std::string>, json::value>>& out) {
    for (auto& [k, v] : content) {
        std::string_view key = k;
        if (key.substr(0, desired_prefix.size()) != desired_prefix ||
            (key.size() > desired_prefix.size() && key[desired_prefix.size()] != '.') ||
            key.size() == desired_prefix.size() + 1)
            return bad(std::string(where) + ": the key '" + std::string(key) +
                       "' must be \"properties.desired\" or \"properties.desired.<path>\".");
        std::vector<std::string> path;
        if (key.size() > desired_prefix.size()) {
            std::string_view rest = key.substr(desired_prefix.size() + 1);
            for (;;) {
                const auto dot = rest.find('.');
                std::string_view seg = rest.substr(0, dot);
                if (seg.empty() || seg.find('$') != std::string_view::npos)
                    return bad(std::string(where) + ": the key '" + std::string(key) + "' has an invalid path.");
                path.emplace_back(seg);
                if (dot == std::string_view::npos) break;
                rest.remove_prefix(dot + 1);
            }
        } else if (!v.is_object()) {
            return bad(std::string(where) + ": \"properties.desired\" must be a JSON object.");
        }
        out.emplace_back(std::move(path), v);
    }
    return {};
}

const json::value* at_path(const json::object& root, const std::vector<std::string>& path) {
    const json::object* o = &root;
    const json::value* v = nullptr;
    for (const auto& seg : path) {
        if (!o) return nullptr;
        v = o->if_contains(seg);
        if (!v) return nullptr;
        o = v->is_object() ? &v->get_object() : nullptr;
    }
    return v;
}

// True when `cur` already holds everything `want` (a merge patch) would write.
bool satisfied(const json::value* cur, const json::value& want) {
    if (want.is_object()) {
        if (!cur || !cur->is_object()) return false;
        const auto& c = cur->get_object();
        for (auto& [k, v] : want.get_object()) {
            if (v.is_null()) {
                if (c.contains(k)) return false;
            } else if (!satisfied(c.if_contains(k), v)) {
                return false;
            }
        }
        return true;
    }
    return cur && *cur == want;
}

}  // namespace

result<configuration> parse_configuration(std::string_view path_id, const json::value& body, time_point t) {
    if (!valid_config_id(path_id))
        return bad("The configuration id '" + std::string(path_id) +
                   "' is not valid: use 1-128 lowercase letters, digits and - : + % _ # * ? ! ( ) , = @ ; $ '.");
    if (!body.is_object()) return bad("The configuration must be a JSON object.");
    const auto& o = body.get_object();
    configuration c;
    c.id = std::string(path_id);
    c.created = c.updated = t;
    if (auto* id = o.if_contains("id"); id && !id->is_null()) {
        if (!id->is_string() || id->get_string() != path_id)
            return bad("id in the body does not match '" + std::string(path_id) + "' in the path.");
    }
    if (auto* s = o.if_contains("schemaVersion"); s && !s->is_null()) {
        if (!s->is_string()) return bad("schemaVersion must be a string.");
        c.schema_version = std::string(s->get_string());
    }
    auto* content = o.if_contains("content");
    if (!content || !content->is_object()) return bad("content must be a JSON object.");
    int kinds = 0;
    for (auto& [k, v] : content->get_object()) {
        if (v.is_null()) continue;
        if (!v.is_object()) return bad("content." + std::string(k) + " must be a JSON object.");
        if (k == "deviceContent") {
            c.kind = content_kind::device;
        } else if (k == "moduleContent") {
            c.kind = content_kind::module;
        } else if (k == "modulesContent") {
            c.kind = content_kind::modules;
        } else {
            return bad("content." + std::string(k) + " is not supported; use deviceContent, moduleContent or modulesContent.");
        }
        ++kinds;
        if (c.kind != content_kind::modules) {
            if (auto ok = parse_entries(v.get_object(), "content." + std::string(k), c.entries); !ok) return ok.error();
        }
    }
    if (kinds != 1) return bad("content must have exactly one of deviceContent, moduleContent or modulesContent.");
    c.content = content->get_object();
    if (auto* tc = o.if_contains("targetCondition"); tc && !tc->is_null()) {
        if (!tc->is_string()) return bad("targetCondition must be a string.");
        c.target_condition = std::string(tc->get_string());
    }
    if (c.target_condition.find_first_not_of(" \t\r\n") != std::string::npos) {
        const char* from = c.kind == content_kind::module ? "SELECT * FROM devices.modules WHERE " : "SELECT * FROM devices WHERE ";
        auto p = query::parse(from + c.target_condition);
        if (!p) return bad("targetCondition: " + p.error().message);
        c.plan = std::move(*p);
    } else {
        c.target_condition.clear();
    }
    if (auto* p = o.if_contains("priority"); p && !p->is_null()) {
        double d = p->is_int64() ? static_cast<double>(p->get_int64())
                 : p->is_uint64() ? static_cast<double>(p->get_uint64())
                 : p->is_double() ? p->get_double() : -1;
        if (d < 0 || d != std::floor(d) || d > 2147483647.0) return bad("priority must be a non-negative integer.");
        c.priority = static_cast<std::int64_t>(d);
    }
    if (auto* l = o.if_contains("labels"); l && !l->is_null()) {
        if (!l->is_object()) return bad("labels must be a JSON object of strings.");
        for (auto& [k, v] : l->get_object())
            if (!v.is_string()) return bad("labels." + std::string(k) + " must be a string.");
        c.labels = l->get_object();
    }
    if (auto* m = o.if_contains("metrics"); m && !m->is_null()) {
        if (!m->is_object()) return bad("metrics must be a JSON object.");
        if (auto* q = m->get_object().if_contains("queries"); q && !q->is_null()) {
            if (!q->is_object()) return bad("metrics.queries must be a JSON object.");
            for (auto& [name, sql] : q->get_object()) {
                if (!sql.is_string()) return bad("metrics.queries." + std::string(name) + " must be a string.");
                // Checked as IoT Hub does: the query must parse once [[id]] is expanded.
                std::string text(sql.get_string());
                std::string expanded;
                for (std::size_t i = 0; i < text.size(); ++i) {
                    if (text.compare(i, 2, "[[") == 0) {
                        auto e = text.find("]]", i);
                        if (e == std::string::npos) break;
                        if (!expanded.empty() && expanded.back() == '.') expanded.pop_back();
                        expanded += "['x']";
                        i = e + 1;
                    } else {
                        expanded.push_back(text[i]);
                    }
                }
                if (auto p = query::parse(expanded); !p)
                    return bad("metrics.queries." + std::string(name) + ": " + p.error().message);
            }
            c.metric_queries = q->get_object();
        }
    }
    return c;
}

std::string configuration_etag(const configuration& c) { return base64_encode(std::to_string(c.etag_counter)); }

void finish_document(configuration& c) {
    json::object d;
    d["id"] = c.id;
    d["schemaVersion"] = c.schema_version;
    d["labels"] = c.labels;
    d["content"] = c.content;
    d["targetCondition"] = c.target_condition;
    d["createdTimeUtc"] = format_time(c.created);
    d["lastUpdatedTimeUtc"] = format_time(c.updated);
    d["priority"] = c.priority;
    d["systemMetrics"] = json::object{{"results", json::object{}}, {"queries", json::object{}}};
    d["metrics"] = json::object{{"results", json::object{}}, {"queries", c.metric_queries}};
    d["etag"] = configuration_etag(c);
    c.doc = std::move(d);
}

result<configuration> configuration_from_storage(const json::object& doc) {
    const error corrupt{errc::corrupt_data, "a stored configuration is malformed"};
    auto* id = doc.if_contains("id");
    auto* created = doc.if_contains("createdTimeUtc");
    auto* updated = doc.if_contains("lastUpdatedTimeUtc");
    auto* etag = doc.if_contains("etag");
    if (!id || !id->is_string() || !created || !created->is_string() || !updated || !updated->is_string() || !etag ||
        !etag->is_string())
        return corrupt;
    auto c = parse_configuration(id->get_string(), doc, now());
    if (!c) return corrupt;
    auto ct = parse_time(created->get_string());
    auto ut = parse_time(updated->get_string());
    auto et = base64_decode(etag->get_string());
    if (!ct || !ut || !et) return corrupt;
    c->created = *ct;
    c->updated = *ut;
    auto [p, ec] = std::from_chars(et->data(), et->data() + et->size(), c->etag_counter);
    if (ec != std::errc{}) return corrupt;
    finish_document(*c);
    return c;
}

std::optional<twin_decision> decide(const json::object& twin, bool module,
                                    const std::vector<std::shared_ptr<const configuration>>& all) {
    const content_kind kind = module ? content_kind::module : content_kind::device;
    std::vector<const configuration*> targeting;
    const configuration* winner = nullptr;
    for (const auto& c : all) {
        if (c->kind != kind || !c->plan) continue;
        query::json_row row(*c->plan, twin);
        if (!query::matches(*c->plan, row)) continue;
        targeting.push_back(c.get());
        if (!winner || c->priority > winner->priority ||
            (c->priority == winner->priority &&
             (c->created > winner->created || (c->created == winner->created && c->id > winner->id))))
            winner = c.get();
    }
    twin_decision d;
    for (const auto* c : targeting)
        d.section[c->id] = json::object{{"status", c == winner ? "Applied" : "Targeted"}};
    json::object current_section;
    if (auto* s = twin.if_contains("configurations"); s && s->is_object()) current_section = s->get_object();

    json::object desired_patch;
    if (winner) {
        static const json::object empty;
        const json::object* desired = &empty;
        if (auto* p = twin.if_contains("properties"); p && p->is_object())
            if (auto* dv = p->get_object().if_contains("desired"); dv && dv->is_object()) desired = &dv->get_object();
        for (const auto& [path, value] : winner->entries) {
            const json::value* cur = path.empty() ? nullptr : at_path(*desired, path);
            json::value root_view;
            if (path.empty()) {
                root_view = *desired;
                cur = &root_view;
            }
            if (satisfied(cur, value)) continue;
            if (path.empty()) {
                for (auto& [k, v] : value.get_object()) desired_patch[k] = v;
                continue;
            }
            json::object* o = &desired_patch;
            for (std::size_t i = 0; i + 1 < path.size(); ++i) {
                json::value& next = (*o)[path[i]];
                if (!next.is_object()) next = json::object{};
                o = &next.get_object();
            }
            (*o)[path.back()] = value;
        }
    }
    if (desired_patch.empty() && d.section == current_section) return std::nullopt;
    if (!desired_patch.empty()) d.patch = json::object{{"properties", json::object{{"desired", std::move(desired_patch)}}}};
    return d;
}

result<apply_plan> parse_apply_request(const json::value& body) {
    if (!body.is_object()) return bad("The configuration content must be a JSON object.");
    const auto& o = body.get_object();
    apply_plan plan;
    const json::value* dc = o.if_contains("deviceContent");
    const json::value* mc = o.if_contains("modulesContent");
    if (dc && dc->is_null()) dc = nullptr;
    if (mc && mc->is_null()) mc = nullptr;
    if (auto* m1 = o.if_contains("moduleContent"); m1 && !m1->is_null())
        return bad("moduleContent cannot be applied to a device; use deviceContent or modulesContent.");
    if ((dc != nullptr) == (mc != nullptr)) return bad("The content must have exactly one of deviceContent or modulesContent.");
    if (dc) {
        if (!dc->is_object()) return bad("deviceContent must be a JSON object.");
        std::vector<std::pair<std::vector<std::string>, json::value>> entries;
        if (auto ok = parse_entries(dc->get_object(), "deviceContent", entries); !ok) return ok.error();
        json::object desired;
        for (auto& [path, value] : entries) {
            if (path.empty()) {
                for (auto& [k, v] : value.get_object()) desired[k] = v;
                continue;
            }
            json::object* cur = &desired;
            for (std::size_t i = 0; i + 1 < path.size(); ++i) {
                json::value& next = (*cur)[path[i]];
                if (!next.is_object()) next = json::object{};
                cur = &next.get_object();
            }
            (*cur)[path.back()] = value;
        }
        plan.device_patch = json::object{{"properties", json::object{{"desired", std::move(desired)}}}};
        return plan;
    }
    if (!mc->is_object() || mc->get_object().empty()) return bad("modulesContent must be a non-empty JSON object.");
    for (auto& [mid, v] : mc->get_object()) {
        const std::string where = "modulesContent." + std::string(mid);
        if (!v.is_object()) return bad(where + " must be a JSON object.");
        auto* d = v.get_object().if_contains("properties.desired");
        if (!d || !d->is_object()) return bad(where + " must have a \"properties.desired\" object.");
        if (mid.empty() || mid.size() > 128) return bad(where + ": the module id is not valid.");
        plan.modules.emplace_back(std::string(mid), d->get_object());
    }
    return plan;
}

}  // namespace twinhub::jobs
