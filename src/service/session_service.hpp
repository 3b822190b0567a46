// MQTT session records (spec 5.3): a persistent session's subscriptions, kept in memory and made
// durable through the write pipeline. The store cascades sessions with their identity; the
// registry calls drop_sessions_of() to mirror that.
//
// Thread safety: every member may be called from any thread. Handlers run on the store's thread
// (see hub_service). The pipeline must outlive the session_service.
#pragma once

#include "service/write_pipeline.hpp"
#include "store/store.hpp"

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::service {

class session_service {
public:
    explicit session_service(write_pipeline& p) : pipeline_(p) {}

    void load(std::vector<store::session_record> sessions);  // before serving

    std::optional<store::session_record> get(std::string_view client_id) const;
    // Committed, then readable, then `done`; on failure nothing changes.
    void put(store::session_record s, std::function<void(result<void>)> done);
    void remove(std::string client_id, std::function<void(result<void>)> done);

    // Forgets the sessions of a deleted identity (a device's: its own and its modules'). Called
    // under the record cache's lock, which is always taken before this service's.
    void drop_sessions_of(const std::string& device_id, const std::string& module_id);

private:
    write_pipeline& pipeline_;
    mutable std::mutex mu_;
    std::map<std::string, store::session_record, std::less<>> sessions_;
};

}  // namespace twinhub::service
