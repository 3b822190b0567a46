// twinhub::device_twin: a device or module twin as the service API returns it (spec 4.1): identity mirrors, tags,
// desired and reported properties (with $version and $metadata), the twin etag and version.
// Thread safety: plain value.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

namespace twinhub {

struct device_twin {
    std::string device_id;
    std::string module_id;  // empty for a device twin
    std::string etag;       // twin etag, for If-Match on update/replace
    std::int64_t version = 0;
    boost::json::object tags;
    boost::json::object desired;   // includes "$version" and "$metadata"
    boost::json::object reported;  // includes "$version" and "$metadata"
    boost::json::object json;      // the whole document as received

    std::int64_t desired_version() const;   // desired.$version, 0 when absent
    std::int64_t reported_version() const;  // reported.$version, 0 when absent
};

}  // namespace twinhub
