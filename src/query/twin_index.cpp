#include "query/twin_index.hpp"

#include "query/query_evaluator.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <mutex>

namespace twinhub::query {

namespace {

constexpr unsigned chunk_bits = 12;
constexpr std::size_t chunk_size = std::size_t{1} << chunk_bits;

std::uint32_t hash32(std::string_view s) noexcept {
    // FNV-1a: cheap, good enough to skip almost every unequal string without touching it.
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return h;
}

struct cell {
    qvalue::kind k = qvalue::kind::undefined;
    std::uint32_t hash = 0;  // strings
    union {
        double n = 0;
        bool b;
        const boost::json::value* v;  // strings, arrays, objects: the row's own value
    };
};
static_assert(sizeof(cell) == 16);

cell make_cell(const boost::json::value* v) noexcept {
    cell c;
    if (!v) return c;
    const qvalue q = qvalue::from_json(v);
    c.k = q.k;
    switch (q.k) {
        case qvalue::kind::number: c.n = q.n; break;
        case qvalue::kind::boolean: c.b = q.b; break;
        case qvalue::kind::string:
            c.hash = hash32(q.s);
            c.v = v;
            break;
        case qvalue::kind::array:
        case qvalue::kind::object: c.v = v; break;
        default: break;
    }
    return c;
}

qvalue cell_value(const cell& c) noexcept {
    qvalue q;
    q.k = c.k;
    switch (c.k) {
        case qvalue::kind::number: q.n = c.n; break;
        case qvalue::kind::boolean: q.b = c.b; break;
        case qvalue::kind::string:
            q.json = c.v;
            q.s = std::string_view(c.v->get_string().data(), c.v->get_string().size());
            break;
        case qvalue::kind::array:
        case qvalue::kind::object: q.json = c.v; break;
        default: break;
    }
    return q;
}

struct column {
    property_path path;
    std::vector<std::unique_ptr<std::array<cell, chunk_size>>> chunks;

    const cell* get(std::uint64_t row) const noexcept {
        const std::size_t ci = static_cast<std::size_t>(row >> chunk_bits);
        if (ci >= chunks.size() || !chunks[ci]) return nullptr;
        return &(*chunks[ci])[row & (chunk_size - 1)];
    }
    void set(std::uint64_t row, const cell& c) {
        const std::size_t ci = static_cast<std::size_t>(row >> chunk_bits);
        if (ci >= chunks.size()) {
            if (c.k == qvalue::kind::undefined) return;
            chunks.resize(ci + 1);
        }
        if (!chunks[ci]) {
            if (c.k == qvalue::kind::undefined) return;
            chunks[ci] = std::make_unique<std::array<cell, chunk_size>>();
        }
        (*chunks[ci])[row & (chunk_size - 1)] = c;
    }
};

struct row {
    std::string key;
    std::unique_ptr<boost::json::object> doc;  // null once erased; heap-held so cells stay valid
};

// A conjunct of the WHERE that one column can answer on its own.
struct driver {
    enum class kind { eq, in, range, defined } k = kind::defined;
    std::size_t path = 0;
    binary_op op = binary_op::eq;  // for range: path <op> constant
    std::vector<cell> constants;   // eq: one; in: the list; range: one
};

binary_op flip(binary_op op) {
    switch (op) {
        case binary_op::lt: return binary_op::gt;
        case binary_op::gt: return binary_op::lt;
        case binary_op::le: return binary_op::ge;
        case binary_op::ge: return binary_op::le;
        default: return op;
    }
}

int driver_rank(driver::kind k) {
    switch (k) {
        case driver::kind::eq: return 0;
        case driver::kind::in: return 1;
        case driver::kind::range: return 2;
        default: return 3;
    }
}

std::optional<driver> driver_of(const expr& e) {
    if (e.kind == expr_kind::is_defined) return driver{driver::kind::defined, e.path, binary_op::eq, {}};
    if (e.kind == expr_kind::in_list && !e.negated && e.children[0].kind == expr_kind::path) {
        driver d{driver::kind::in, e.children[0].path, binary_op::eq, {}};
        for (const auto& c : e.constant.get_array()) d.constants.push_back(make_cell(&c));
        return d;
    }
    if (e.kind != expr_kind::binary) return std::nullopt;
    switch (e.op) {
        case binary_op::eq:
        case binary_op::lt:
        case binary_op::gt:
        case binary_op::le:
        case binary_op::ge: break;
        default: return std::nullopt;
    }
    const expr* p = &e.children[0];
    const expr* c = &e.children[1];
    binary_op op = e.op;
    if (p->kind != expr_kind::path) {
        std::swap(p, c);
        op = flip(op);
    }
    if (p->kind != expr_kind::path || c->kind != expr_kind::constant || c->undefined) return std::nullopt;
    if (c->constant.is_array() || c->constant.is_object()) return std::nullopt;
    driver d{op == binary_op::eq ? driver::kind::eq : driver::kind::range, p->path, op, {make_cell(&c->constant)}};
    return d;
}

void collect_conjuncts(const expr& e, std::vector<const expr*>& out) {
    if (e.kind == expr_kind::binary && e.op == binary_op::logical_and) {
        collect_conjuncts(e.children[0], out);
        collect_conjuncts(e.children[1], out);
        return;
    }
    out.push_back(&e);
}

std::optional<driver> choose_driver(const query_plan& plan) {
    if (!plan.where) return std::nullopt;
    std::vector<const expr*> conj;
    collect_conjuncts(*plan.where, conj);
    std::optional<driver> best;
    for (const expr* c : conj) {
        auto d = driver_of(*c);
        if (d && (!best || driver_rank(d->k) < driver_rank(best->k))) best = std::move(d);
    }
    return best;
}

inline bool cell_equal(const cell& a, const cell& b) noexcept {
    if (a.k != b.k) return false;
    switch (a.k) {
        case qvalue::kind::number: return a.n == b.n;
        case qvalue::kind::boolean: return a.b == b.b;
        case qvalue::kind::null: return true;
        case qvalue::kind::string: return a.hash == b.hash && a.v->get_string() == b.v->get_string();
        default: return false;
    }
}

inline bool driver_accepts(const driver& d, const cell& c) noexcept {
    switch (d.k) {
        case driver::kind::defined: return c.k != qvalue::kind::undefined;
        case driver::kind::eq: return cell_equal(c, d.constants[0]);
        case driver::kind::in:
            for (const auto& k : d.constants)
                if (cell_equal(c, k)) return true;
            return false;
        case driver::kind::range: {
            const cell& k = d.constants[0];
            if (c.k != k.k) return false;
            int cmp = 0;
            switch (c.k) {
                case qvalue::kind::number: cmp = c.n < k.n ? -1 : (c.n > k.n ? 1 : 0); break;
                case qvalue::kind::boolean: cmp = static_cast<int>(c.b) - static_cast<int>(k.b); break;
                case qvalue::kind::string: {
                    const auto& a = c.v->get_string();
                    const auto& b = k.v->get_string();
                    const int r = std::string_view(a.data(), a.size()).compare(std::string_view(b.data(), b.size()));
                    cmp = r < 0 ? -1 : (r > 0 ? 1 : 0);
                    break;
                }
                case qvalue::kind::null: cmp = 0; break;
                default: return false;
            }
            switch (d.op) {
                case binary_op::lt: return cmp < 0;
                case binary_op::gt: return cmp > 0;
                case binary_op::le: return cmp <= 0;
                case binary_op::ge: return cmp >= 0;
                default: return false;
            }
        }
    }
    return false;
}

void collect_paths(const expr& e, std::vector<std::size_t>& out) {
    if (e.kind == expr_kind::path || e.kind == expr_kind::is_defined) out.push_back(e.path);
    for (auto& c : e.children) collect_paths(c, out);
}

}  // namespace

struct twin_index::table {
    mutable std::shared_mutex mu;
    std::vector<row> rows;
    std::unordered_map<std::string, std::uint64_t> by_key;
    std::size_t live = 0;
    std::vector<std::unique_ptr<column>> columns;
    std::unordered_map<std::string, column*> column_by_path;

