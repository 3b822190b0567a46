// Evaluation of a query_plan over twin documents, with Azure's semantics (spec 3.7): values of
// different types never compare (the comparison is undefined), a missing path is undefined, and a
// WHERE keeps a twin only when its condition is exactly `true`. Projections drop undefined values;
// aggregates ignore values they cannot use (SUM/AVG: non-numbers) and COUNT() counts rows.
//
// Rows are reached through a row_resolver, so the same evaluator runs over plain JSON documents
// (json_row) and over the query engine's column index.
// Thread safety: the functions are pure; an aggregator is a plain value used by one thread.
#pragma once

#include "query/query_plan.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace twinhub::query {

// A value during evaluation. Strings view memory owned by the document (or by the plan for
// constants), which must outlive the value.
struct qvalue {
    enum class kind : std::uint8_t { undefined, null, boolean, number, string, array, object };
    kind k = kind::undefined;
    bool b = false;
    double n = 0;
    std::string_view s;
    const boost::json::value* json = nullptr;  // the document's value, when there is one

    static qvalue from_json(const boost::json::value* v) noexcept;
    bool defined() const noexcept { return k != kind::undefined; }
    bool is_true() const noexcept { return k == kind::boolean && b; }
};

// The JSON value a computed qvalue stands for (numbers that are integral print as integers).
// Undefined becomes null; callers omit undefined values before calling.
boost::json::value to_json(const qvalue& v);

// Looks a path up in a twin document: exact member names, except that the first segment falls back
// to a case-insensitive match (so DeviceId finds deviceId). Returns nullptr when undefined.
// `found_key` (optional) receives the document's spelling of the last member name.
const boost::json::value* resolve_path(const boost::json::object& doc, const property_path& p,
                                       std::string_view* found_key = nullptr) noexcept;

// Access to one row during evaluation.
class row_resolver {
public:
    virtual ~row_resolver() = default;
    // The value of plan.paths[path] in this row.
    virtual qvalue value(std::size_t path) const = 0;
    // The whole twin document (for SELECT * and projections).
    virtual const boost::json::object& document() const = 0;
};

// A row that is a plain twin JSON document.
class json_row final : public row_resolver {
public:
    json_row(const query_plan& plan, const boost::json::object& doc) : plan_(plan), doc_(doc) {}
    qvalue value(std::size_t path) const override { return qvalue::from_json(resolve_path(doc_, plan_.paths[path])); }
    const boost::json::object& document() const override { return doc_; }

private:
    const query_plan& plan_;
    const boost::json::object& doc_;
};

// Evaluates one expression of `plan` over a row (no aggregates: they evaluate to undefined here).
qvalue evaluate(const query_plan& plan, const expr& e, const row_resolver& row);

// True when the plan has no WHERE or its condition is exactly true for the row.
bool matches(const query_plan& plan, const row_resolver& row);

// The output item of a non-aggregated query for one row: the whole document for SELECT *, else an
// object of the projections (undefined values are left out).
boost::json::object project(const query_plan& plan, const row_resolver& row);

// Groups and aggregates rows of an aggregated plan. Without GROUP BY there is exactly one group,
// even over no rows (so COUNT() over nothing is 0). Values seen by add() must stay alive until
// finish() (the caller holds its read view for the whole aggregation).
class aggregator {
public:
    explicit aggregator(const query_plan& plan);
    void add(const row_resolver& row);
    // One object per group, in the order groups were first seen.
    boost::json::array finish() const;

private:
    struct accumulator {
        std::int64_t count = 0;  // values used (rows for COUNT)
        double sum = 0;
        qvalue best;  // MIN / MAX
    };
    struct group {
        std::vector<qvalue> keys;
        std::vector<accumulator> acc;
    };
    void accumulate(const expr& e, const row_resolver& row, group& g) const;

    const query_plan& plan_;
    std::unordered_map<std::string, std::size_t> index_;
    std::vector<group> groups_;
    std::vector<const expr*> aggregates_;  // by slot
    std::string key_;                       // scratch
};

}  // namespace twinhub::query
