// Hub settings: durable key -> JSON document (consumer groups, the built-in endpoint's shape,
// custom endpoint indexes), in memory and made durable through the write pipeline.
//
// Thread safety: every member may be called from any thread. The pipeline must outlive this.
#pragma once

#include "service/write_pipeline.hpp"

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::service {

class settings_service {
public:
    explicit settings_service(write_pipeline& p) : pipeline_(p) {}

    void load(std::vector<std::pair<std::string, std::string>> settings);  // before serving

    std::optional<std::string> get(std::string_view key) const;
    std::vector<std::pair<std::string, std::string>> with_prefix(std::string_view prefix) const;
    // Committed, then readable, then `done`. `doc` empty deletes the key (no error when absent).
    void put(std::string key, std::string doc, std::function<void(result<void>)> done);

private:
    write_pipeline& pipeline_;
    mutable std::mutex mu_;
    std::map<std::string, std::string, std::less<>> settings_;
};

}  // namespace twinhub::service
