#include "jobs/job_state.hpp"

#include "registry/identity.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cmath>

namespace twinhub::jobs {

namespace json = boost::json;

std::string_view to_string(job_status s) noexcept {
    switch (s) {
    case job_status::queued: return "queued";
    case job_status::scheduled: return "scheduled";
    case job_status::running: return "running";
    case job_status::completed: return "completed";
    case job_status::failed: return "failed";
    case job_status::cancelled: return "cancelled";
    }
    return "unknown";
}

std::string_view to_string(job_type t) noexcept {
    return t == job_type::update_twin ? "scheduleUpdateTwin" : "scheduleDeviceMethod";
}

std::string_view to_string(device_status s) noexcept {
    switch (s) {
    case device_status::pending: return "pending";
    case device_status::running: return "running";
    case device_status::completed: return "completed";
    case device_status::failed: return "failed";
    case device_status::cancelled: return "cancelled";
    }
    return "unknown";
}

std::optional<job_status> parse_job_status(std::string_view s) noexcept {
    for (auto v : {job_status::queued, job_status::scheduled, job_status::running, job_status::completed,
                   job_status::failed, job_status::cancelled}) {
        if (to_string(v) == s) return v;
    }
    return std::nullopt;
}

bool is_terminal(job_status s) noexcept {
    return s == job_status::completed || s == job_status::failed || s == job_status::cancelled;
}

job_status waiting_status(time_point start, time_point now) noexcept {
    return start > now ? job_status::scheduled : job_status::queued;
}

namespace {

error bad(std::string m) { return error{errc::invalid_argument, std::move(m)}; }

result<std::int64_t> positive_seconds(const json::object& o, std::string_view key, std::int64_t dflt,
                                      std::int64_t min, std::string_view where) {
    auto* v = o.if_contains(key);
    if (!v || v->is_null()) return dflt;
    double d = 0;
    if (v->is_int64()) d = static_cast<double>(v->get_int64());
    else if (v->is_uint64()) d = static_cast<double>(v->get_uint64());
    else if (v->is_double()) d = v->get_double();
    else return bad(std::string(where) + std::string(key) + " must be a number of seconds.");
    if (!std::isfinite(d) || d < static_cast<double>(min) || d > 1e9 || d != std::floor(d))
        return bad(std::string(where) + std::string(key) + " must be a whole number of seconds, at least " +
                   std::to_string(min) + ".");
    return static_cast<std::int64_t>(d);
}

std::int64_t ns_of(time_point t) { return t.time_since_epoch().count(); }
time_point tp_of(std::int64_t ns) { return time_point(std::chrono::nanoseconds(ns)); }

result<void> parse_twin(const json::value* v, job_request& r) {
    if (!v || !v->is_object()) return bad("updateTwin must be a JSON object for a scheduleUpdateTwin job.");
    const auto& t = v->get_object();
    // IoT Hub requires the twin update of a job to be unconditional.
    auto* etag = t.if_contains("etag");
    if (!etag || !etag->is_string() || etag->get_string() != "*")
        return bad("updateTwin.etag must be \"*\": a job updates twins unconditionally.");
    json::object patch;
    if (auto* tags = t.if_contains("tags"); tags && !tags->is_null()) {
        if (!tags->is_object()) return bad("updateTwin.tags must be a JSON object.");
        if (!tags->get_object().empty()) patch["tags"] = *tags;
    }
    if (auto* p = t.if_contains("properties"); p && !p->is_null()) {
        if (!p->is_object()) return bad("updateTwin.properties must be a JSON object.");
        const auto& props = p->get_object();
        if (auto* rep = props.if_contains("reported"); rep && !rep->is_null()) {
            if (!rep->is_object() || !rep->get_object().empty())
                return bad("updateTwin.properties.reported cannot be written by a job; only devices report them.");
        }
        if (auto* d = props.if_contains("desired"); d && !d->is_null()) {
            if (!d->is_object()) return bad("updateTwin.properties.desired must be a JSON object.");
            if (!d->get_object().empty()) patch["properties"] = json::object{{"desired", *d}};
        }
    }
    r.update_twin = t;
    r.twin_patch = std::move(patch);
    return {};
}

result<void> parse_method(const json::value* v, job_request& r) {
    if (!v || !v->is_object())
        return bad("cloudToDeviceMethod must be a JSON object for a scheduleDeviceMethod job.");
    const auto& m = v->get_object();
    auto* name = m.if_contains("methodName");
    if (!name || !name->is_string() || name->get_string().empty())
        return bad("cloudToDeviceMethod.methodName must be a non-empty string.");
    std::string_view n = name->get_string();
    if (n.size() > 128 || n.find_first_of("/#+$") != std::string_view::npos)
        return bad("cloudToDeviceMethod.methodName '" + std::string(n) + "' is not a valid method name.");
    r.method_name = std::string(n);
    if (auto* p = m.if_contains("payload")) r.payload = json::serialize(*p);
    auto rt = positive_seconds(m, "responseTimeoutInSeconds", 30, 5, "cloudToDeviceMethod.");
    if (!rt) return rt.error();
    if (*rt > 300) return bad("cloudToDeviceMethod.responseTimeoutInSeconds must be at most 300.");
    auto ct = positive_seconds(m, "connectTimeoutInSeconds", 0, 0, "cloudToDeviceMethod.");
    if (!ct) return ct.error();
    if (*ct > 300) return bad("cloudToDeviceMethod.connectTimeoutInSeconds must be at most 300.");
    r.response_timeout_s = *rt;
    r.connect_timeout_s = *ct;
    r.cloud_to_device_method = m;
    return {};
}

}  // namespace

result<job_request> parse_job_request(std::string_view path_id, const json::value& body, time_point now) {
    if (auto ok = registry::validate_id(path_id, "jobId"); !ok) return ok.error();
    if (!body.is_object()) return bad("The job request must be a JSON object.");
    const auto& o = body.get_object();
    job_request r;
    r.job_id = std::string(path_id);
    if (auto* id = o.if_contains("jobId"); id && !id->is_null()) {
        if (!id->is_string() || id->get_string() != path_id)
            return bad("jobId in the body does not match '" + std::string(path_id) + "' in the path.");
    }
    auto* type = o.if_contains("type");
    if (!type || !type->is_string())
        return bad("type must be \"scheduleUpdateTwin\" or \"scheduleDeviceMethod\".");
    if (type->get_string() == "scheduleUpdateTwin") {
        r.type = job_type::update_twin;
        if (auto ok = parse_twin(o.if_contains("updateTwin"), r); !ok) return ok.error();
    } else if (type->get_string() == "scheduleDeviceMethod") {
        r.type = job_type::device_method;
        if (auto ok = parse_method(o.if_contains("cloudToDeviceMethod"), r); !ok) return ok.error();
    } else {
        return bad("The job type '" + std::string(type->get_string()) +
                   "' is not supported here; use scheduleUpdateTwin or scheduleDeviceMethod (import/export: "
                   "POST /jobs/create).");
    }
    auto* q = o.if_contains("queryCondition");
    if (!q || !q->is_string() || q->get_string().find_first_not_of(" \t\r\n") == std::string_view::npos)
        return bad("queryCondition must be a non-empty WHERE clause, e.g. \"deviceId = 'd1'\".");
    r.query_condition = std::string(q->get_string());
    r.start_time = now;
    if (auto* s = o.if_contains("startTime"); s && !s->is_null()) {
        if (!s->is_string()) return bad("startTime must be an ISO-8601 date string.");
        auto t = parse_time(s->get_string());
        if (!t) return bad("startTime '" + std::string(s->get_string()) + "' is not an ISO-8601 date.");
        r.start_time = *t;
    }
    auto mx = positive_seconds(o, "maxExecutionTimeInSeconds", 3600, 1, "");
    if (!mx) return mx.error();
    r.max_execution_s = *mx;
    return r;
}

job_stats count(const std::vector<device_outcome>& devices) noexcept {
    job_stats s;
    s.device_count = static_cast<std::int64_t>(devices.size());
    for (const auto& d : devices) {
        switch (d.status) {
        case device_status::pending: ++s.pending; break;
        case device_status::running: ++s.running; break;
        case device_status::completed: ++s.succeeded; break;
        case device_status::failed:
        case device_status::cancelled: ++s.failed; break;
        }
    }
    return s;
}

json::object to_json(const job_record& j) {
    json::object o;
    o["jobId"] = j.req.job_id;
    o["queryCondition"] = j.req.query_condition;
    o["createdTime"] = format_time(j.created_time);
    o["startTime"] = format_time(j.req.start_time);
    if (j.end_time) o["endTime"] = format_time(*j.end_time);
    o["maxExecutionTimeInSeconds"] = j.req.max_execution_s;
    o["type"] = to_string(j.req.type);
    if (j.req.type == job_type::device_method) {
        json::object m = j.req.cloud_to_device_method;
        m["responseTimeoutInSeconds"] = j.req.response_timeout_s;
        m["connectTimeoutInSeconds"] = j.req.connect_timeout_s;
        o["cloudToDeviceMethod"] = std::move(m);
    } else {
        o["updateTwin"] = j.req.update_twin;
    }
    o["status"] = to_string(j.status);
    if (!j.failure_reason.empty()) o["failureReason"] = j.failure_reason;
    if (!j.status_message.empty()) o["statusMessage"] = j.status_message;
    const job_stats s = count(j.devices);
    o["deviceJobStatistics"] = json::object{{"deviceCount", s.device_count}, {"failedCount", s.failed},
                                            {"succeededCount", s.succeeded}, {"runningCount", s.running},
                                            {"pendingCount", s.pending}};
    return o;
}

json::object device_row(const job_record& j, const device_outcome& d) {
    json::object o;
    o["deviceId"] = d.device_id;
    o["jobId"] = j.req.job_id;
    o["jobType"] = to_string(j.req.type);
    o["status"] = to_string(d.status);
    o["startTimeUtc"] = d.start_ns ? format_time(tp_of(d.start_ns)) : std::string(never_time);
    o["endTimeUtc"] = d.end_ns ? format_time(tp_of(d.end_ns)) : std::string(never_time);
    o["createdDateTimeUtc"] = format_time(j.created_time);
    o["lastUpdatedDateTimeUtc"] = format_time(tp_of(d.end_ns ? d.end_ns : (d.start_ns ? d.start_ns : ns_of(j.created_time))));
    json::object outcome;
    if (j.req.type == job_type::device_method && d.status == device_status::completed) {
        boost::system::error_code ec;
        json::value payload = d.payload.empty() ? json::value(nullptr) : json::parse(d.payload, ec);
        if (ec) payload = json::value(d.payload);
        outcome["deviceMethodResponse"] = json::object{{"status", d.method_status}, {"payload", std::move(payload)}};
    } else {
        outcome["deviceMethodResponse"] = nullptr;
    }
    o["outcome"] = std::move(outcome);
    if (!d.error_code.empty()) o["error"] = json::object{{"code", d.error_code}, {"description", d.error_description}};
    return o;
}

json::object to_storage(const job_record& j, std::size_t chunks) {
    json::object o;
    o["jobId"] = j.req.job_id;
    o["type"] = to_string(j.req.type);
    o["queryCondition"] = j.req.query_condition;
    o["updateTwin"] = j.req.update_twin;
    o["cloudToDeviceMethod"] = j.req.cloud_to_device_method;
    o["startTime"] = ns_of(j.req.start_time);
    o["maxExecutionTimeInSeconds"] = j.req.max_execution_s;
    o["status"] = to_string(j.status);
    o["created"] = ns_of(j.created_time);
    if (j.run_time) o["run"] = ns_of(*j.run_time);
    if (j.end_time) o["end"] = ns_of(*j.end_time);
    o["failureReason"] = j.failure_reason;
    o["statusMessage"] = j.status_message;
    o["resolved"] = j.resolved;
    o["chunks"] = static_cast<std::uint64_t>(chunks);
    return o;
}

result<job_record> from_storage(const json::value& v, std::size_t& chunks) {
    const error corrupt{errc::corrupt_data, "a stored job document is malformed"};
    if (!v.is_object()) return corrupt;
    const auto& o = v.get_object();
    try {
        // Re-validate the request through the one parser, so a stored job is what a PUT accepts.
        json::object body;
        body["type"] = o.at("type");
        body["queryCondition"] = o.at("queryCondition");
        body["updateTwin"] = o.at("updateTwin");
        body["cloudToDeviceMethod"] = o.at("cloudToDeviceMethod");
        body["maxExecutionTimeInSeconds"] = o.at("maxExecutionTimeInSeconds");
        auto req = parse_job_request(o.at("jobId").as_string(), body, tp_of(o.at("startTime").as_int64()));
        if (!req) return corrupt;
        job_record j;
        j.req = std::move(*req);
        auto st = parse_job_status(o.at("status").as_string());
        if (!st) return corrupt;
        j.status = *st;
        j.created_time = tp_of(o.at("created").as_int64());
        if (auto* r = o.if_contains("run")) j.run_time = tp_of(r->as_int64());
        if (auto* e = o.if_contains("end")) j.end_time = tp_of(e->as_int64());
        j.failure_reason = std::string(o.at("failureReason").as_string());
        j.status_message = std::string(o.at("statusMessage").as_string());
        j.resolved = o.at("resolved").as_bool();
        chunks = static_cast<std::size_t>(o.at("chunks").to_number<std::uint64_t>());
        return j;
    } catch (const std::exception&) {
        return corrupt;
    }
}

json::array chunk_to_storage(const std::vector<device_outcome>& d, std::size_t from, std::size_t to) {
    json::array a;
    a.reserve(to - from);
    for (std::size_t i = from; i < to; ++i) {
        const auto& x = d[i];
        json::array e{x.device_id, static_cast<int>(x.status), x.start_ns, x.end_ns, x.method_status, x.payload,
                      x.error_code, x.error_description};
        a.push_back(std::move(e));
    }
    return a;
}

result<void> chunk_from_storage(const json::value& v, std::vector<device_outcome>& out) {
    const error corrupt{errc::corrupt_data, "a stored job device chunk is malformed"};
    if (!v.is_array()) return corrupt;
    try {
        for (const auto& e : v.get_array()) {
            const auto& a = e.as_array();
            if (a.size() != 8) return corrupt;
            device_outcome d;
            d.device_id = std::string(a[0].as_string());
            const auto s = a[1].to_number<int>();
            if (s < 0 || s > static_cast<int>(device_status::cancelled)) return corrupt;
            d.status = static_cast<device_status>(s);
            d.start_ns = a[2].to_number<std::int64_t>();
            d.end_ns = a[3].to_number<std::int64_t>();
            d.method_status = a[4].to_number<int>();
            d.payload = std::string(a[5].as_string());
            d.error_code = std::string(a[6].as_string());
            d.error_description = std::string(a[7].as_string());
            out.push_back(std::move(d));
        }
    } catch (const std::exception&) {
        return corrupt;
    }
    return {};
}

}  // namespace twinhub::jobs
