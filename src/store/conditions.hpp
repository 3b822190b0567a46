// The one reading of a write's `expect` condition, shared by every backend so that they fail alike
// (see the rules beside `expect` in store.hpp).
// Thread safety: pure functions.
#pragma once

#include "store/store.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace twinhub::store {

// What a condition is checked against: a record's name for messages, and the codes for "it exists"
// and "it is missing".
struct record_kind {
    std::string what;  // "Device 'd1'", "Module 'm1' on device 'd1'", "Twin of 'd1'"
    errc exists;
    errc missing;
};

inline record_kind device_kind(const std::string& device_id) {
    return {"Device '" + device_id + "'", errc::device_already_exists, errc::device_not_found};
}

inline record_kind module_kind(const std::string& device_id, const std::string& module_id) {
    return {"Module '" + module_id + "' on device '" + device_id + "'", errc::module_already_exists,
            errc::module_not_found};
}

inline record_kind twin_kind(const identity_key& k) {
    std::string name = k.is_module() ? k.device_id + "/" + k.module_id : k.device_id;
    return {"Twin of '" + name + "'", errc::precondition_failed, errc::not_found};
}

// `current` is the stored revision, or nullopt when the record is missing.
inline result<void> check_condition(const expect& e, std::optional<std::uint64_t> current, const record_kind& r) {
    switch (e.k) {
    case expect::kind::any: return {};
    case expect::kind::absent:
        if (current) return error{r.exists, r.what + " already exists."};
        return {};
    case expect::kind::present:
        if (!current) return error{r.missing, r.what + " not found."};
        return {};
    case expect::kind::revision:
        if (!current) return error{r.missing, r.what + " not found."};
        if (*current != e.rev)
            return error{errc::precondition_failed, r.what + " has changed (revision " + std::to_string(*current) +
                                                        ", expected " + std::to_string(e.rev) + ")."};
        return {};
    }
    return {};
}

}  // namespace twinhub::store
