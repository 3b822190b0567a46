// JSON merge-patch (RFC 7396) of twin sections with their $metadata trees (spec 4.2, 4.3), and the
// merge-patch diff that devices receive as a desired notification (spec 4.5). The one
// implementation for the hub (twin_document) and the C++ SDK (its desired-properties cache and
// resync after a reconnect): target twinhub_twin_merge, which links nothing but Boost.JSON.
// Thread safety: pure functions on caller-owned values.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace twinhub::twin {

// What a write stamps into the $metadata nodes it touches.
struct metadata_stamp {
    std::string last_updated;                          // formatted time of the write
    std::optional<std::int64_t> last_updated_version;  // desired $version of the write; none for reported
};

// Merges `patch` into `target`: objects merge recursively, scalars and arrays replace, null deletes.
// When `meta` is given it is the $metadata tree of `target` and is kept in step:
// - every object level the patch reaches (the root included) gets the stamp, also when a member is
//   deleted or the nested patch is empty;
// - a replaced or new leaf (scalar or array) gets a leaf node {"$lastUpdated", ...};
// - a key's metadata is removed with the key; parents keep their node.
void merge_patch(boost::json::object& target, boost::json::object* meta, const boost::json::object& patch,
                 const metadata_stamp& stamp);

// Merges `patch` into `target` without metadata: merge_patch(target, nullptr, patch, {}).
void merge_patch(boost::json::object& target, const boost::json::object& patch);

// Stamps the metadata node itself (sets $lastUpdated and, when given, $lastUpdatedVersion).
void stamp_node(boost::json::object& meta_node, const metadata_stamp& stamp);

// The merge patch that turns `from` into `to`: changed and new members with their new values,
// removed members as null, nested objects diffed recursively (an object member that did not change
// is left out). Applying the result to `from` with merge_patch yields `to`.
boost::json::object diff(const boost::json::object& from, const boost::json::object& to);

// A copy of `section` without the read-only root keys "$metadata" and "$version" that a client may
// send back after reading a twin (the hub ignores them).
boost::json::object without_read_only_keys(const boost::json::object& section);

}  // namespace twinhub::twin
