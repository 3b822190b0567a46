#include "query/query_engine.hpp"

#include "common/encoding.hpp"
#include "query/query_evaluator.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>

namespace twinhub::query {

namespace {

std::uint64_t fingerprint(std::string_view text) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

// Opaque to clients: base64 of {"v":1,"q":<query fingerprint>,"p":<position>,"n":<returned>}.
std::string encode_continuation(const query_plan& plan, const page_cursor& c) {
    boost::json::object o;
    o["v"] = 1;
    o["q"] = std::to_string(fingerprint(plan.text));
    o["p"] = c.position;
    o["n"] = c.returned;
    return base64_encode(boost::json::serialize(o));
}

result<page_cursor> decode_continuation(const query_plan& plan, std::string_view token) {
    const error bad{errc::invalid_argument,
                    "The continuation token is not one this hub issued for this query; start the query again without "
                    "x-ms-continuation."};
    auto raw = base64_decode(token);
    if (!raw) return bad;
    boost::system::error_code ec;
    auto v = boost::json::parse(*raw, ec);
    if (ec || !v.is_object()) return bad;
    const auto& o = v.get_object();
    const auto* ver = o.if_contains("v");
    const auto* q = o.if_contains("q");
    const auto* p = o.if_contains("p");
    const auto* n = o.if_contains("n");
    if (!ver || !q || !p || !n || !q->is_string() || !ver->is_int64() || ver->get_int64() != 1) return bad;
    if (q->get_string() != std::to_string(fingerprint(plan.text))) return bad;
    auto as_u64 = [](const boost::json::value& x) -> std::optional<std::uint64_t> {
        if (x.is_uint64()) return x.get_uint64();
        if (x.is_int64() && x.get_int64() >= 0) return static_cast<std::uint64_t>(x.get_int64());
        return std::nullopt;
    };
    auto pos = as_u64(*p);
    auto ret = as_u64(*n);
    if (!pos || !ret) return bad;
    return page_cursor{*pos, *ret};
}

std::optional<store::identity_key> key_of(const boost::json::object& twin) {
    const auto* d = twin.if_contains("deviceId");
    if (!d || !d->is_string()) return std::nullopt;
    store::identity_key k{std::string(d->get_string()), {}};
    if (const auto* m = twin.if_contains("moduleId"); m && m->is_string()) k.module_id = std::string(m->get_string());
    return k;
}

}  // namespace

std::string twin_key(const store::identity_key& id) {
    if (!id.is_module()) return id.device_id;
    std::string k = id.device_id;
    k += '\0';
    k += id.module_id;
    return k;
}

query_engine::query_engine() = default;

query_engine::query_engine(service::twin_service& twins) : hub_(&twins) {
    twins.add_observer(this);  // first, so nothing changed during the load is missed
    load_all();
    refresher_ = std::jthread([this](std::stop_token st) { refresher_loop(st); });
}

query_engine::~query_engine() {
    if (refresher_.joinable()) {
        refresher_.request_stop();
        wake_.notify_all();
        refresher_.join();
    }
    if (hub_) hub_->remove_observer(this);
}

void query_engine::load_all() {
    for (bool modules : {false, true}) {
        hub_->for_each_twin(modules, [&](const boost::json::object& twin) {
            if (auto k = key_of(twin)) (modules ? modules_ : devices_).upsert(twin_key(*k), twin);
            return true;
        });
    }
}

void query_engine::on_twin_changed(const store::identity_key& id) {
    std::lock_guard l(dirty_mu_);
    dirty_.insert(id);
}

void query_engine::refresh() {
    if (!hub_) return;
    std::lock_guard g(refresh_mu_);
    std::set<store::identity_key> keys;
    {
        std::lock_guard l(dirty_mu_);
        keys.swap(dirty_);
    }
    for (const auto& k : keys) {
        twin_index& ix = k.is_module() ? modules_ : devices_;
        auto t = hub_->get_twin(k);
        if (t) ix.upsert(twin_key(k), std::move(*t));
        else ix.erase(twin_key(k));
    }
}

void query_engine::refresher_loop(std::stop_token st) {
    std::mutex m;
    std::unique_lock l(m);
    while (!st.stop_requested()) {
        wake_.wait_for(l, st, std::chrono::milliseconds(100), [] { return false; });
        if (st.stop_requested()) break;
        // Queries catch up on their own (refresh() at the start of every page), so the background
        // only keeps a large backlog from landing on one query. Coalescing in dirty_ means a twin
        // written many times between queries is re-indexed once, not once per write.
        bool large = false;
        {
            std::lock_guard d(dirty_mu_);
            large = dirty_.size() >= background_refresh_threshold;
        }
        if (large) refresh();
    }
}

void query_engine::upsert_twin(boost::json::object twin) {
    auto k = key_of(twin);
    if (!k) return;
    (k->is_module() ? modules_ : devices_).upsert(twin_key(*k), std::move(twin));
}

void query_engine::erase_twin(const store::identity_key& id) {
    (id.is_module() ? modules_ : devices_).erase(twin_key(id));
}

std::size_t query_engine::twin_count(bool modules) {
    refresh();
    return (modules ? modules_ : devices_).size();
}

result<query_page> query_engine::run(std::string_view sql, std::size_t max_items, std::string_view continuation) {
    auto plan = parse(sql);
    if (!plan) return plan.error();
    return run(*plan, max_items, continuation);
}

result<query_page> query_engine::run(const query_plan& plan, std::size_t max_items, std::string_view continuation) {
    if (max_items == 0) max_items = default_page_items;
    max_items = std::min(max_items, max_page_items);
    if (plan.from == collection::jobs) return run_jobs(plan, max_items, continuation);

    page_cursor from;
    if (!continuation.empty()) {
        auto c = decode_continuation(plan, continuation);
        if (!c) return c.error();
        from = *c;
    }

    query_page page;
    page.item_type = plan.item_type();
    refresh();  // read-your-writes: everything acknowledged so far is in the index now
    const twin_index& ix = plan.from == collection::modules ? modules_ : devices_;
    index_page r = ix.run(plan, max_items, from);
    page.items = std::move(r.items);
    if (r.next) page.continuation = encode_continuation(plan, *r.next);
    return page;
}

// devices.jobs: evaluated over the rows the job service gives, paged by offset ("jobs:<n>").
result<query_page> query_engine::run_jobs(const query_plan& plan, std::size_t max_items, std::string_view continuation) {
    query_page page;
    page.item_type = plan.item_type();
    std::vector<boost::json::object> rows;
    if (job_rows_) rows = job_rows_();
    if (plan.aggregated) {
        if (!continuation.empty()) return page;
        aggregator agg(plan);
        for (const auto& r : rows) {
            json_row row(plan, r);
            if (matches(plan, row)) agg.add(row);
        }
        page.items = agg.finish();
        return page;
    }
    std::size_t skip = 0;
    if (!continuation.empty()) {
        std::string_view c = continuation;
        if (c.substr(0, 5) != "jobs:") return error{errc::invalid_argument, "The continuation token was not issued for this query."};
        c.remove_prefix(5);
        auto [p, ec] = std::from_chars(c.data(), c.data() + c.size(), skip);
        if (ec != std::errc{} || p != c.data() + c.size())
            return error{errc::invalid_argument, "The continuation token was not issued for this query."};
    }
    const std::uint64_t limit = plan.top ? *plan.top : UINT64_MAX;
    std::size_t seen = 0;  // matching rows before this page
    bool more = false;
    for (const auto& r : rows) {
        json_row row(plan, r);
        if (!matches(plan, row)) continue;
        if (seen >= limit) break;
        if (seen++ < skip) continue;
        if (page.items.size() == max_items) {
            more = true;
            break;
        }
        page.items.push_back(project(plan, row));
    }
    if (more) page.continuation = "jobs:" + std::to_string(skip + page.items.size());
    return page;
}

}  // namespace twinhub::query
