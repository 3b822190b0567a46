#include "jobs/job_service.hpp"

#include "common/error_mapping.hpp"
#include "common/log.hpp"
#include "jobs/job_state.hpp"
#include "methods/method_router.hpp"
#include "query/query_engine.hpp"
#include "query/query_parser.hpp"
#include "service/hub_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace twinhub::jobs {

namespace json = boost::json;

namespace {

std::string job_key(std::string_view id) { return "job/" + std::string(id); }
std::string chunk_key(std::string_view id, std::size_t c) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06zu", c);
    return "jobdev/" + std::string(id) + "/" + buf;
}
std::int64_t ns_now() { return now().time_since_epoch().count(); }

}  // namespace

struct job_service::impl {
    service::hub_service& hub;
    query::query_engine& queries;
    methods::method_router* methods;
    job_options opts;

    struct entry {
        std::shared_ptr<job_record> rec;
        bool persisted = false;
        std::size_t chunks = 0;
    };

    mutable std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, entry, std::less<>> jobs;
    std::vector<std::string> order;  // creation order
    bool stopping = false;
    bool started = false;
    std::thread worker;
    std::size_t in_flight = 0;

    impl(service::hub_service& h, query::query_engine& q, methods::method_router* m, job_options o)
        : hub(h), queries(q), methods(m), opts(o) {}

    // Blocks the calling thread (never one holding `mu`) until the setting is durable.
    result<void> put_sync(std::string key, std::string doc) {
        auto p = std::make_shared<std::promise<result<void>>>();
        auto f = p->get_future();
        hub.put_setting(std::move(key), std::move(doc), [p](result<void> r) { p->set_value(std::move(r)); });
        return f.get();
    }

    std::string job_doc(const entry& e) const { return json::serialize(to_storage(*e.rec, e.chunks)); }

    void persist_job(const std::string& id) {
        std::string doc;
        {
            std::lock_guard lock(mu);
            auto it = jobs.find(id);
            if (it == jobs.end()) return;
            doc = job_doc(it->second);
        }
        if (auto r = put_sync(job_key(id), std::move(doc)); !r)
            log::warn("jobs.persist_failed", {{"job", id}, {"error", r.error().message}});
    }

    void persist_chunk(const std::string& id, std::size_t c) {
        std::string doc;
        {
            std::lock_guard lock(mu);
            auto it = jobs.find(id);
            if (it == jobs.end()) return;
            const auto& d = it->second.rec->devices;
            const std::size_t from = c * opts.chunk_size, to = std::min(d.size(), from + opts.chunk_size);
            doc = json::serialize(chunk_to_storage(d, from, to));
        }
        if (auto r = put_sync(chunk_key(id, c), std::move(doc)); !r)
            log::warn("jobs.persist_failed", {{"job", id}, {"error", r.error().message}});
    }

    void load() {
        for (auto& [key, doc] : hub.settings_with_prefix("job/")) {
            boost::system::error_code ec;
            auto v = json::parse(doc, ec);
            std::size_t chunks = 0;
            auto rec = ec ? result<job_record>(error{errc::corrupt_data, "bad json"}) : from_storage(v, chunks);
            if (!rec) {
                log::warn("jobs.load_skipped", {{"key", key}});
                continue;
            }
            auto j = std::make_shared<job_record>(std::move(*rec));
            for (std::size_t c = 0; c < chunks; ++c) {
                auto cd = hub.setting(chunk_key(j->req.job_id, c));
                if (!cd) break;
                auto cv2 = json::parse(*cd, ec);
                if (ec || !chunk_from_storage(cv2, j->devices)) {
                    log::warn("jobs.chunk_skipped", {{"job", j->req.job_id}});
                    break;
                }
            }
            // A device in flight when the hub stopped is done again.
            for (auto& d : j->devices)
                if (d.status == device_status::running) d.status = device_status::pending;
            if (j->status == job_status::queued || j->status == job_status::scheduled)
                j->status = waiting_status(j->req.start_time, now());
            entry e;
            e.rec = j;
            e.persisted = true;
            e.chunks = chunks;
            order.push_back(j->req.job_id);
            jobs.emplace(j->req.job_id, std::move(e));
        }
        std::sort(order.begin(), order.end(), [this](const std::string& a, const std::string& b) {
            return jobs.at(a).rec->created_time < jobs.at(b).rec->created_time;
        });
    }

