// twin_index: the query engine's in-memory copy of one twin collection (device twins, or module
// twins), laid out for fast queries over a million twins.
//
// Each twin is a row with a stable row id (assigned on first insert, never reused), holding the
// service twin JSON of spec 4.1. For every property path a query has used, the index keeps a column:
// one 16-byte cell per row (kind, a string hash, and the number/bool or a pointer into the row's
// JSON), in chunks of 4096 rows allocated only where some row has the path. A WHERE whose top-level
// AND contains `path = const`, `path IN [...]`, a range on a path, or IS_DEFINED(path) is answered
// by a tight scan of that one column; the rest of the condition is evaluated only on the rows the
// scan finds. Columns are built on first use (one pass over the rows) and kept current by upsert().
//
// Paging: non-aggregated results come in row-id order; a cursor is the next row id to look at and
// the number of items already returned (for TOP). Aggregated results are computed whole and paged
// by offset.
//
// Thread safety: all members may be called from any thread. Writers (upsert, erase) take an
// exclusive lock; queries take a shared lock (and briefly an exclusive one to build a column).
#pragma once

#include "common/errc.hpp"
#include "query/query_plan.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace twinhub::query {

// Where a page starts: for row-ordered results the next row id and the count already returned;
// for aggregated results the offset into the result array.
struct page_cursor {
    std::uint64_t position = 0;
    std::uint64_t returned = 0;
};

struct index_page {
    boost::json::array items;
    std::optional<page_cursor> next;  // absent on the last page
};

class twin_index {
public:
    // Most columns kept; paths past this are evaluated on the JSON of each row (slower, correct).
    static constexpr std::size_t max_columns = 256;

    twin_index();
    ~twin_index();
    twin_index(const twin_index&) = delete;
    twin_index& operator=(const twin_index&) = delete;

    // Inserts or replaces the twin stored under `key` (the row keeps its id on replace).
    void upsert(std::string_view key, boost::json::object twin);
    // Removes the twin under `key`; no-op when absent.
    void erase(std::string_view key);
    std::size_t size() const;
    std::size_t column_count() const;

    // One page of `plan` (whose collection this index holds), at most max_items items.
    index_page run(const query_plan& plan, std::size_t max_items, page_cursor from) const;

    struct table;

private:
    std::unique_ptr<table> t_;
};

}  // namespace twinhub::query
