// The hub's HTTPS client for Azure Storage (file upload, import/export jobs): one worker thread that runs each request
// with a deadline, trusting the system CAs, the hub's own CA (so a storage emulator with a
// certificate signed by it is trusted) and an optional extra CA file.
// Thread safety: the storage_client members may be called from any thread; handlers run on the
// worker thread. The destructor fails what is still queued with shutting_down and joins.
#pragma once

#include "service/file_upload_service.hpp"

#include <filesystem>
#include <memory>
#include <vector>

namespace twinhub::server {

class storage_https final : public service::storage_client {
public:
    explicit storage_https(std::vector<std::filesystem::path> ca_files);
    ~storage_https() override;

    void create_container(std::string url, service::handler<void> done) override;
    void blob_properties_of(std::string url, service::handler<service::blob_properties> done) override;
    void get_blob(std::string url, service::handler<std::string> done) override;
    void put_blob(std::string url, std::string body, service::handler<void> done) override;
    void probe_blob(std::string url, service::handler<answer> done) override;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::server
