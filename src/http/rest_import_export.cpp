// Import/export jobs on the REST head (azure-iothub Registry.exportDevicesToBlob,
// importDevicesFromBlob, getJob, listJobs, cancelJob):
//   POST /jobs/create {"type":"export"|"import", ...} -> 200 JobProperties (status "enqueued")
//   GET /jobs -> 200 [JobProperties], newest first;  GET /jobs/{id} -> 200 JobProperties
//   DELETE /jobs/{id} -> 204 (cancels an enqueued or running job)
// Errors in Azure's codes: a container whose SAS storage refuses 400 BlobContainerValidationError,
// a second active job 403 JobQuotaExceeded, an unknown job 404 JobNotFound, a malformed body
// 400 IotHubFormatError / ArgumentInvalid. jobs/import_export_service does the work.
#include "common/encoding.hpp"
#include "common/error_body.hpp"
#include "common/time.hpp"
#include "http/error_body.hpp"
#include "http/rest_api.hpp"
#include "http/route.hpp"
#include "jobs/import_export_service.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::http {

namespace {

namespace json = boost::json;

rest_response named(int status, std::string_view code, std::string message) {
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

rest_response ie_error(const error& e) {
    switch (e.code) {
    case errc::not_found: return named(404, "JobNotFound", e.message);
    case errc::connection_failed: return named(400, "BlobContainerValidationError", e.message);
    case errc::throttled: return named(403, "JobQuotaExceeded", e.message);
    default: return error_response(e);
    }
}

rest_response ok(const json::value& v) {
    rest_response r;
    r.status = 200;
    r.body = json::serialize(v);
    return r;
}

}  // namespace

void rest_api::handle_import_export(const route& r, const rest_request& req, completion done) const {
    if (!import_export_)
        return done(error_response(error{errc::not_found, "Import/export jobs are not served by this hub."}));
    auto reply = [done](result<json::object> j) { done(j ? ok(*j) : ie_error(j.error())); };
    if (r.kind == route_kind::ie_jobs) {
        json::array a;
        for (auto& j : import_export_->list()) a.push_back(std::move(j));
        return done(ok(a));
    }
    if (r.kind == route_kind::ie_job_create) {
        if (req.body.find_first_not_of(" \t\r\n") == std::string::npos)
            return done(error_response(error{errc::format_error, "The request body is empty; a JobProperties JSON "
                                                                 "object is expected."}));
        boost::system::error_code ec;
        auto body = json::parse(req.body, ec);
        if (ec) return done(error_response(error{errc::format_error, "The request body is not valid JSON (" + ec.message() + ")."}));
        return import_export_->create(body, std::move(reply));
    }
    if (r.method == http_method::get) return reply(import_export_->get(r.lock_token));
    import_export_->cancel(r.lock_token, [done](result<json::object> j) {
        if (!j) return done(ie_error(j.error()));
        rest_response out;
        out.status = 204;
        done(std::move(out));
    });
}

}  // namespace twinhub::http
