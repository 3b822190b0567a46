// Bulk import (spec 3.9): each entry becomes its own registry write.
#include "service/registry_service.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string_view>

namespace twinhub::service {
namespace {

std::string quote_etag(const std::string& etag) {
    if (etag.empty() || etag.front() == '"' || etag.rfind("W/", 0) == 0 || etag == "*") return etag;
    return "\"" + etag + "\"";
}

}  // namespace

void registry_service::bulk(std::vector<bulk_entry> entries, handler<bulk_result> done) {
    if (entries.size() > opts_.max_bulk_entries)
        return done(error{errc::invalid_argument, "A bulk request may hold at most " +
                                                      std::to_string(opts_.max_bulk_entries) +
                                                      " devices; it held " + std::to_string(entries.size()) + "."});
    {
        std::set<std::string_view> seen;
        for (auto& en : entries)
            if (!seen.insert(en.device.device_id).second)
                return done(error{errc::device_defined_multiple_times,
                                  "Device '" + en.device.device_id + "' is defined multiple times in the request."});
    }
    if (entries.empty()) return done(bulk_result{});

    struct state {
        std::vector<std::optional<bulk_error>> errors;
        std::atomic<std::size_t> remaining;
        handler<bulk_result> done;
    };
    auto st = std::make_shared<state>();
    st->errors.resize(entries.size());
    st->remaining = entries.size();
    st->done = std::move(done);

    auto finish_one = [st](std::size_t i, const bulk_entry& en, const std::optional<error>& err) {
        if (err) st->errors[i] = bulk_error{en.device.device_id, err->code, err->message, en.import_mode};
        if (st->remaining.fetch_sub(1) != 1) return;
        bulk_result r;
        for (auto& e : st->errors)
            if (e) r.errors.push_back(std::move(*e));
        r.is_successful = r.errors.empty();
        st->done(std::move(r));
    };

    for (std::size_t i = 0; i < entries.size(); ++i) {
        // Each entry is its own write; the handlers only record the outcome.
        auto en = std::make_shared<bulk_entry>(std::move(entries[i]));
        auto on_identity = [finish_one, i, en](result<registry::device_identity> r) {
            finish_one(i, *en, r ? std::nullopt : std::optional<error>(r.error()));
        };
        auto on_void = [finish_one, i, en](result<void> r) {
            finish_one(i, *en, r ? std::nullopt : std::optional<error>(r.error()));
        };
        const std::string& mode = en->import_mode;
        const bool needs_etag = mode == "updateifmatchetag" || mode == "deleteifmatchetag";
        if (needs_etag && en->etag.empty()) {
            finish_one(i, *en, error{errc::invalid_argument, "importMode '" + mode + "' of device '" +
                                                                 en->device.device_id + "' requires an eTag."});
            continue;
        }
        if (mode == "create") {
            create_device(en->device, on_identity);
        } else if (mode == "createorupdate") {
            if (get_device(en->device.device_id))
                update_device(en->device, "*", on_identity);
            else
                create_device(en->device, on_identity);
        } else if (mode == "update") {
            update_device(en->device, "*", on_identity);
        } else if (mode == "updateifmatchetag") {
            update_device(en->device, quote_etag(en->etag), on_identity);
        } else if (mode == "delete") {
            delete_device(en->device.device_id, "*", on_void);
        } else if (mode == "deleteifmatchetag") {
            delete_device(en->device.device_id, quote_etag(en->etag), on_void);
        } else {
            finish_one(i, *en, error{errc::invalid_argument, "importMode '" + mode + "' of device '" +
                                                                 en->device.device_id + "' is not supported."});
        }
    }
}

}  // namespace twinhub::service
