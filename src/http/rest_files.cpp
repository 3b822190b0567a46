// File upload on the REST head (device credentials, checked by handle_device_route):
//   POST /devices/{id}/files {"blobName": "..."} -> 200 {correlationId, hostName, containerName, blobName, sasToken}
//   POST /devices/{id}/files/notifications {"correlationId", "isSuccess", "statusCode", "statusDescription"} -> 204
//   POST /devices/{id}/files/notifications/{correlationId} (what azure-iot-device sends) the same, the id in the path.
// Errors in Azure's codes (IoT Hub ErrorCode): DefaultStorageEndpointNotConfigured 400014,
// InvalidFileUploadCorrelationId 400015, ExpiredFileUploadCorrelationId 400016,
// InvalidFileUploadCompletionStatus 400019, InvalidStorageEndpointOrBlob 400020,
// DeviceMaximumActiveFileUploadLimitExceeded 403005; a malformed body 400 IotHubFormatError /
// ArgumentInvalid.
#include "http/rest_api.hpp"

#include "common/encoding.hpp"
#include "common/error_body.hpp"
#include "http/error_body.hpp"
#include "http/route.hpp"
#include "service/file_upload_service.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::http {

namespace json = boost::json;

namespace {

rest_response azure_error(int status, const char* name, std::string text) {
    for (auto& c : text)
        if (c == ';') c = ',';
    json::object body;
    body["Message"] = std::string("ErrorCode:") + name + ";" + well_formed_utf8(text);
    body["ExceptionMessage"] = format_exception_message(random_hex(16), now());
    rest_response r;
    r.status = status;
    r.body = json::serialize(body);
    r.headers.emplace_back("iothub-errorcode", name);
    return r;
}

// The service's errors (file_upload_service.hpp) in Azure's file upload codes.
rest_response files_error(const error& e) {
    switch (e.code) {
    case errc::not_found: return azure_error(400, "DefaultStorageEndpointNotConfigured", e.message);
    case errc::message_lock_lost: return azure_error(400, "InvalidFileUploadCorrelationId", e.message);
    case errc::precondition_failed: return azure_error(400, "ExpiredFileUploadCorrelationId", e.message);
    case errc::throttled: return azure_error(403, "DeviceMaximumActiveFileUploadLimitExceeded", e.message);
    case errc::connection_failed: return azure_error(400, "InvalidStorageEndpointOrBlob", e.message);
    default: return error_response(e);
    }
}

result<json::object> body_object(std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec) return error{errc::format_error, "The request body is not valid JSON (" + ec.message() + ")."};
    if (!v.is_object()) return error{errc::invalid_argument, "The request body must be a JSON object."};
    return std::move(v.get_object());
}

}  // namespace

void rest_api::handle_files(const route& r, const rest_request& req, completion done) const {
    if (!r.module_id.empty()) return done(error_response(error{errc::not_found, "Modules cannot upload files."}));
    if (files_ == nullptr || !files_->configured())
        return done(files_error(error{errc::not_found, "File upload is not configured on this hub: start twinhubd with "
                                                       "--storage-connection-string (see README, File upload)."}));
    auto body = body_object(req.body);
    if (!body) return done(error_response(body.error()));
    store::identity_key key{r.device_id, {}};
    if (r.kind == route_kind::file_upload) {
        auto* name = body->if_contains("blobName");
        if (!name || !name->is_string())
            return done(error_response(error{errc::invalid_argument, "The body must have blobName, a string."}));
        return files_->begin_upload(key, std::string(name->get_string()), [done](result<service::upload_grant> g) {
            if (!g) return done(files_error(g.error()));
            json::object o;
            o["correlationId"] = g->correlation_id;
            o["hostName"] = g->host_name;
            o["containerName"] = g->container_name;
            o["blobName"] = g->blob_name;
            o["sasToken"] = g->sas_token;
            rest_response out;
            out.body = json::serialize(o);
            done(std::move(out));
        });
    }
    service::upload_status st;
    st.correlation_id = r.lock_token;
    if (auto* c = body->if_contains("correlationId")) {
        if (!c->is_string())
            return done(error_response(error{errc::invalid_argument, "correlationId must be a string."}));
        if (st.correlation_id.empty()) st.correlation_id = std::string(c->get_string());
    }
    if (st.correlation_id.empty())
        return done(error_response(error{errc::invalid_argument, "The body must have correlationId, a string."}));
    auto* ok = body->if_contains("isSuccess");
    if (!ok || !ok->is_bool())
        return done(azure_error(400, "InvalidFileUploadCompletionStatus", "isSuccess must be true or false."));
    st.is_success = ok->get_bool();
    if (auto* sc = body->if_contains("statusCode"); sc && !sc->is_null()) {
        if (!sc->is_number())
            return done(azure_error(400, "InvalidFileUploadCompletionStatus", "statusCode must be a number."));
        st.status_code = static_cast<int>(sc->to_number<double>());
    }
    if (auto* sd = body->if_contains("statusDescription"); sd && sd->is_string())
        st.status_description = std::string(sd->get_string());
    files_->finish_upload(key, std::move(st), [done](result<void> res) {
        if (!res) return done(files_error(res.error()));
        rest_response out;
        out.status = 204;
        done(std::move(out));
    });
}

}  // namespace twinhub::http
