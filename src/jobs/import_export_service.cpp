#include "jobs/import_export_service.hpp"

#include "common/encoding.hpp"
#include "common/error_mapping.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "jobs/import_export.hpp"
#include "service/file_upload_service.hpp"
#include "service/hub_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace twinhub::jobs {

namespace json = boost::json;

namespace {

constexpr std::string_view key_prefix = "iejob/";
constexpr std::string_view errors_blob = "importErrors.log";

std::string new_job_id() {
    std::string h = random_hex(16);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string quote_etag(const std::string& etag) {
    if (etag.empty() || etag.front() == '"' || etag.rfind("W/", 0) == 0 || etag == "*") return etag;
    return "\"" + etag + "\"";
}

// Runs an asynchronous service call and waits for it (the worker thread only).
template <class T>
result<T> wait_for(const std::function<void(service::handler<T>)>& start) {
    auto p = std::make_shared<std::promise<result<T>>>();
    auto f = p->get_future();
    start([p](result<T> r) { p->set_value(std::move(r)); });
    return f.get();
}

struct outcome {
    ie_status status = ie_status::completed;
    std::string failure_reason;
};

outcome failed(std::string why) { return {ie_status::failed, std::move(why)}; }

// Why a container's SAS is refused at creation (IoT Hub's BlobContainerValidationError), or "".
// A HEAD on the job's blob tells a bad or expired signature (403 AuthenticationFailed) and a missing
// container from a usable SAS without writing anything; a SAS that may write but not read answers
// AuthorizationPermissionMismatch and is accepted.
std::string container_problem(const result<service::storage_client::answer>& a, std::string_view what) {
    const std::string container = std::string(what).substr(std::string(what).rfind(' ') + 1) + " blob container";
    if (!a) return "Unable to reach the " + container + ": " + a.error().message;
    if (a->status == 403 && (a->error_code != "AuthorizationPermissionMismatch" || what == "read input"))
        return "Unauthorized to " + std::string(what) + " blob container (storage answered 403 " + a->error_code + ").";
    if (a->status == 404 && a->error_code == "ContainerNotFound") return "The " + container + " does not exist.";
    if (a->status >= 500 || a->status == 400 || a->status == 401)
        return "Unable to use the " + container + ": storage answered " + std::to_string(a->status) + " " + a->error_code + ".";
    return {};
}

}  // namespace

struct import_export_service::impl {
    service::hub_service& hub;
    service::storage_client& storage;
    import_export_options opts;

    mutable std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, ie_job, std::less<>> jobs;
    std::uint64_t next_seq = 1;
    int creating = 0;  // creates between the quota check and their persist
    bool stopping = false;
    std::thread worker;
    std::mutex persist_mu;  // snapshot + put_setting in one step: the store sees the writes in order

    impl(service::hub_service& h, service::storage_client& s, import_export_options o) : hub(h), storage(s), opts(o) {}

    void persist(const std::string& id, service::handler<void> done) {
        std::lock_guard pl(persist_mu);
        std::string doc;
        {
            std::lock_guard l(mu);
            auto it = jobs.find(id);
            if (it != jobs.end()) doc = json::serialize(to_stored_json(it->second));
        }
        hub.put_setting(std::string(key_prefix) + id, std::move(doc), std::move(done));
    }

    void persist_and_wait(const std::string& id) {
        auto r = wait_for<void>([&](service::handler<void> h) { persist(id, std::move(h)); });
        if (!r) log::warn("ie_job.persist_failed", {{"job", id}, {"why", r.error().message}});
    }

    bool cancelled(const std::string& id) {
        std::lock_guard l(mu);
        auto it = jobs.find(id);
        return stopping || it == jobs.end() || it->second.status == ie_status::cancelled;
    }

    void set_progress(const std::string& id, int p) {
        std::lock_guard l(mu);
        if (auto it = jobs.find(id); it != jobs.end()) it->second.progress = p;
    }

    // Forgets the oldest finished jobs beyond max_jobs.
    void prune() {
        std::vector<std::string> drop;
        {
            std::lock_guard l(mu);
            if (jobs.size() <= opts.max_jobs) return;
            std::vector<std::pair<std::uint64_t, std::string>> done_jobs;
            for (auto& [id, j] : jobs)
                if (is_terminal(j.status)) done_jobs.emplace_back(j.seq, id);
            std::sort(done_jobs.begin(), done_jobs.end());
            for (std::size_t i = 0; i < done_jobs.size() && jobs.size() - drop.size() > opts.max_jobs; ++i)
                drop.push_back(done_jobs[i].second);
            for (auto& id : drop) jobs.erase(id);
        }
        std::lock_guard pl(persist_mu);
        for (auto& id : drop) hub.put_setting(std::string(key_prefix) + id, "", [](result<void>) {});
    }

