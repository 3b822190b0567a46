// Twin documents (spec 4): tags, desired and reported properties with their $metadata and
// $version, the twin etag and version; JSON merge-patch with null deletes; the limits of 4.4; the
// service view, the device view and the desired notification of 4.5.
// Thread safety: plain values and pure functions; no shared state.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace twinhub::twin {

struct twin_document {
    boost::json::object tags;
    boost::json::object desired;             // data only: no $metadata, no $version
    boost::json::object reported;
    boost::json::object desired_metadata;    // the $metadata tree of desired ($lastUpdated, $lastUpdatedVersion)
    boost::json::object reported_metadata;   // the $metadata tree of reported ($lastUpdated)
    std::int64_t desired_version = 1;        // +1 per accepted desired write
    std::int64_t reported_version = 1;       // +1 per accepted reported write
    std::uint64_t etag = 1;                  // twin etag counter; changes on tags/desired writes
    std::int64_t version = 2;                // twin-wide counter; +1 on every mutation
    std::string model_id;                    // PnP model id announced in the MQTT username
    // The twin's "configurations" section (automatic device management): {"<id>":{"status":..}}.
    // Written by the configuration service only; stored only when non-empty.
    boost::json::object configurations;
};

// A new twin as created with its identity: both $version 1, etag 1, version 2, root $lastUpdated = t.
twin_document new_twin(time_point t);

// Wire etag of a twin: base64 of the 8-byte big-endian counter ("AAAAAAAAAAE=" for 1).
std::string etag_to_string(std::uint64_t etag);

// A committed desired change, as devices receive it (spec 4.5): the merge-patch diff old -> new
// with explicit nulls for removed keys, plus "$version".
struct desired_change {
    boost::json::object patch;  // includes "$version"
    std::int64_t version = 0;
};

// The result of a service-side write.
struct service_write_result {
    std::optional<desired_change> desired;  // set when desired properties changed (or were written)
};

// PATCH /twins/{id}: body {"tags":{...}|null, "properties":{"desired":{...}|null}} merged into doc.
// On failure (invalid_argument with a precise message, e.g. limits of 4.4, reported in the body,
// unknown top-level keys are ignored as the hub does) doc is unchanged.
//
// Choices shared by the three writers below (see twin_limits.hpp for the 4.4 rules):
// - "$version" and "$metadata" at the root of tags/desired/reported in a body are ignored, so a
//   twin read back from GET can be sent again; any other key containing '$' is rejected.
// - A present section (object, or null = delete everything) is a write even when nothing changes:
//   tags -> etag +1; desired -> desired $version +1, etag +1, and a desired_change (possibly just
//   {"$version":n}); each call that writes bumps `version` once. A body with neither section
//   changes nothing. "properties": null is treated as absent.
// - Non-object tags/desired/properties -> invalid_argument; properties.reported in a PATCH ->
//   invalid_argument (PUT ignores it).
// - Section sizes are checked on the merged result; every violation rejects the whole body.
result<service_write_result> apply_service_patch(twin_document& doc, const boost::json::value& body, time_point t);

// PUT /twins/{id}: replaces tags and desired wholesale; an omitted section is unchanged; null
// members of a replacement are dropped; the desired $metadata tree is rebuilt with this write's
// stamp; the desired_change is the diff old -> new (removed keys as null).
result<service_write_result> apply_service_replace(twin_document& doc, const boost::json::value& body, time_point t);

// A device's reported patch (MQTT): merge into reported, reported $version +1. doc unchanged on failure.
result<void> apply_reported_patch(twin_document& doc, const boost::json::value& patch, time_point t);
// The same write merged straight into doc (no copy of the reported section): identical result on
// success, but on failure doc may be partly changed. For a caller that works on its own scratch
// copy and throws it away on failure.
result<void> apply_reported_patch_in_place(twin_document& doc, const boost::json::value& patch, time_point t);

// {"desired":{...,"$metadata":{...},"$version":n},"reported":{...}} as in the service twin JSON.
boost::json::object properties_json(const twin_document& doc);

// The device view of GET over MQTT: {"desired":{...,"$version":n},"reported":{...,"$version":m}}.
boost::json::object device_view(const twin_document& doc);

// Storage round trip (every field). from_storage fails with corrupt_data.
boost::json::object to_storage_json(const twin_document& doc);
result<twin_document> from_storage_json(const boost::json::value& v);

// serialize(to_storage_json(doc)), byte for byte, written directly from doc (no JSON copy of it).
std::string to_storage_text(const twin_document& doc);

}  // namespace twinhub::twin
