// The service twin JSON of spec 4.1: a twin document combined with the read-only mirrors of its
// identity (deviceEtag, status, connectionState, ...). Used by GET /twins, the PATCH/PUT responses
// and the query engine's twin collection.
// Thread safety: pure functions.
#pragma once

#include "registry/identity.hpp"
#include "twin/twin_document.hpp"

#include <boost/json/object.hpp>

namespace twinhub::service {

// deviceId, etag, deviceEtag, status, statusReason, statusUpdateTime, connectionState,
// lastActivityTime, cloudToDeviceMessageCount, authenticationType, x509Thumbprint, modelId, version,
// tags, properties, capabilities (+ deviceScope, parentScopes when set).
boost::json::object service_twin_json(const registry::device_identity& d, const twin::twin_document& t);

// The same shape plus moduleId, without capabilities/deviceScope. Modules cannot be disabled
// (spec 3.4), so status is always "enabled" and statusUpdateTime is never set.
boost::json::object service_twin_json(const registry::module_identity& m, const twin::twin_document& t);

}  // namespace twinhub::service
