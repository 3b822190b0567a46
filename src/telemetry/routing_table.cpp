#include "telemetry/routing_table.hpp"

#include <utility>

namespace twinhub::telemetry {

routing_table::routing_table(std::string hub_name) : hub_name_(std::move(hub_name)) {
    current_ = router::compile(routing_config{}, hub_name_).value();  // the defaults always compile
}

result<void> routing_table::configure(const boost::json::value& routing) {
    auto config = parse_routing_config(routing);
    if (!config) return config.error();
    return configure(std::move(*config));
}

result<void> routing_table::configure(routing_config config) {
    auto compiled = router::compile(std::move(config), hub_name_);
    if (!compiled) return compiled.error();
    std::shared_ptr<const router> old;
    {
        std::lock_guard lock(mutex_);
        old = std::exchange(current_, std::move(*compiled));
    }
    return {};  // `old` is released outside the lock
}

std::shared_ptr<const router> routing_table::current() const {
    std::lock_guard lock(mutex_);
    return current_;
}

}  // namespace twinhub::telemetry