    outcome run_export(const ie_job& job) {
        auto out = parse_container_url(job.output_uri, "outputBlobContainerUri");
        if (!out) return failed(out.error().message);
        std::vector<std::pair<std::string, json::object>> twins;
        hub.for_each_twin(false, [&](const json::object& t) {
            if (auto* id = t.if_contains("deviceId"); id && id->is_string())
                twins.emplace_back(std::string(id->get_string()), t);
            return true;
        });
        std::string text;
        std::size_t n = 0;
        for (auto& [id, twin] : twins) {
            if (++n % 1000 == 0) {
                if (cancelled(job.job_id)) return {ie_status::cancelled, {}};
                set_progress(job.job_id, static_cast<int>(n * 90 / twins.size()));
            }
            auto d = hub.get_device(id);
            if (!d) continue;  // deleted since the twins were read
            text += json::serialize(export_device(*d, twin, job.exclude_keys));
            text += "\r\n";
        }
        if (cancelled(job.job_id)) return {ie_status::cancelled, {}};
        auto put = wait_for<void>([&](service::handler<void> h) {
            storage.put_blob(blob_url(*out, job.output_blob), std::move(text), std::move(h));
        });
        if (!put) return failed("Could not write " + job.output_blob + " to the output container: " + put.error().message);
        return {};
    }

    // One import line applied; `done` gets the error, if any (on the store's or the calling thread).
    void apply(std::shared_ptr<import_entry> e, std::function<void(std::optional<error>)> done) {
        const store::identity_key key{e->device.device_id, ""};
        const bool exists = static_cast<bool>(hub.get_device(e->device.device_id));
        // A twinETag is checked against a twin that was there before the line (IoT Hub: "processed
        // independently from the device's etag"); a device the line creates has a new twin, so an
        // exported file imports into an empty hub.
        const bool check_twin_etag = !e->twin_etag.empty() && (exists || e->mode == "updatetwinifmatchetag");
        auto then_twin = [this, e, key, done, check_twin_etag](std::optional<error> err) {
            if (err || !e->twin) return done(std::move(err));
            const std::string if_match = check_twin_etag ? quote_etag(e->twin_etag) : "*";
            hub.replace_twin(key, *e->twin, if_match, [done](result<json::object> r) {
                done(r ? std::nullopt : std::optional<error>(r.error()));
            });
        };
        auto on_identity = [then_twin](result<registry::device_identity> r) {
            then_twin(r ? std::nullopt : std::optional<error>(r.error()));
        };
        auto on_void = [done](result<void> r) { done(r ? std::nullopt : std::optional<error>(r.error())); };
        const std::string& m = e->mode;
        if (m == "create") return hub.create_device(e->device, on_identity);
        if (m == "createorupdate")
            return exists ? hub.update_device(e->device, "*", on_identity) : hub.create_device(e->device, on_identity);
        if (m == "createorupdateifmatchetag")
            return exists ? hub.update_device(e->device, quote_etag(e->etag), on_identity)
                          : hub.create_device(e->device, on_identity);
        if (m == "update") return hub.update_device(e->device, "*", on_identity);
        if (m == "updateifmatchetag") return hub.update_device(e->device, quote_etag(e->etag), on_identity);
        if (m == "delete") return hub.delete_device(e->device.device_id, "*", on_void);
        if (m == "deleteifmatchetag") return hub.delete_device(e->device.device_id, quote_etag(e->etag), on_void);
        // updateTwin, updateTwinIfMatchETag
        if (!exists)
            return done(error{errc::device_not_found, "Device '" + e->device.device_id + "' not found."});
        then_twin(std::nullopt);
    }

