// The parsed form of an IoT Hub twin query (spec 3.7): SELECT [TOP n] <* | projections> FROM <collection>
// [WHERE <condition>] [GROUP BY <paths>]. A plan is produced by query::parse() (query_parser.hpp),
// already checked for the type and shape errors that do not depend on data, and is evaluated by
// query_evaluator.hpp over twins.
// Thread safety: a plan is an immutable value once parsed; share it freely between threads.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace twinhub::query {

enum class collection { devices, modules, jobs };

// One step of a property path: a member name (tags, location, $version), or an array index from
// `path[2]`. Member names of `path['key']` are members too.
struct path_segment {
    std::string name;
    std::optional<std::size_t> index;  // set for array subscripts; name is then empty
};

// A property path into the twin document, e.g. tags.location.region. The first segment is matched
// case-insensitively when no exact member exists (the documentation's `SELECT DeviceId ...` returns
// "deviceId"); deeper segments are case-sensitive like twin keys.
struct property_path {
    std::vector<path_segment> segments;
    std::string text;  // canonical dotted text, used to deduplicate paths and name projections
};

enum class expr_kind : std::uint8_t {
    constant,    // literal (including array constants and `undefined`)
    path,        // property path, by index into query_plan::paths
    logical_not, // NOT e
    negate,      // unary minus
    binary,      // arithmetic, comparison, AND, OR
    in_list,     // e IN [..] / e NIN [..] (negated = NIN)
    is_defined,  // IS_DEFINED(path)
    aggregate,   // COUNT() AVG(e) SUM(e) MIN(e) MAX(e); only in SELECT
};

enum class binary_op : std::uint8_t { add, sub, mul, div, mod, eq, ne, lt, gt, le, ge, logical_and, logical_or };

enum class aggregate_fn : std::uint8_t { count, avg, sum, min, max };

struct expr {
    expr_kind kind = expr_kind::constant;
    binary_op op = binary_op::eq;
    aggregate_fn fn = aggregate_fn::count;
    bool negated = false;         // NIN
    bool undefined = false;       // the `undefined` constant
    boost::json::value constant;  // constant value; for in_list the array of constants
    std::size_t path = 0;         // expr_kind::path / is_defined: index into query_plan::paths
    std::size_t position = 0;     // character offset in the query text, for messages
    std::size_t slot = 0;         // aggregate: index of its accumulator within the query
    std::uint32_t depth = 1;      // height of this subtree (bounded by the parser)
    std::vector<expr> children;   // operands (0, 1 or 2)
};

struct projection {
    expr value;
    std::string name;           // output key: the alias, else the last path segment, else "$<n>"
    bool named_by_alias = false;
    bool has_aggregate = false;
};

struct query_plan {
    std::string text;  // the query as given
    collection from = collection::devices;
    std::optional<std::uint64_t> top;
    bool select_all = false;              // SELECT *
    std::vector<projection> projections;  // empty when select_all
    std::optional<expr> where;
    std::vector<std::size_t> group_by;    // indices into paths
    std::vector<property_path> paths;     // every distinct path the query reads
    bool aggregated = false;              // any aggregate in SELECT, or GROUP BY
    std::size_t aggregate_count = 0;      // number of aggregate nodes (slots 0..n-1)

    // "twin" for SELECT * over devices or modules, "deviceJob" for devices.jobs, else "raw".
    const char* item_type() const noexcept;
};

}  // namespace twinhub::query