    // The next job to run (resumed running jobs first, then due ones in creation order), or null
    // with `wake` set to the next start time.
    std::shared_ptr<job_record> next_due(time_point t, std::optional<time_point>& wake) {
        for (auto& id : order) {
            auto& e = jobs.at(id);
            if (e.persisted && e.rec->status == job_status::running) return e.rec;
        }
        for (auto& id : order) {
            auto& e = jobs.at(id);
            auto s = e.rec->status;
            if (!e.persisted || (s != job_status::queued && s != job_status::scheduled)) continue;
            if (e.rec->req.start_time <= t) return e.rec;
            if (!wake || e.rec->req.start_time < *wake) wake = e.rec->req.start_time;
        }
        return nullptr;
    }

    void loop() {
        std::unique_lock lock(mu);
        while (!stopping) {
            std::optional<time_point> wake;
            auto j = next_due(now(), wake);
            if (!j) {
                if (wake) cv.wait_until(lock, *wake);
                else cv.wait(lock);
                continue;
            }
            j->status = job_status::running;
            if (!j->run_time) j->run_time = now();
            lock.unlock();
            run(j);
            lock.lock();
        }
    }

    bool resolve(const std::shared_ptr<job_record>& j) {
        auto plan = query::parse("SELECT deviceId FROM devices WHERE " + j->req.query_condition);
        std::vector<device_outcome> found;
        std::string cont;
        std::optional<error> failed;
        if (!plan) failed = plan.error();
        while (!failed) {
            auto page = queries.run(*plan, query::max_page_items, cont);
            if (!page) {
                failed = page.error();
                break;
            }
            for (auto& it : page->items) {
                auto* d = it.is_object() ? it.get_object().if_contains("deviceId") : nullptr;
                if (d && d->is_string()) {
                    device_outcome o;
                    o.device_id = std::string(d->get_string());
                    found.push_back(std::move(o));
                }
            }
            if (!page->continuation) break;
            cont = *page->continuation;
        }
        const std::string& id = j->req.job_id;
        std::size_t chunks = 0;
        {
            std::lock_guard lock(mu);
            if (failed) {
                j->status = job_status::failed;
                j->failure_reason = "The query condition could not be evaluated: " + failed->message;
                j->end_time = now();
            } else {
                j->devices = std::move(found);
                chunks = (j->devices.size() + opts.chunk_size - 1) / opts.chunk_size;
                jobs.at(id).chunks = chunks;
            }
        }
        if (failed) {
            persist_job(id);
            return false;
        }
        for (std::size_t c = 0; c < chunks; ++c) persist_chunk(id, c);
        {
            std::lock_guard lock(mu);
            j->resolved = true;
        }
        persist_job(id);
        return true;
    }

    // Starts the operation for device i; the completion records its outcome.
    void start_device(const std::shared_ptr<job_record>& j, std::size_t i, std::set<std::size_t>& done_chunks,
                      std::vector<std::size_t>& chunk_left) {
        identity_key key{j->devices[i].device_id, ""};
        auto finish = [this, j, i, &done_chunks, &chunk_left](device_status st, int mstatus, std::string payload,
                                                             std::optional<error> e) {
            std::lock_guard lock(mu);
            auto& d = j->devices[i];
            if (e && e->code == errc::shutting_down && stopping) {
                d.status = device_status::pending;  // done again after the restart
            } else {
                d.status = st;
                d.end_ns = ns_now();
                d.method_status = mstatus;
                d.payload = std::move(payload);
                if (e) {
                    d.error_code = to_wire(e->code).code_name;
                    d.error_description = e->message;
                }
            }
            const std::size_t c = i / opts.chunk_size;
            if (--chunk_left[c] == 0) done_chunks.insert(c);
            --in_flight;
            cv.notify_all();
        };
        if (j->req.type == job_type::update_twin) {
            hub.patch_twin(std::move(key), json::value(j->req.twin_patch), "",
                           [finish](result<json::object> r) {
                               if (r) finish(device_status::completed, 0, {}, std::nullopt);
                               else finish(device_status::failed, 0, {}, r.error());
                           });
            return;
        }
        if (!methods) return finish(device_status::failed, 0, {}, error{errc::device_not_online, "Direct methods are not served."});
        methods::invoke_options o;
        o.response_timeout = std::chrono::seconds(j->req.response_timeout_s);
        o.connect_timeout = std::chrono::seconds(j->req.connect_timeout_s);
        methods->invoke(std::move(key), j->req.method_name, j->req.payload, o,
                        [finish](result<methods::method_response> r) {
                            if (r) finish(device_status::completed, r->status, std::move(r->payload), std::nullopt);
                            else finish(device_status::failed, 0, {}, r.error());
                        });
    }