    outcome run_import(const ie_job& job) {
        auto in = parse_container_url(job.input_uri, "inputBlobContainerUri");
        auto out = parse_container_url(job.output_uri, "outputBlobContainerUri");
        if (!in) return failed(in.error().message);
        if (!out) return failed(out.error().message);
        auto text = wait_for<std::string>([&](service::handler<std::string> h) {
            storage.get_blob(blob_url(*in, job.input_blob), std::move(h));
        });
        if (!text) return failed("Could not read " + job.input_blob + " from the input container: " + text.error().message);

        // Checked whole before anything is applied.
        std::vector<std::shared_ptr<import_entry>> entries;
        std::string log;
        std::size_t bad = 0;
        std::string first_bad;
        std::set<std::string, std::less<>> seen;
        for (auto& [number, line] : blob_lines(*text)) {
            auto e = parse_import_line(line, number);
            std::optional<error> err;
            std::string id;
            if (!e) {
                err = e.error();
            } else if (!seen.insert((*e).device.device_id).second) {
                id = e->device.device_id;
                err = error{errc::device_defined_multiple_times, "line " + std::to_string(number) + ": device '" + id +
                                                                     "' is defined more than once in the file."};
            }
            if (err) {
                if (bad++ == 0) first_bad = err->message;
                log += import_error_line(id, to_wire(err->code).code_name, err->message, "") + "\r\n";
                continue;
            }
            entries.push_back(std::make_shared<import_entry>(std::move(*e)));
        }
        auto write_log = [&](std::string body) {
            return wait_for<void>([&](service::handler<void> h) {
                storage.put_blob(blob_url(*out, errors_blob), std::move(body), std::move(h));
            });
        };
        if (bad) {
            auto w = write_log(std::move(log));
            std::string why = std::to_string(bad) + " line(s) of " + job.input_blob + " are malformed; nothing was imported. " +
                              first_bad;
            if (!w) why += " (" + std::string(errors_blob) + " could not be written: " + w.error().message + ")";
            return failed(std::move(why));
        }

        std::mutex amu;
        std::condition_variable acv;
        std::size_t in_flight = 0, finished = 0;
        std::vector<std::optional<error>> errors(entries.size());
        bool stopped = false;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            {
                std::unique_lock l(amu);
                acv.wait(l, [&] { return in_flight < opts.window; });
                if (i % 256 == 0 && cancelled(job.job_id)) {
                    stopped = true;
                    break;
                }
                ++in_flight;
            }
            apply(entries[i], [&, i](std::optional<error> err) {
                std::lock_guard l(amu);
                errors[i] = std::move(err);
                --in_flight;
                ++finished;
                acv.notify_all();
            });
            if (i % 1000 == 0) set_progress(job.job_id, static_cast<int>(i * 99 / entries.size()));
        }
        {
            std::unique_lock l(amu);
            acv.wait(l, [&] { return in_flight == 0; });
        }
        for (std::size_t i = 0; i < entries.size(); ++i) {
            if (!errors[i]) continue;
            log += import_error_line(entries[i]->device.device_id, to_wire(errors[i]->code).code_name, errors[i]->message,
                                     entries[i]->mode_as_sent) +
                   "\r\n";
        }
        auto w = write_log(std::move(log));
        if (stopped) return {ie_status::cancelled, {}};
        if (!w) return failed("Could not write " + std::string(errors_blob) + " to the output container: " + w.error().message);
        return {};
    }

    void loop() {
        while (true) {
            ie_job job;
            {
                std::unique_lock l(mu);
                const ie_job* next = nullptr;
                cv.wait(l, [&] {
                    next = nullptr;
                    for (auto& [_, j] : jobs)
                        if (j.status == ie_status::enqueued && (!next || j.seq < next->seq)) next = &j;
                    return stopping || next;
                });
                if (stopping) return;
                auto& j = jobs.at(next->job_id);
                j.status = ie_status::running;
                j.start_time = now();
                j.progress = 0;
                job = j;
            }
            persist_and_wait(job.job_id);
            log::info("ie_job.started", {{"job", job.job_id}, {"type", std::string(to_string(job.type))}});
            outcome o = job.type == ie_type::export_devices ? run_export(job) : run_import(job);
            {
                std::lock_guard l(mu);
                if (stopping) return;  // stays running in the store: the next start decides
                auto it = jobs.find(job.job_id);
                if (it == jobs.end()) continue;
                auto& j = it->second;
                if (j.status != ie_status::cancelled) {
                    j.status = o.status;
                    j.failure_reason = o.failure_reason;
                    j.end_time = now();
                    if (o.status == ie_status::completed) j.progress = 100;
                }
            }
            log::info("ie_job.finished", {{"job", job.job_id}, {"status", std::string(to_string(o.status))}});
            persist_and_wait(job.job_id);
            prune();
        }
    }
};

import_export_service::import_export_service(service::hub_service& hub, service::storage_client& storage,
                                             import_export_options opts)
    : impl_(std::make_unique<impl>(hub, storage, opts)) {}

import_export_service::~import_export_service() { stop(); }

