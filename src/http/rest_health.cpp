// /health[/live|/ready] and /metrics on the HTTPS port (see ops_api.hpp).
#include "http/ops_api.hpp"

#include "auth/authenticator.hpp"
#include "common/encoding.hpp"
#include "common/time.hpp"
#include "http/error_body.hpp"
#include "http/request_target.hpp"
#include "methods/method_router.hpp"
#include "service/hub_service.hpp"
#include "service/metrics.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <sys/statvfs.h>

#include <cmath>
#include <mutex>
#include <optional>

namespace twinhub::http {

namespace json = boost::json;

// The last store probe and the requests waiting for the one in flight.
struct ops_api::probe_state {
    std::mutex mu;
    bool in_flight = false;
    std::optional<std::chrono::steady_clock::time_point> at;  // when the last probe finished
    bool ok = false;
    std::string message;
    double duration_ms = 0;
    std::vector<std::function<void()>> waiters;
};

ops_api::ops_api(service::hub_service& hub, ops_options opts)
    : hub_(hub), opts_(std::move(opts)), probe_(std::make_shared<probe_state>()) {
    if (opts_.host_names.empty()) opts_.host_names.push_back("localhost");
}

ops_api::~ops_api() = default;

bool ops_api::handle(const rest_request& req, completion& done) {
    const std::string_view path = target_path(req.target);
    if (path == "/health" || path == "/health/ready" || path == "/health/live") {
        if (req.method != "GET") {
            rest_response r = error_response(error{errc::method_not_allowed, "Use GET on " + std::string(path) + "."});
            r.headers.emplace_back("Allow", "GET");
            done(std::move(r));
            return true;
        }
        health(path != "/health/live", std::move(done));
        return true;
    }
    if (path == "/metrics") {
        metrics(req, std::move(done));
        return true;
    }
    if (path.starts_with("/console/api/")) return console_api(req, done);
    if (path == "/console" || path.starts_with("/console/")) {
        console(req, std::move(done));
        return true;
    }
    return false;
}

namespace {

json::object check(bool ok, std::string description) {
    json::object o;
    o["status"] = ok ? "Healthy" : "Unhealthy";
    o["description"] = std::move(description);
    return o;
}

rest_response health_response(bool healthy, json::object checks) {
    json::object o;
    o["status"] = healthy ? "Healthy" : "Unhealthy";
    o["checks"] = std::move(checks);
    rest_response r;
    r.status = healthy ? 200 : 503;
    r.body = json::serialize(o);
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

}  // namespace

void ops_api::health(bool ready, completion done) {
    json::object checks;
    checks["process"] = check(true, "twinhubd answers");
    if (!ready) return done(health_response(true, std::move(checks)));

    // Listeners and disk now; the store once the probe (or the last one, if recent) has answered.
    auto& m = service::metrics();
    const bool https = m.https_bound.load(), mqtt = m.mqtt_bound.load(), amqp = m.amqp_bound.load();
    auto listeners = check(https && mqtt && amqp, https && mqtt && amqp ? "HTTPS, MQTT and AMQP listeners bound"
                                                                        : "a listener is not bound");
    listeners["https"] = https;
    listeners["mqtt"] = mqtt;
    listeners["amqp"] = amqp;
    checks["listeners"] = std::move(listeners);
    bool disk_ok = true;
    if (!opts_.data_dir.empty()) {
        struct statvfs fs {};
        if (::statvfs(opts_.data_dir.c_str(), &fs) == 0) {
            const unsigned long long free = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
            disk_ok = free >= min_free_bytes;
            auto d = check(disk_ok, disk_ok ? "the data directory's file system has room"
                                            : "the data directory's file system is full (less than 1 MiB free)");
            d["freeBytes"] = free;
            checks["disk"] = std::move(d);
        } else {
            disk_ok = false;
            checks["disk"] = check(false, "the data directory cannot be examined");
        }
    }

    auto st = probe_;
    std::function<void()> answer = [st, checks = std::move(checks), https, mqtt, amqp, disk_ok, done = std::move(done)]() mutable {
        bool store_ok;
        {
            std::lock_guard lock(st->mu);
            store_ok = st->ok;
            auto s = check(st->ok, st->message);
            s["durationMs"] = std::round(st->duration_ms * 1000) / 1000;
            s["lastCommitOk"] = service::metrics().last_commit_ok.load();
            checks["store"] = std::move(s);
        }
        done(health_response(store_ok && disk_ok && https && mqtt && amqp, std::move(checks)));
    };

    const auto t0 = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(st->mu);
        if (st->at && t0 - *st->at < probe_reuse && !st->in_flight) {
            // fall through to answer outside the lock
        } else {
            st->waiters.push_back(std::move(answer));
            if (st->in_flight) return;
            st->in_flight = true;
            answer = nullptr;
        }
    }
    if (answer) return answer();

    // A real write: one settings row, committed (fsynced) like any other write.
    json::object doc;
    doc["at"] = format_time(now());
    hub_.put_setting("twinhub.health.probe", json::serialize(doc), [st, t0](result<void> r) {
        std::vector<std::function<void()>> waiters;
        {
            std::lock_guard lock(st->mu);
            st->in_flight = false;
            st->at = std::chrono::steady_clock::now();
            st->duration_ms = std::chrono::duration<double, std::milli>(*st->at - t0).count();
            st->ok = static_cast<bool>(r);
            st->message = r ? "a probe write was committed to the store"
                            : "the store cannot commit a write: " + r.error().message;
            waiters.swap(st->waiters);
        }
        for (auto& w : waiters) w();
    });
}

void ops_api::metrics(const rest_request& req, completion done) {
    if (req.method != "GET") {
        return done(error_response(error{errc::method_not_allowed, "Use GET on /metrics."}));
    }
    const std::string auth = req.authorization.value_or("");
    bool allowed = false;
    if (!opts_.metrics_token.empty() && auth.starts_with("Bearer ")) {
        allowed = secure_equals(std::string_view(auth).substr(7), opts_.metrics_token);
    } else if (auth.starts_with("SharedAccessSignature ")) {
        auto policies = hub_.policies();
        allowed = static_cast<bool>(auth::authorize_service(auth, opts_.host_names, policies,
                                                            auth::service_connect | auth::registry_read, now()));
    }
    if (!allowed) {
        rest_response r = error_response(error{
            errc::unauthorized, "Send Authorization: Bearer <the --metrics-token> or a service SAS token, or scrape "
                                "the plain --metrics-port listener."});
        return done(std::move(r));
    }
    service::metrics_sources src;
    src.hub = &hub_;
    src.store_file = opts_.store_file;
    if (opts_.methods) src.pending_methods = opts_.methods->pending();
    rest_response r;
    r.body = service::render_prometheus(src);
    r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r.headers.emplace_back("Cache-Control", "no-store");
    done(std::move(r));
}

}  // namespace twinhub::http
