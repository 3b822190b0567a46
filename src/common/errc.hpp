// twinhub's one error enum (errc), error and result<T>, for the hub's modules. They are defined in
// the SDK's public header include/twinhub/error.hpp, so that the SDK and the hub share one
// vocabulary and the public headers stand alone; src/common/error_mapping.hpp maps errc to HTTP,
// MQTT and twin-response codes.
#pragma once

#include "twinhub/error.hpp"
