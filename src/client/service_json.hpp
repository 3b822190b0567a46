// JSON of the service API (spec 3.3, 3.4, 4.1) to and from the SDK's value types.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"
#include "twinhub/c2d_message.hpp"
#include "twinhub/identity.hpp"
#include "twinhub/twin.hpp"

#include <boost/json/object.hpp>

namespace twinhub::client {

result<device_identity> device_from_json(const boost::json::value& v);
result<module_identity> module_from_json(const boost::json::value& v);
result<device_twin> twin_from_json(const boost::json::value& v);

// Request bodies for PUT /devices/{id} and PUT /devices/{id}/modules/{mid}.
boost::json::object device_to_json(const device_identity& d);
boost::json::object module_to_json(const module_identity& m);

// The body of one feedback message: a JSON array of {originalMessageId, statusCode, description,
// deviceId, [moduleId], deviceGenerationId, enqueuedTimeUtc} (spec iothub-amqp 3.2). Fails with
// format_error when it is not an array of objects; absent or non-string fields are left empty.
result<std::vector<feedback_record>> feedback_from_json(std::string_view body);

// The answer of DELETE /devices/{id}[/modules/{m}]/commands:
// {"totalMessagesPurged": n, "deviceId": "...", "moduleId": null}.
result<purge_result> purge_from_json(const boost::json::value& v);

}  // namespace twinhub::client
