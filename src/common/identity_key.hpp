// The name of a device or module identity: the one key that every layer (auth, store, service,
// protocol heads, topic grammar) uses for "which identity". A plain value.
#pragma once

#include <compare>
#include <string>

namespace twinhub {

// Identifies a device (module_id empty) or a module.
struct identity_key {
    std::string device_id;
    std::string module_id;

    bool is_module() const noexcept { return !module_id.empty(); }
    friend bool operator==(const identity_key&, const identity_key&) = default;
    friend auto operator<=>(const identity_key&, const identity_key&) = default;
};

}  // namespace twinhub
