// The twin query engine behind POST /devices/query (spec 3.7): parses a query, runs it over the
// hub's device or module twins and returns one page with an opaque continuation token.
//
// How it stays fast and read-your-writes. The engine keeps its own column index of the twins
// (twin_index.hpp). Attached to the twin_service it registers as a change_observer: every twin
// change (on_twin_changed) marks the twin's key dirty under the hub's lock, before the write's
// handler runs. Each page first re-reads the dirty twins (twin_service::get_twin) into the index, so every
// write acknowledged before the page was requested is in its result. A background thread does the
// same every 100 ms so that the backlog stays small (after a bulk import, for example).
//
// Paging semantics. A continuation names the next row (twins in the order they first appeared in
// the hub) and, for TOP, how many items were already returned; aggregated results are paged by
// offset. Each page is evaluated against the hub as it is when that page is requested (like Azure,
// a query is not a snapshot across pages): a twin updated between pages shows its new state if its
// row is still ahead; twins created after the first page come at the end. A page never repeats a
// row of an earlier page (rows ahead of the cursor only) and the last page carries no continuation.
//
// Thread safety: all members may be called from any thread. The twin_service must outlive the engine.
#pragma once

#include "common/errc.hpp"
#include "query/query_parser.hpp"
#include "query/query_plan.hpp"
#include "query/twin_index.hpp"
#include "service/change_notifier.hpp"
#include "service/twin_service.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <condition_variable>
#include <functional>
#include <cstddef>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

namespace twinhub::query {

// Page size when the client sends no x-ms-max-item-count, and the largest page served (larger
// requests are capped, not refused).
inline constexpr std::size_t default_page_items = 100;
inline constexpr std::size_t max_page_items = 1000;

struct query_page {
    boost::json::array items;
    std::optional<std::string> continuation;  // absent on the last page
    std::string item_type;                    // x-ms-item-type: "twin", "raw" or "deviceJob"
};

class query_engine final : public service::change_observer {
public:
    // Standalone engine fed through upsert_twin/erase_twin (tests, benchmarks).
    query_engine();
    // Attached engine: registers with `twins` (before the hub serves) and loads every twin.
    explicit query_engine(service::twin_service& twins);
    ~query_engine() override;
    query_engine(const query_engine&) = delete;
    query_engine& operator=(const query_engine&) = delete;

    // Standalone feeding: a service twin JSON (deviceId, optional moduleId); erase by key.
    void upsert_twin(boost::json::object twin);
    void erase_twin(const store::identity_key& id);

    // One page. max_items 0 means the default; above max_page_items it is capped. continuation is
    // empty for the first page. Fails with invalid_argument for a query error (position and
    // expectation in the message) or a continuation that was not issued for this query.
    result<query_page> run(std::string_view sql, std::size_t max_items, std::string_view continuation);
    result<query_page> run(const query_plan& plan, std::size_t max_items, std::string_view continuation);

    std::size_t twin_count(bool modules);

    // The rows of devices.jobs (one object per job and device, see jobs/job_service.hpp), read
    // for each page of a devices.jobs query; without a source that collection is empty. Set
    // before serving.
    using row_source = std::function<std::vector<boost::json::object>()>;
    void set_job_rows(row_source s) { job_rows_ = std::move(s); }

    void on_twin_changed(const store::identity_key& id) override;

private:
    void load_all();
    void refresh();
    void refresher_loop(std::stop_token st);
    static constexpr std::size_t background_refresh_threshold = 10000;

    result<query_page> run_jobs(const query_plan& plan, std::size_t max_items, std::string_view continuation);

    service::twin_service* hub_ = nullptr;
    row_source job_rows_;
    twin_index devices_;
    twin_index modules_;

    std::mutex dirty_mu_;
    std::set<store::identity_key> dirty_;
    std::mutex refresh_mu_;  // one refresh at a time; a page waits for one in progress
    std::condition_variable_any wake_;
    std::jthread refresher_;
};

// The index key of a twin: deviceId, or deviceId NUL moduleId.
std::string twin_key(const store::identity_key& id);

}  // namespace twinhub::query