void import_export_service::start() {
    auto& m = *impl_;
    std::vector<std::string> restarted;
    {
        std::lock_guard l(m.mu);
        for (auto& [key, doc] : m.hub.settings_with_prefix(key_prefix)) {
            boost::system::error_code ec;
            auto v = json::parse(doc, ec);
            auto j = ec ? result<ie_job>(error{errc::corrupt_data, "not JSON"}) : ie_job_from_json(v);
            if (!j) {
                log::warn("ie_job.unreadable", {{"key", key}});
                continue;
            }
            if (j->status == ie_status::running) {
                if (j->type == ie_type::export_devices) {
                    j->status = ie_status::enqueued;
                } else {
                    j->status = ie_status::failed;
                    j->end_time = now();
                    j->failure_reason = "The hub restarted while the import was running; some lines may have been "
                                        "applied. Check the devices and run the import again.";
                }
                restarted.push_back(j->job_id);
            }
            m.next_seq = std::max(m.next_seq, j->seq + 1);
            m.jobs[j->job_id] = std::move(*j);
        }
    }
    for (auto& id : restarted) m.persist_and_wait(id);
    m.worker = std::thread([&m] { m.loop(); });
}

void import_export_service::stop() {
    {
        std::lock_guard l(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    if (impl_->worker.joinable()) impl_->worker.join();
}

void import_export_service::create(const json::value& body, completion done) {
    auto j = parse_ie_request(body);
    if (!j) return done(j.error());
    auto& m = *impl_;
    {
        std::lock_guard l(m.mu);
        if (m.stopping) return done(error{errc::shutting_down, "The hub is stopping."});
        bool active = m.creating > 0;
        for (auto& [_, other] : m.jobs) active = active || !is_terminal(other.status);
        if (active)
            return done(error{errc::throttled, "Only one import or export job may be active at a time; wait for "
                                               "the current one to finish or cancel it."});
        ++m.creating;
        j->seq = m.next_seq++;
    }
    j->job_id = new_job_id();
    auto job = std::make_shared<ie_job>(std::move(*j));
    auto finish = [&m, done = std::move(done)](result<json::object> r) {
        {
            std::lock_guard l(m.mu);
            --m.creating;
        }
        m.cv.notify_all();
        done(std::move(r));
    };
    // Persisted after the containers are checked; only then the worker may see it.
    auto persist = [&m, job, finish]() {
        std::lock_guard pl(m.persist_mu);
        m.hub.put_setting(std::string(key_prefix) + job->job_id, json::serialize(to_stored_json(*job)),
                          [&m, job, finish](result<void> r) {
                              if (!r) return finish(r.error());
                              {
                                  std::lock_guard l(m.mu);
                                  m.jobs[job->job_id] = *job;
                              }
                              finish(to_json(*job));
                          });
    };
    auto check_input = [&m, job, finish, persist]() {
        if (job->type != ie_type::import_devices) return persist();
        auto in = parse_container_url(job->input_uri, "inputBlobContainerUri");
        m.storage.probe_blob(blob_url(*in, job->input_blob), [finish, persist](result<service::storage_client::answer> a) {
            if (auto why = container_problem(a, "read input"); !why.empty()) return finish(error{errc::connection_failed, why});
            persist();
        });
    };
    auto out = parse_container_url(job->output_uri, "outputBlobContainerUri");
    m.storage.probe_blob(blob_url(*out, job->output_blob), [finish, check_input](result<service::storage_client::answer> a) {
        if (auto why = container_problem(a, "write to output"); !why.empty()) return finish(error{errc::connection_failed, why});
        check_input();
    });
}

result<json::object> import_export_service::get(std::string_view job_id) const {
    std::lock_guard l(impl_->mu);
    auto it = impl_->jobs.find(job_id);
    if (it == impl_->jobs.end()) return error{errc::not_found, "The job '" + std::string(job_id) + "' does not exist."};
    return to_json(it->second);
}

std::vector<json::object> import_export_service::list() const {
    std::lock_guard l(impl_->mu);
    std::vector<const ie_job*> js;
    for (auto& [_, j] : impl_->jobs) js.push_back(&j);
    std::sort(js.begin(), js.end(), [](auto* a, auto* b) { return a->seq > b->seq; });
    std::vector<json::object> out;
    for (auto* j : js) out.push_back(to_json(*j));
    return out;
}

void import_export_service::cancel(std::string job_id, completion done) {
    auto& m = *impl_;
    {
        std::lock_guard l(m.mu);
        auto it = m.jobs.find(job_id);
        if (it == m.jobs.end()) return done(error{errc::not_found, "The job '" + job_id + "' does not exist."});
        if (is_terminal(it->second.status)) return done(to_json(it->second));
        it->second.status = ie_status::cancelled;
        it->second.end_time = now();
    }
    m.persist(job_id, [this, job_id, done = std::move(done)](result<void> r) {
        if (!r) return done(r.error());
        done(get(job_id));
    });
}

}  // namespace twinhub::jobs
