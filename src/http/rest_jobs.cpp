// Scheduled jobs (/jobs/v2) and configurations (/configurations, applyConfigurationContent) over
// REST: the edge checks (body shape, ids, paging headers) and the wire forms; jobs/ does the work.
#include "common/encoding.hpp"
#include "common/error_body.hpp"
#include "common/time.hpp"
#include "http/error_body.hpp"
#include "http/request_target.hpp"
#include "http/rest_api.hpp"
#include "http/route.hpp"
#include "jobs/configuration_service.hpp"
#include "jobs/job_service.hpp"
#include "registry/identity.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace twinhub::http {

namespace {

namespace json = boost::json;

rest_response json_ok(const json::value& v) {
    rest_response r;
    r.status = 200;
    r.body = json::serialize(v);
    return r;
}

// An IoT Hub error whose code has no errc of its own (JobNotFound, ConfigurationAlreadyExists...).
rest_response named_error(int status, std::string_view code, std::string message) {
    for (char& c : message)
        if (c == ';') c = ',';
    json::object o;
    o["Message"] = "ErrorCode:" + std::string(code) + ";" + well_formed_utf8(message);
    o["ExceptionMessage"] = format_exception_message(random_hex(16), now());
    rest_response r;
    r.status = status;
    r.body = json::serialize(o);
    r.headers.emplace_back("iothub-errorcode", std::string(code));
    return r;
}

// not_found and the create conflict carry the resource's own code; everything else as usual.
rest_response resource_error(const error& e, std::string_view what) {
    if (e.code == errc::not_found) return named_error(404, std::string(what) + "NotFound", e.message);
    if (e.code == errc::device_already_exists) return named_error(409, std::string(what) + "AlreadyExists", e.message);
    return error_response(e);
}

result<json::value> parse_json_body(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return error{errc::format_error, "The request body is empty; a JSON document is expected."};
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec) return error{errc::format_error, "The request body is not valid JSON (" + ec.message() + ")."};
    return v;
}

result<std::size_t> parse_count(std::optional<std::string_view> v, std::size_t dflt, std::size_t max, std::string_view what) {
    if (!v || v->empty()) return dflt;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || p != v->data() + v->size() || n == 0)
        return error{errc::invalid_argument, std::string(what) + " must be a positive integer."};
    return std::min(n, max);
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

void rest_api::handle_jobs(const route& r, const rest_request& req, completion done) const {
    if (!jobs_) return done(error_response(error{errc::not_found, "Jobs are not served by this hub."}));
    auto reply = [done](result<json::object> j) {
        if (!j) return done(resource_error(j.error(), "Job"));
        done(json_ok(*j));
    };
    if (r.kind == route_kind::jobs_query) {
        auto target = parse_request_target(req.target);
        if (!target) return done(error_response(target.error()));
        std::string type(target->query_value("jobType").value_or(""));
        std::string status(target->query_value("jobStatus").value_or(""));
        auto page_size = parse_count(req.max_item_count, 100, 1000, "x-ms-max-item-count");
        if (!page_size) return done(error_response(page_size.error()));
        std::size_t from = 0;
        if (req.continuation && !req.continuation->empty()) {
            auto f = parse_count(*req.continuation, 0, SIZE_MAX, "x-ms-continuation");
            if (!f) return done(error_response(error{errc::invalid_argument, "The continuation token is not valid."}));
            from = *f;
        }
        auto all = jobs_->list(type, status);
        json::array items;
        for (std::size_t i = from; i < all.size() && items.size() < *page_size; ++i) items.push_back(std::move(all[i]));
        rest_response res = json_ok(items);
        res.headers.emplace_back("x-ms-item-type", "jobResponse");
        if (from + items.size() < all.size()) res.headers.emplace_back("x-ms-continuation", std::to_string(from + items.size()));
        return done(std::move(res));
    }
    const std::string& id = r.lock_token;
    if (auto ok = registry::validate_id(id, "jobId"); !ok) return done(error_response(ok.error()));
    if (r.kind == route_kind::job_cancel) return jobs_->cancel(id, std::move(reply));
    if (r.method == http_method::get) return reply(jobs_->get(id));
    auto body = parse_json_body(req.body);
    if (!body) return done(error_response(body.error()));
    jobs_->create(id, *body, std::move(reply));
}

void rest_api::handle_configurations(const route& r, const rest_request& req, completion done) const {
    if (!configurations_) return done(error_response(error{errc::not_found, "Configurations are not served by this hub."}));
    auto& cs = *configurations_;
    auto with_etag = [](const json::object& c) {
        rest_response res = json_ok(c);
        if (auto* e = c.if_contains("etag"); e && e->is_string()) res.headers.emplace_back("ETag", quoted(e->get_string()));
        return res;
    };
    switch (r.kind) {
    case route_kind::configurations: {
        auto target = parse_request_target(req.target);
        if (!target) return done(error_response(target.error()));
        auto top = parse_count(target->query_value("top"), jobs::max_configurations, jobs::max_configurations, "top");
        if (!top) return done(error_response(top.error()));
        json::array a;
        for (auto& c : cs.list(*top)) a.push_back(std::move(c));
        return done(json_ok(a));
    }
    case route_kind::configurations_test: {
        auto body = parse_json_body(req.body);
        if (!body) return done(error_response(body.error()));
        auto res = cs.test_queries(*body);
        if (!res) return done(error_response(res.error()));
        return done(json_ok(*res));
    }
    case route_kind::apply_configuration: {
        if (auto ok = registry::validate_id(r.device_id, "deviceId"); !ok) return done(error_response(ok.error()));
        auto body = parse_json_body(req.body);
        if (!body) return done(error_response(body.error()));
        return cs.apply_content(r.device_id, *body, [done](result<void> res) {
            if (!res) return done(error_response(res.error()));
            rest_response out;
            out.status = 204;
            done(std::move(out));
        });
    }
    case route_kind::configuration: break;
    default: return done(error_response(error{errc::internal, "unhandled configuration route"}));
    }
    const std::string& id = r.lock_token;
    switch (r.method) {
    case http_method::get: {
        auto c = cs.get(id);
        if (!c) return done(resource_error(c.error(), "Configuration"));
        return done(with_etag(*c));
    }
    case http_method::put: {
        auto body = parse_json_body(req.body);
        if (!body) return done(error_response(body.error()));
        return cs.put(id, *body, req.if_match, [done, with_etag](result<json::object> c) {
            if (!c) return done(resource_error(c.error(), "Configuration"));
            done(with_etag(*c));
        });
    }
    case http_method::delete_:
        return cs.remove(id, req.if_match, [done](result<void> res) {
            if (!res) return done(resource_error(res.error(), "Configuration"));
            rest_response out;
            out.status = 204;
            done(std::move(out));
        });
    default: return done(error_response(error{errc::method_not_allowed, "Use GET, PUT or DELETE on a configuration."}));
    }
}

}  // namespace twinhub::http
