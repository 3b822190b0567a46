// The whole twinhub C++ SDK: service side (registry_manager over HTTPS; service_client for
// cloud-to-device messages over AMQP) and device side (device_client, module_client). Link
// twinhub::client (find_package(twinhub)).
#pragma once

#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"
#include "twinhub/registry_manager.hpp"
#include "twinhub/event_consumer.hpp"
#include "twinhub/service_client.hpp"
