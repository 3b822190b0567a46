// Device and module identities as the hub's identity registry returns them (spec 3.3, 3.4).
// Thread safety: plain values.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

namespace twinhub {

struct symmetric_keys {
    std::string primary_key;    // base64; empty in a create request = the hub generates one
    std::string secondary_key;
};

struct device_identity {
    std::string device_id;
    std::string generation_id;
    std::string etag;                 // identity etag, for If-Match on update/delete
    std::string status = "enabled";   // "enabled" | "disabled"
    std::string status_reason;
    std::string connection_state;     // "Connected" | "Disconnected"
    std::string authentication_type;  // "sas", "selfSigned", "certificateAuthority", "none"
    symmetric_keys keys;
    bool iot_edge = false;
    std::int64_t cloud_to_device_message_count = 0;
    boost::json::object json;  // the whole document as received (empty for a request)
};

struct module_identity {
    std::string device_id;
    std::string module_id;
    std::string managed_by;
    std::string generation_id;
    std::string etag;
    std::string connection_state;
    std::string authentication_type;
    symmetric_keys keys;
    boost::json::object json;
};

}  // namespace twinhub
