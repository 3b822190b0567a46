// JSON merge-patch helpers (RFC 7386) for desired-property resync: what changed between two
// versions of the desired properties, and applying a patch to a local copy. Keys starting with '$'
// ($version, $metadata) are ignored by both.
// Thread safety: pure functions.
#pragma once

#include <boost/json/object.hpp>

namespace twinhub::client {

// The merge patch that turns `from` into `to`: changed or added keys with their new value, removed
// keys as null, nested objects diffed recursively. Empty when nothing changed.
boost::json::object merge_patch_diff(const boost::json::object& from, const boost::json::object& to);

// Applies `patch` to `target`: null deletes, objects merge recursively, anything else replaces.
void apply_merge_patch(boost::json::object& target, const boost::json::object& patch);

// A copy of `o` without its '$'-prefixed keys (top level only).
boost::json::object without_meta(const boost::json::object& o);

}  // namespace twinhub::client
