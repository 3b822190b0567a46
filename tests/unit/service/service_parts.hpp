// The domain services composed by hand, without the hub_service façade, over a fresh memory store:
// what each service's own tests use, so that they show which collaborators a service needs.
#pragma once

#include "common/log.hpp"
#include "service/change_notifier.hpp"
#include "service/event_log.hpp"
#include "service/presence_service.hpp"
#include "service/record_cache.hpp"
#include "service/registry_service.hpp"
#include "service/session_service.hpp"
#include "service/twin_service.hpp"
#include "service/write_pipeline.hpp"
#include "service_test_support.hpp"
#include "store/memory_store.hpp"

#include <memory>

namespace twinhub::service::testing {

struct service_parts {
    explicit service_parts(registry_options o = {}) : registry(cache, pipeline, notifier, sessions, events, o) {
        log::set_level(log::level::warn);
    }
    ~service_parts() {
        store->close();  // runs the outstanding completions
        pipeline.wait_idle();
    }

    std::unique_ptr<store::store> store = store::make_memory_store();
    change_notifier notifier;
    record_cache cache{notifier};
    write_pipeline pipeline{*store, cache.mu, cache};
    session_service sessions{pipeline};
    event_log events{pipeline, notifier, 4, 0};
    registry_service registry;
    twin_service twins{cache, pipeline, notifier, events};
    presence_service presence{cache};

    result<registry::device_identity> create(std::string id) {
        return wait_for<registry::device_identity>(
            [&](auto h) { registry.create_device(device_request(std::move(id)), h); });
    }
    result<registry::module_identity> create_module(std::string d, std::string m) {
        return wait_for<registry::module_identity>(
            [&](auto h) { registry.create_module(module_request(std::move(d), std::move(m)), h); });
    }
};

}  // namespace twinhub::service::testing
