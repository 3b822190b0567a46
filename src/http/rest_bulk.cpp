#include "http/rest_bulk.hpp"

#include "common/error_mapping.hpp"
#include "common/text.hpp"
#include "registry/identity.hpp"

#include <boost/json/array.hpp>
#include <boost/json/stream_parser.hpp>

#include <set>
#include <string>

namespace twinhub::http {

namespace json = boost::json;

namespace {


bool known_import_mode(std::string_view m) {
    return m == "create" || m == "update" || m == "updateifmatchetag" || m == "delete" || m == "deleteifmatchetag";
}

}  // namespace

result<json::value> parse_body(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return error{errc::format_error, "The request body is empty; a JSON document is expected."};
    }
    boost::system::error_code ec;
    json::stream_parser p;
    std::size_t n = p.write(body.data(), body.size(), ec);
    if (!ec) p.finish(ec);
    if (ec) {
        return error{errc::format_error, "The request body is not valid JSON (" + ec.message() + " near byte " +
                                             std::to_string(n) + ")."};
    }
    return p.release();
}

// POST /devices body (spec 3.9): an array of ExportImportDevice, mapped to service::bulk_entry.
result<std::vector<service::bulk_entry>> parse_bulk(std::string_view body, std::size_t max_entries) {
    auto v = parse_body(body);
    if (!v) return v.error();
    if (!v->is_array()) return error{errc::invalid_argument, "The bulk request body must be a JSON array of devices."};
    const auto& arr = v->get_array();
    if (arr.empty()) return error{errc::invalid_argument, "The bulk request contains no devices."};
    if (arr.size() > max_entries) {
        return error{errc::invalid_argument, "The bulk request contains " + std::to_string(arr.size()) +
                                                 " devices; the maximum is " + std::to_string(max_entries) + "."};
    }
    std::vector<service::bulk_entry> out;
    std::set<std::string> seen;
    out.reserve(arr.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const std::string where = "bulk entry " + std::to_string(i) + ": ";
        if (!arr[i].is_object()) return error{errc::invalid_argument, where + "must be a JSON object."};
        json::object o = arr[i].get_object();
        auto* id = o.if_contains("id");
        if (!id || !id->is_string()) return error{errc::invalid_argument, where + "id must be a string."};
        std::string device_id(id->get_string());
        if (auto ok = registry::validate_id(device_id, "id"); !ok) {
            return error{errc::invalid_argument, where + ok.error().message};
        }
        if (auto* m = o.if_contains("moduleId"); m && !m->is_null() && !(m->is_string() && m->get_string().empty())) {
            return error{errc::invalid_argument, where + "module identities are not supported in bulk requests."};
        }
        auto* mode = o.if_contains("importMode");
        if (!mode || !mode->is_string()) return error{errc::invalid_argument, where + "importMode must be a string."};
        service::bulk_entry e;
        e.import_mode = ascii_lower(std::string_view(mode->get_string()));
        if (!known_import_mode(e.import_mode)) {
            return error{errc::invalid_argument,
                         where + "importMode '" + std::string(mode->get_string()) +
                             "' is not supported; use create, update, updateIfMatchETag, delete or deleteIfMatchETag."};
        }
        // ExportImportDevice says eTag; Node passes Device objects through, which say etag.
        auto* et = o.if_contains("eTag");
        if (!et || et->is_null()) et = o.if_contains("etag");
        if (et && !et->is_null()) {
            if (!et->is_string()) return error{errc::invalid_argument, where + "eTag must be a string."};
            e.etag = std::string(et->get_string());
        }
        if ((e.import_mode == "updateifmatchetag" || e.import_mode == "deleteifmatchetag") && e.etag.empty()) {
            return error{errc::invalid_argument, where + "importMode " + std::string(mode->get_string()) +
                                                     " needs an eTag."};
        }
        if (!seen.insert(device_id).second) {
            return error{errc::device_defined_multiple_times,
                         "The device '" + device_id + "' is defined more than once in the bulk request."};
        }
        // ExportImportDevice says id/eTag; the identity parser reads deviceId/etag.
        o.erase("id");
        o.erase("eTag");
        o.erase("etag");
        o.erase("importMode");
        o.erase("moduleId");
        o["deviceId"] = device_id;
        auto d = registry::parse_device_request(o);
        if (!d) return error{d.error().code, where + d.error().message};
        e.device = std::move(*d);
        out.push_back(std::move(e));
    }
    return out;
}

json::object bulk_json(const service::bulk_result& r) {
    json::array errors;
    for (const auto& e : r.errors) {
        json::object o;
        o["deviceId"] = e.device_id;
        o["errorCode"] = to_wire(e.code).code_name;
        o["errorStatus"] = e.message;
        o["moduleId"] = nullptr;
        o["operation"] = e.operation;
        errors.push_back(std::move(o));
    }
    json::object out;
    out["isSuccessful"] = r.is_successful;
    out["errors"] = std::move(errors);
    out["warnings"] = json::array();
    return out;
}

}  // namespace twinhub::http
