#include "query/query_evaluator.hpp"

#include "common/text.hpp"

#include <boost/json/serialize.hpp>

#include <cctype>
#include <cmath>
#include <cstring>

namespace twinhub::query {

namespace {

double number_of(const boost::json::value& v) noexcept {
    switch (v.kind()) {
        case boost::json::kind::int64: return static_cast<double>(v.get_int64());
        case boost::json::kind::uint64: return static_cast<double>(v.get_uint64());
        default: return v.get_double();
    }
}

qvalue constant_value(const expr& e) {
    if (e.undefined) return {};
    return qvalue::from_json(&e.constant);
}

qvalue boolean(bool b) {
    qvalue v;
    v.k = qvalue::kind::boolean;
    v.b = b;
    return v;
}

qvalue number(double d) {
    qvalue v;
    if (!std::isfinite(d)) return v;  // overflow and NaN are undefined
    v.k = qvalue::kind::number;
    v.n = d;
    return v;
}

// Three-way comparison of two primitive values of the same kind; nullopt when they do not compare.
std::optional<int> compare(const qvalue& a, const qvalue& b) {
    if (a.k != b.k) return std::nullopt;
    switch (a.k) {
        case qvalue::kind::null: return 0;
        case qvalue::kind::boolean: return static_cast<int>(a.b) - static_cast<int>(b.b);
        case qvalue::kind::number: return a.n < b.n ? -1 : (a.n > b.n ? 1 : 0);
        case qvalue::kind::string: {
            const int c = a.s.compare(b.s);
            return c < 0 ? -1 : (c > 0 ? 1 : 0);
        }
        default: return std::nullopt;  // undefined, objects and arrays never compare
    }
}

qvalue compare_op(binary_op op, const qvalue& a, const qvalue& b) {
    const auto c = compare(a, b);
    if (!c) return {};
    switch (op) {
        case binary_op::eq: return boolean(*c == 0);
        case binary_op::ne: return boolean(*c != 0);
        case binary_op::lt: return boolean(*c < 0);
        case binary_op::gt: return boolean(*c > 0);
        case binary_op::le: return boolean(*c <= 0);
        case binary_op::ge: return boolean(*c >= 0);
        default: return {};
    }
}

struct eval_context {
    const query_plan& plan;
    const row_resolver* row = nullptr;
    // Aggregated output: values of the aggregate slots and of the GROUP BY paths.
    const std::vector<qvalue>* aggregates = nullptr;
    const std::vector<qvalue>* group_keys = nullptr;
};

qvalue eval(const eval_context& cx, const expr& e) {
    switch (e.kind) {
        case expr_kind::constant: return constant_value(e);
        case expr_kind::path:
            if (cx.group_keys) {
                for (std::size_t i = 0; i < cx.plan.group_by.size(); ++i)
                    if (cx.plan.group_by[i] == e.path) return (*cx.group_keys)[i];
                return {};
            }
            return cx.row ? cx.row->value(e.path) : qvalue{};
        case expr_kind::is_defined:
            if (cx.group_keys) {
                for (std::size_t i = 0; i < cx.plan.group_by.size(); ++i)
                    if (cx.plan.group_by[i] == e.path) return boolean((*cx.group_keys)[i].defined());
                return boolean(false);
            }
            return boolean(cx.row && cx.row->value(e.path).defined());
        case expr_kind::aggregate:
            if (cx.aggregates && e.slot < cx.aggregates->size()) return (*cx.aggregates)[e.slot];
            return {};
        case expr_kind::logical_not: {
            const qvalue v = eval(cx, e.children[0]);
            if (v.k != qvalue::kind::boolean) return {};
            return boolean(!v.b);
        }
        case expr_kind::negate: {
            const qvalue v = eval(cx, e.children[0]);
            if (v.k != qvalue::kind::number) return {};
            return number(-v.n);
        }
        case expr_kind::in_list: {
            const qvalue v = eval(cx, e.children[0]);
            if (!v.defined() || v.k == qvalue::kind::object || v.k == qvalue::kind::array) return {};
            bool found = false;
            for (const auto& c : e.constant.get_array()) {
                const auto r = compare(v, qvalue::from_json(&c));
                if (r && *r == 0) {
                    found = true;
                    break;
                }
            }
            return boolean(found != e.negated);
        }
        case expr_kind::binary: break;
    }
    if (e.op == binary_op::logical_and || e.op == binary_op::logical_or) {
        const bool is_and = e.op == binary_op::logical_and;
        const qvalue l = eval(cx, e.children[0]);
        // Short circuit: false AND x = false, true OR x = true, whatever x is.
        if (l.k == qvalue::kind::boolean && l.b != is_and) return boolean(l.b);
        const qvalue r = eval(cx, e.children[1]);
        if (r.k == qvalue::kind::boolean && r.b != is_and) return boolean(r.b);
        if (l.k == qvalue::kind::boolean && r.k == qvalue::kind::boolean) return boolean(is_and);
        return {};
    }
    const qvalue l = eval(cx, e.children[0]);
    const qvalue r = eval(cx, e.children[1]);
    switch (e.op) {
        case binary_op::add:
        case binary_op::sub:
        case binary_op::mul:
        case binary_op::div:
        case binary_op::mod:
            if (l.k != qvalue::kind::number || r.k != qvalue::kind::number) return {};
            switch (e.op) {
                case binary_op::add: return number(l.n + r.n);
                case binary_op::sub: return number(l.n - r.n);
                case binary_op::mul: return number(l.n * r.n);
                case binary_op::div: return r.n == 0 ? qvalue{} : number(l.n / r.n);
                default: return r.n == 0 ? qvalue{} : number(std::fmod(l.n, r.n));
            }
        default: return compare_op(e.op, l, r);
    }
}

// The group key bytes of one value: kind, then its payload.
void append_key(std::string& key, const qvalue& v) {
    key += static_cast<char>(v.k);
    switch (v.k) {
        case qvalue::kind::boolean: key += v.b ? '1' : '0'; break;
        case qvalue::kind::number: {
            const double d = v.n == 0 ? 0.0 : v.n;  // -0 and 0 group together
            char buf[sizeof(double)];
            std::memcpy(buf, &d, sizeof d);
            key.append(buf, sizeof buf);
            break;
        }
        case qvalue::kind::string:
            key += std::to_string(v.s.size());
            key += ':';
            key.append(v.s);
            break;
        case qvalue::kind::array:
        case qvalue::kind::object:
            if (v.json) key += boost::json::serialize(*v.json);
            break;
        default: break;
    }
    key += '\x1f';
}

// Type order for MIN/MAX across kinds: null < false < true < numbers < strings.
int kind_rank(qvalue::kind k) {
    switch (k) {
        case qvalue::kind::null: return 0;
        case qvalue::kind::boolean: return 1;
        case qvalue::kind::number: return 2;
        case qvalue::kind::string: return 3;
        default: return -1;
    }
}

}  // namespace

qvalue qvalue::from_json(const boost::json::value* v) noexcept {
    qvalue q;
    if (!v) return q;
    q.json = v;
    switch (v->kind()) {
        case boost::json::kind::null: q.k = kind::null; break;
        case boost::json::kind::bool_:
            q.k = kind::boolean;
            q.b = v->get_bool();
            break;
        case boost::json::kind::int64:
        case boost::json::kind::uint64:
        case boost::json::kind::double_:
            q.k = kind::number;
            q.n = number_of(*v);
            break;
        case boost::json::kind::string:
            q.k = kind::string;
            q.s = std::string_view(v->get_string().data(), v->get_string().size());
            break;
        case boost::json::kind::array: q.k = kind::array; break;
        case boost::json::kind::object: q.k = kind::object; break;
    }
    return q;
}

boost::json::value to_json(const qvalue& v) {
    if (v.json) return *v.json;
    switch (v.k) {
        case qvalue::kind::boolean: return v.b;
        case qvalue::kind::number:
            if (v.n == std::floor(v.n) && std::fabs(v.n) <= 9007199254740992.0) return static_cast<std::int64_t>(v.n);
            return v.n;
        case qvalue::kind::string: return boost::json::string(v.s);
        default: return nullptr;
    }
}

const boost::json::value* resolve_path(const boost::json::object& doc, const property_path& p,
                                       std::string_view* found_key) noexcept {
    const boost::json::value* cur = nullptr;
    const boost::json::object* obj = &doc;
    for (std::size_t i = 0; i < p.segments.size(); ++i) {
        const auto& seg = p.segments[i];
        if (seg.index) {
            if (!cur || !cur->is_array() || *seg.index >= cur->get_array().size()) return nullptr;
            cur = &cur->get_array()[*seg.index];
        } else {
            if (i > 0) {
                if (!cur || !cur->is_object()) return nullptr;
                obj = &cur->get_object();
            }
            auto it = obj->find(seg.name);
            if (it == obj->end() && i == 0) {
                for (auto jt = obj->begin(); jt != obj->end(); ++jt) {
                    if (iequals(jt->key(), seg.name)) {
                        it = jt;
                        break;
                    }
                }
            }
            if (it == obj->end()) return nullptr;
            if (found_key) *found_key = std::string_view(it->key().data(), it->key().size());
            cur = &it->value();
        }
    }
    return cur;
}

qvalue evaluate(const query_plan& plan, const expr& e, const row_resolver& row) {
    eval_context cx{plan, &row};
    return eval(cx, e);
}

bool matches(const query_plan& plan, const row_resolver& row) {
    if (!plan.where) return true;
    return evaluate(plan, *plan.where, row).is_true();
}

boost::json::object project(const query_plan& plan, const row_resolver& row) {
    if (plan.select_all) return row.document();
    boost::json::object out;
    for (const auto& p : plan.projections) {
        if (p.value.kind == expr_kind::path) {
            std::string_view key;
            const auto* v = resolve_path(row.document(), plan.paths[p.value.path], &key);
            if (!v) continue;
            // A one-segment path takes the document's spelling (SELECT DeviceId -> "deviceId").
            if (!p.named_by_alias && plan.paths[p.value.path].segments.size() == 1 && !key.empty())
                out[key] = *v;
            else
                out[p.name] = *v;
            continue;
        }
        const qvalue v = evaluate(plan, p.value, row);
        if (v.defined()) out[p.name] = to_json(v);
    }
    return out;
}

// ---- aggregator ----

namespace {
void collect_aggregates(const expr& e, std::vector<const expr*>& out) {
    if (e.kind == expr_kind::aggregate) {
        if (e.slot >= out.size()) out.resize(e.slot + 1, nullptr);
        out[e.slot] = &e;
        return;
    }
    for (auto& c : e.children) collect_aggregates(c, out);
}
}  // namespace

aggregator::aggregator(const query_plan& plan) : plan_(plan) {
    aggregates_.resize(plan.aggregate_count, nullptr);
    for (auto& p : plan.projections) collect_aggregates(p.value, aggregates_);
    if (plan.group_by.empty()) {
        groups_.push_back(group{{}, std::vector<accumulator>(aggregates_.size())});
        index_.emplace(std::string(), 0);
    }
}

void aggregator::accumulate(const expr& e, const row_resolver& row, group& g) const {
    accumulator& a = g.acc[e.slot];
    if (e.fn == aggregate_fn::count) {
        ++a.count;
        return;
    }
    const qvalue v = evaluate(plan_, e.children[0], row);
    switch (e.fn) {
        case aggregate_fn::sum:
        case aggregate_fn::avg:
            if (v.k != qvalue::kind::number) return;
            ++a.count;
            a.sum += v.n;
            return;
        case aggregate_fn::min:
        case aggregate_fn::max: {
            const int rank = kind_rank(v.k);
            if (rank < 0) return;
            ++a.count;
            if (!a.best.defined()) {
                a.best = v;
                return;
            }
            const int best_rank = kind_rank(a.best.k);
            int c = rank < best_rank ? -1 : (rank > best_rank ? 1 : *compare(v, a.best));
            if ((e.fn == aggregate_fn::min && c < 0) || (e.fn == aggregate_fn::max && c > 0)) a.best = v;
            return;
        }
        default: return;
    }
}

void aggregator::add(const row_resolver& row) {
    group* g = nullptr;
    if (plan_.group_by.empty()) {
        g = &groups_[0];
    } else {
        std::vector<qvalue> keys;
        keys.reserve(plan_.group_by.size());
        key_.clear();
        for (std::size_t p : plan_.group_by) {
            keys.push_back(row.value(p));
            append_key(key_, keys.back());
        }
        auto [it, inserted] = index_.try_emplace(key_, groups_.size());
        if (inserted) groups_.push_back(group{std::move(keys), std::vector<accumulator>(aggregates_.size())});
        g = &groups_[it->second];
    }
    for (const expr* e : aggregates_)
        if (e) accumulate(*e, row, *g);
}

boost::json::array aggregator::finish() const {
    boost::json::array out;
    out.reserve(groups_.size());
    std::vector<qvalue> results;
    for (const auto& g : groups_) {
        results.assign(aggregates_.size(), qvalue{});
        for (std::size_t i = 0; i < aggregates_.size(); ++i) {
            const expr* e = aggregates_[i];
            if (!e) continue;
            const accumulator& a = g.acc[i];
            switch (e->fn) {
                case aggregate_fn::count: results[i] = number(static_cast<double>(a.count)); break;
                case aggregate_fn::sum:
                    if (a.count > 0) results[i] = number(a.sum);
                    break;
                case aggregate_fn::avg:
                    if (a.count > 0) results[i] = number(a.sum / static_cast<double>(a.count));
                    break;
                case aggregate_fn::min:
                case aggregate_fn::max: results[i] = a.best; break;
            }
        }
        eval_context cx{plan_, nullptr, &results, plan_.group_by.empty() ? nullptr : &g.keys};
        boost::json::object item;
        for (const auto& p : plan_.projections) {
            const qvalue v = eval(cx, p.value);
            if (v.defined()) item[p.name] = to_json(v);
        }
        out.emplace_back(std::move(item));
    }
    return out;
}

}  // namespace twinhub::query