    void flush_chunks(const std::string& id, std::set<std::size_t>& done_chunks) {
        std::vector<std::size_t> todo;
        {
            std::lock_guard lock(mu);
            todo.assign(done_chunks.begin(), done_chunks.end());
            done_chunks.clear();
        }
        for (auto c : todo) persist_chunk(id, c);
    }

    void run(const std::shared_ptr<job_record>& j) {
        const std::string id = j->req.job_id;
        log::info("jobs.running", {{"job", id}});
        persist_job(id);
        bool resolved = false;
        {
            std::lock_guard lock(mu);
            resolved = j->resolved;
        }
        if (!resolved && !resolve(j)) return;

        const std::size_t window = j->req.type == job_type::update_twin ? opts.twin_window : opts.method_window;
        const time_point deadline = *j->run_time + std::chrono::seconds(j->req.max_execution_s);
        std::set<std::size_t> done_chunks;
        std::vector<std::size_t> chunk_left;
        bool timed_out = false;
        {
            std::unique_lock lock(mu);
            const std::size_t n = j->devices.size();
            chunk_left.assign((n + opts.chunk_size - 1) / opts.chunk_size, 0);
            for (std::size_t i = 0; i < n; ++i)
                if (j->devices[i].status == device_status::pending) ++chunk_left[i / opts.chunk_size];
            for (std::size_t i = 0; i < n; ++i) {
                if (j->devices[i].status != device_status::pending) continue;
                cv.wait(lock, [&] { return in_flight < window || stopping || j->status != job_status::running; });
                if (stopping || j->status != job_status::running) break;
                if (now() >= deadline) {
                    timed_out = true;
                    break;
                }
                j->devices[i].status = device_status::running;
                j->devices[i].start_ns = ns_now();
                ++in_flight;
                lock.unlock();
                start_device(j, i, done_chunks, chunk_left);
                lock.lock();
                if (!done_chunks.empty()) {
                    lock.unlock();
                    flush_chunks(id, done_chunks);
                    lock.lock();
                }
            }
            cv.wait(lock, [&] { return in_flight == 0; });
        }
        flush_chunks(id, done_chunks);
        std::vector<std::size_t> touched;
        {
            std::lock_guard lock(mu);
            if (stopping && j->status == job_status::running) return;  // resumes at the next start
            const bool cancelled = j->status == job_status::cancelled;
            for (std::size_t i = 0; i < j->devices.size(); ++i) {
                auto& d = j->devices[i];
                if (d.status != device_status::pending) continue;
                if (cancelled) {
                    d.status = device_status::cancelled;
                } else {
                    d.status = device_status::failed;
                    d.error_code = "JobExecutionTimedOut";
                    d.error_description = "The job reached maxExecutionTimeInSeconds before this device was processed.";
                }
                d.end_ns = ns_now();
                if (touched.empty() || touched.back() != i / opts.chunk_size) touched.push_back(i / opts.chunk_size);
            }
            if (!cancelled) {
                if (timed_out) {
                    j->status = job_status::failed;
                    j->failure_reason = "The job did not finish within maxExecutionTimeInSeconds (" +
                                        std::to_string(j->req.max_execution_s) + " s).";
                } else {
                    j->status = job_status::completed;
                }
                j->end_time = now();
            }
        }
        for (auto c : touched) persist_chunk(id, c);
        persist_job(id);
        log::info("jobs.finished", {{"job", id}, {"status", std::string(to_string(j->status))}});
    }
};

job_service::job_service(service::hub_service& hub, query::query_engine& queries, methods::method_router* methods,
                         job_options opts)
    : impl_(std::make_unique<impl>(hub, queries, methods, opts)) {}

job_service::~job_service() { stop(); }

