// The hub's current routing: a compiled router that a configuration change replaces atomically,
// so that new routes apply to the next message without a restart.
// Thread safety: every member may be called from any thread at any time; current() never waits on
// a compile (configure compiles first, then swaps the pointer under a short lock).
#pragma once

#include "common/errc.hpp"
#include "telemetry/router.hpp"

#include <boost/json/value.hpp>

#include <memory>
#include <mutex>
#include <string>

namespace twinhub::telemetry {

class routing_table {
public:
    // Starts with Azure's defaults: no routes, the fallback route to "events".
    explicit routing_table(std::string hub_name);

    // Parses, validates and compiles an ARM "routing" object and makes it current. On failure
    // (parse_routing_config's errors) the current routing is unchanged.
    result<void> configure(const boost::json::value& routing);
    result<void> configure(routing_config config);

    // The router in force; messages routed with it keep it alive after a reconfiguration.
    std::shared_ptr<const router> current() const;

private:
    const std::string hub_name_;
    mutable std::mutex mutex_;
    std::shared_ptr<const router> current_;
};

}  // namespace twinhub::telemetry
