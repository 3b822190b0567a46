#include "twinhub/error.hpp"

#include <stdexcept>

namespace twinhub {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "twinhub"; }
    std::string message(int ev) const override { return to_string(static_cast<errc>(ev)); }
};

}  // namespace

const boost::system::error_category& twinhub_category() noexcept {
    static const category c;
    return c;
}

const char* to_string(errc e) noexcept {
    switch (e) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::format_error: return "format_error";
    case errc::unauthorized: return "unauthorized";
    case errc::device_not_found: return "device_not_found";
    case errc::module_not_found: return "module_not_found";
    case errc::device_not_online: return "device_not_online";
    case errc::not_found: return "not_found";
    case errc::method_not_allowed: return "method_not_allowed";
    case errc::device_already_exists: return "device_already_exists";
    case errc::module_already_exists: return "module_already_exists";
    case errc::precondition_failed: return "precondition_failed";
    case errc::message_too_large: return "message_too_large";
    case errc::too_many_modules: return "too_many_modules";
    case errc::too_many_devices: return "too_many_devices";
    case errc::throttled: return "throttled";
    case errc::gateway_timeout: return "gateway_timeout";
    case errc::storage_error: return "storage_error";
    case errc::corrupt_data: return "corrupt_data";
    case errc::shutting_down: return "shutting_down";
    case errc::internal: return "internal";
    case errc::device_defined_multiple_times: return "device_defined_multiple_times";
    case errc::connection_failed: return "connection_failed";
    case errc::invalid_protocol_version: return "invalid_protocol_version";
    case errc::device_queue_full: return "device_queue_full";
    case errc::message_lock_lost: return "message_lock_lost";
    }
    return "unknown";
}

void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw std::runtime_error(std::string(to_string(e.code)) + ": " + e.message);
}

}  // namespace twinhub
