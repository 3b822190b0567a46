// The whole twinhub C++ SDK: service side (registry_manager) and device side (device_client,
// module_client). Link twinhub::client (find_package(twinhub)).
#pragma once

#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"
#include "twinhub/registry_manager.hpp"