    void fill(column& c, std::uint64_t r) const {
        const auto& doc = rows[r].doc;
        c.set(r, doc ? make_cell(resolve_path(*doc, c.path)) : cell{});
    }

    // Columns for the paths the query filters, groups or aggregates on; nullptr where none could be
    // made (the evaluator then reads the row's JSON).
    std::vector<const column*> columns_for(const query_plan& plan) {
        std::vector<std::size_t> used;
        if (plan.where) collect_paths(*plan.where, used);
        if (plan.aggregated) {
            for (auto& p : plan.projections) collect_paths(p.value, used);
            used.insert(used.end(), plan.group_by.begin(), plan.group_by.end());
        }
        std::vector<const column*> out(plan.paths.size(), nullptr);
        bool missing = false;
        {
            std::shared_lock l(mu);
            for (std::size_t p : used) {
                auto it = column_by_path.find(plan.paths[p].text);
                if (it != column_by_path.end()) out[p] = it->second;
                else missing = true;
            }
        }
        if (!missing) return out;
        std::unique_lock l(mu);
        for (std::size_t p : used) {
            if (out[p]) continue;
            auto it = column_by_path.find(plan.paths[p].text);
            if (it != column_by_path.end()) {
                out[p] = it->second;
                continue;
            }
            if (columns.size() >= max_columns) continue;
            auto c = std::make_unique<column>();
            c->path = plan.paths[p];
            c->chunks.resize((rows.size() + chunk_size - 1) / chunk_size);
            for (std::uint64_t r = 0; r < rows.size(); ++r) fill(*c, r);
            column_by_path.emplace(c->path.text, c.get());
            out[p] = c.get();
            columns.push_back(std::move(c));
        }
        return out;
    }
};

namespace {

class index_row final : public row_resolver {
public:
    index_row(const query_plan& plan, const std::vector<row>& rows, const std::vector<const column*>& cols)
        : plan_(plan), rows_(rows), cols_(cols) {}
    void at(std::uint64_t r) { row_ = r; }
    qvalue value(std::size_t path) const override {
        if (const column* c = cols_[path]) {
            const cell* x = c->get(row_);
            return x ? cell_value(*x) : qvalue{};
        }
        return qvalue::from_json(resolve_path(*rows_[row_].doc, plan_.paths[path]));
    }
    const boost::json::object& document() const override { return *rows_[row_].doc; }

private:
    const query_plan& plan_;
    const std::vector<row>& rows_;
    const std::vector<const column*>& cols_;
    std::uint64_t row_ = 0;
};

}  // namespace

twin_index::twin_index() : t_(std::make_unique<table>()) {}
twin_index::~twin_index() = default;

void twin_index::upsert(std::string_view key, boost::json::object twin) {
    auto doc = std::make_unique<boost::json::object>(std::move(twin));
    std::unique_ptr<boost::json::object> old;  // freed after the lock is released
    std::unique_lock l(t_->mu);
    auto [it, inserted] = t_->by_key.try_emplace(std::string(key), t_->rows.size());
    const std::uint64_t r = it->second;
    if (inserted) {
        t_->rows.push_back(row{std::string(key), std::move(doc)});
        ++t_->live;
    } else {
        old = std::move(t_->rows[r].doc);
        t_->rows[r].doc = std::move(doc);
    }
    for (auto& c : t_->columns) t_->fill(*c, r);
}

void twin_index::erase(std::string_view key) {
    std::unique_ptr<boost::json::object> old;
    std::unique_lock l(t_->mu);
    auto it = t_->by_key.find(std::string(key));
    if (it == t_->by_key.end()) return;
    const std::uint64_t r = it->second;
    t_->by_key.erase(it);
    old = std::move(t_->rows[r].doc);
    t_->rows[r].key.clear();
    --t_->live;
    for (auto& c : t_->columns) t_->fill(*c, r);
}

std::size_t twin_index::size() const {
    std::shared_lock l(t_->mu);
    return t_->live;
}

std::size_t twin_index::column_count() const {
    std::shared_lock l(t_->mu);
    return t_->columns.size();
}

index_page twin_index::run(const query_plan& plan, std::size_t max_items, page_cursor from) const {
    index_page page;
    const std::vector<const column*> cols = t_->columns_for(plan);
    const std::optional<driver> drv = choose_driver(plan);
    std::shared_lock l(t_->mu);
    const auto& rows = t_->rows;
    index_row res(plan, rows, cols);

    // Calls visit(row) for each live row from `start` on that satisfies WHERE, until it returns false.
    auto scan = [&](std::uint64_t start, const std::function<bool(std::uint64_t)>& visit) {
        auto check = [&](std::uint64_t r) {
            res.at(r);
            return matches(plan, res) ? visit(r) : true;
        };
        const column* dc = drv ? cols[drv->path] : nullptr;
        if (!dc) {
            for (std::uint64_t r = start; r < rows.size(); ++r)
                if (rows[r].doc && !check(r)) return;
            return;
        }
        for (std::size_t ci = static_cast<std::size_t>(start >> chunk_bits); ci < dc->chunks.size(); ++ci) {
            const auto* chunk = dc->chunks[ci].get();
            if (!chunk) continue;  // no row of this chunk has the path: the driver cannot accept any
            const std::uint64_t base = static_cast<std::uint64_t>(ci) << chunk_bits;
            const std::size_t first = base < start ? static_cast<std::size_t>(start - base) : 0;
            for (std::size_t i = first; i < chunk_size; ++i) {
                if (!driver_accepts(*drv, (*chunk)[i])) continue;
                const std::uint64_t r = base + i;
                if (r < rows.size() && rows[r].doc && !check(r)) return;
            }
        }
    };

    if (plan.aggregated) {
        aggregator agg(plan);
        scan(0, [&](std::uint64_t) {
            agg.add(res);
            return true;
        });
        boost::json::array all = agg.finish();
        std::uint64_t total = all.size();
        if (plan.top) total = std::min<std::uint64_t>(total, *plan.top);
        const std::uint64_t begin = std::min<std::uint64_t>(from.position, total);
        const std::uint64_t end = std::min<std::uint64_t>(begin + max_items, total);
        for (std::uint64_t i = begin; i < end; ++i) page.items.push_back(std::move(all[static_cast<std::size_t>(i)]));
        if (end < total) page.next = page_cursor{end, end};
        return page;
    }

    std::uint64_t limit = max_items;
    if (plan.top) {
        if (from.returned >= *plan.top) return page;
        limit = std::min<std::uint64_t>(limit, *plan.top - from.returned);
    }
    const bool top_bound = plan.top && from.returned + limit >= *plan.top;
    scan(from.position, [&](std::uint64_t r) {
        if (page.items.size() < limit) {
            page.items.emplace_back(project(plan, res));
            return !(top_bound && page.items.size() == limit);
        }
        // One more match exists: it starts the next page.
        page.next = page_cursor{r, from.returned + page.items.size()};
        return false;
    });
    return page;
}

}  // namespace twinhub::query