void job_service::start() {
    auto& m = *impl_;
    {
        std::lock_guard lock(m.mu);
        if (m.started) return;
        m.started = true;
        m.load();
    }
    m.worker = std::thread([&m] { m.loop(); });
}

void job_service::stop() {
    auto& m = *impl_;
    {
        std::lock_guard lock(m.mu);
        m.stopping = true;
    }
    m.cv.notify_all();
    if (m.worker.joinable()) m.worker.join();
}

void job_service::create(std::string job_id, const json::value& body, completion done) {
    auto& m = *impl_;
    auto req = parse_job_request(job_id, body, now());
    if (!req) return done(req.error());
    if (auto plan = query::parse("SELECT deviceId FROM devices WHERE " + req->query_condition); !plan)
        return done(error{errc::invalid_argument, "queryCondition: " + plan.error().message});
    auto rec = std::make_shared<job_record>();
    rec->req = std::move(*req);
    rec->created_time = now();
    rec->status = job_status::queued;
    std::string doc;
    {
        std::lock_guard lock(m.mu);
        if (m.stopping) return done(error{errc::shutting_down, "The hub is stopping."});
        if (m.jobs.contains(job_id))
            return done(error{errc::device_already_exists, "A job with id '" + job_id + "' already exists."});
        impl::entry e;
        e.rec = rec;
        doc = m.job_doc(e);
        m.jobs.emplace(job_id, std::move(e));
        m.order.push_back(job_id);
    }
    m.hub.put_setting(job_key(job_id), std::move(doc), [&m, rec, job_id, done = std::move(done)](result<void> r) {
        json::object out;
        {
            std::lock_guard lock(m.mu);
            if (!r) {
                m.jobs.erase(job_id);
                std::erase(m.order, job_id);
            } else {
                out = to_json(*rec);  // "queued", as IoT Hub answers the PUT
                m.jobs.at(job_id).persisted = true;
                if (rec->status == job_status::queued) rec->status = waiting_status(rec->req.start_time, now());
            }
        }
        m.cv.notify_all();
        if (!r) return done(r.error());
        done(std::move(out));
    });
}

result<json::object> job_service::get(std::string_view job_id) const {
    auto& m = *impl_;
    std::lock_guard lock(m.mu);
    auto it = m.jobs.find(job_id);
    if (it == m.jobs.end() || !it->second.persisted)
        return error{errc::not_found, "The job '" + std::string(job_id) + "' does not exist."};
    return to_json(*it->second.rec);
}

void job_service::cancel(std::string job_id, completion done) {
    auto& m = *impl_;
    json::object out;
    {
        std::lock_guard lock(m.mu);
        auto it = m.jobs.find(job_id);
        if (it == m.jobs.end() || !it->second.persisted)
            return done(error{errc::not_found, "The job '" + job_id + "' does not exist."});
        auto& j = *it->second.rec;
        if (is_terminal(j.status)) return done(to_json(j));
        j.status = job_status::cancelled;
        j.end_time = now();
        out = to_json(j);
    }
    m.cv.notify_all();
    std::string doc;
    {
        std::lock_guard lock(m.mu);
        doc = m.job_doc(m.jobs.at(job_id));
    }
    m.hub.put_setting(job_key(job_id), std::move(doc), [out = std::move(out), done = std::move(done)](result<void> r) {
        if (!r) return done(r.error());
        done(out);
    });
}

std::vector<json::object> job_service::list(std::string_view type, std::string_view status) const {
    auto& m = *impl_;
    std::vector<json::object> out;
    std::lock_guard lock(m.mu);
    for (auto it = m.order.rbegin(); it != m.order.rend(); ++it) {
        const auto& e = m.jobs.at(*it);
        if (!e.persisted) continue;
        if (!type.empty() && to_string(e.rec->req.type) != type) continue;
        if (!status.empty() && to_string(e.rec->status) != status) continue;
        out.push_back(to_json(*e.rec));
    }
    return out;
}

std::vector<json::object> job_service::device_job_rows() const {
    auto& m = *impl_;
    std::vector<json::object> out;
    std::lock_guard lock(m.mu);
    for (const auto& id : m.order) {
        const auto& e = m.jobs.at(id);
        if (!e.persisted) continue;
        for (const auto& d : e.rec->devices) out.push_back(device_row(*e.rec, d));
    }
    return out;
}

}  // namespace twinhub::jobs
