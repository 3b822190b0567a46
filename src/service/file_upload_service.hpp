// File upload (spec iothub-amqp 3.3; Azure's "upload files with IoT Hub"): a device asks for a
// SAS URI for a blob in the hub's storage container (POST /devices/{id}/files), uploads the blob
// itself to Azure Storage (or Azurite), then reports the outcome (POST /devices/{id}/files/notifications);
// a successful upload becomes a file upload notification for the service
// (/messages/serviceBound/filenotifications), durable until completed.
//
// The blob SAS is a service SAS (sv=2019-12-12, sr=b, sp=rw), signed locally with the storage
// account key; it expires after sas_ttl. The hub talks to storage only through storage_client
// (created by the server, over HTTPS): to create the container once, and to read the blob's size
// and last-modified time when a device reports success.
//
// Upload correlations (correlationId -> device, blob) live in memory only: a restart forgets them
// (a device's notify then fails with unknown correlation, as for an expired one). Notifications are
// durable (hub settings "filenotification/<seq>"): appended before the device's notify is answered,
// deleted when the service completes them; a lock (one notification per delivery) lives in memory;
// abandon or a lost lock makes it available again with delivery count + 1, and it is dropped after
// max_delivery_count deliveries or when notification_ttl has passed (IoT Hub: 10, 1 hour).
//
// Errors, which the REST head maps to Azure's codes:
//   not_found            storage is not configured (DefaultStorageEndpointNotConfigured)
//   message_lock_lost    unknown correlation id, or one of another device (InvalidFileUploadCorrelationId)
//   precondition_failed  expired correlation id (ExpiredFileUploadCorrelationId)
//   throttled            max_active_per_device uploads in flight (DeviceMaximumActiveFileUploadLimitExceeded)
//   invalid_argument     bad blob name or status
//   connection_failed    storage could not be reached or the blob is not there (InvalidStorageEndpointOrBlob)
//
// Thread safety: every member may be called from any thread. Handlers run on the caller's thread,
// the storage client's or the store's; notifications (subscribe) never under a lock of this class.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"
#include "service/handler.hpp"
#include "store/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace twinhub::service {

class hub_service;

// An Azure Storage account as its connection string names it.
struct storage_account {
    std::string account_name;
    std::string account_key;    // decoded bytes
    std::string blob_endpoint;  // "https://host[:port][/path]", no trailing '/'
    std::string container;

    // The endpoint without its scheme ("acct.blob.core.windows.net", "127.0.0.1:10000/devstoreaccount1"):
    // the hostName devices get, so that https://{hostName}/{container}/{blob}{sas} is the blob's URL.
    std::string host_name() const;
};

// "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net" or
// with BlobEndpoint=https://host[:port]/path (Azurite). Only https endpoints (the device SDKs build
// https URLs). invalid_argument with the reason otherwise.
result<storage_account> parse_storage_connection_string(std::string_view cs, std::string container);

// A service SAS query string ("sv=...&sig=..."; no '?') for `blob` in the account's container
// (empty blob: the container itself, sr=c).
std::string blob_service_sas(const storage_account& a, std::string_view blob, std::string_view permissions,
                             time_point expiry);
// An account SAS (ss=b) for container operations (srt=c).
std::string container_account_sas(const storage_account& a, std::string_view permissions, time_point expiry);
// Percent-encodes a blob name for a URL path ('/' kept).
std::string blob_path_encode(std::string_view name);

struct blob_properties {
    std::uint64_t size = 0;
    std::string last_modified;  // ISO-8601 UTC, as IoT Hub writes lastUpdatedTime
};

// The hub's access to the blob service; implementations answer on their own thread.
class storage_client {
public:
    virtual ~storage_client() = default;
    // PUT {url}?restype=container&{sas}: created or already there is success.
    virtual void create_container(std::string url, handler<void> done) = 0;
    // HEAD {url} (a blob URL with a read SAS): the blob's size and Last-Modified.
    virtual void blob_properties_of(std::string url, handler<blob_properties> done) = 0;
    // GET {url} (a blob URL with a read SAS): the blob's bytes. not_found when storage answers 404
    // (no such blob or container), unauthorized for 403 (the SAS does not allow it),
    // connection_failed for everything else. Blobs over 256 MiB fail with message_too_large.
    virtual void get_blob(std::string url, handler<std::string> done) = 0;
    // PUT {url} as one block blob (Put Blob: the blob appears whole or not at all). Errors as get_blob.
    virtual void put_blob(std::string url, std::string body, handler<void> done) = 0;
    // HEAD {url}: storage's status and x-ms-error-code (200, 404 BlobNotFound, 403 AuthenticationFailed...),
    // to check a SAS without writing; connection_failed when storage cannot be reached.
    struct answer {
        int status = 0;
        std::string error_code;
    };
    virtual void probe_blob(std::string url, handler<answer> done) = 0;
};

struct file_upload_options {
    std::optional<storage_account> storage;  // nullopt: file upload is not configured
    storage_client* client = nullptr;         // must outlive the service when storage is set
    std::chrono::seconds sas_ttl{3600};
    std::size_t max_active_per_device = 10;   // IoT Hub's limit of concurrent uploads
    std::chrono::seconds notification_ttl{3600};
    std::uint32_t max_delivery_count = 10;
    std::chrono::milliseconds sweep_interval{1000};  // zero: no sweeper thread
    std::function<time_point()> clock;               // empty: twinhub::now()
};

struct upload_grant {
    std::string correlation_id;
    std::string host_name;
    std::string container_name;
    std::string blob_name;  // "{deviceId}/{name}"
    std::string sas_token;  // "?sv=..."
};

struct upload_status {
    std::string correlation_id;
    bool is_success = false;
    int status_code = 0;
    std::string status_description;
};

struct file_notification {
    std::uint64_t sequence_number = 0;
    std::string device_id;
    std::string blob_name;
    std::string blob_uri;
    std::string last_updated_time;
    std::uint64_t blob_size = 0;
    std::string enqueued_time;       // ISO-8601
    std::int64_t expiry_ns = 0;
    std::uint32_t delivery_count = 0;
};

// {"deviceId","blobUri","blobName","lastUpdatedTime","blobSizeInBytes","enqueuedTimeUtc"}: the body
// of one notification message.
std::string file_notification_json(const file_notification& n);

struct locked_file_notification {
    std::string lock_token;
    file_notification notification;
};

class file_upload_service {
public:
    using subscription = std::uint64_t;

    // Loads the durable notifications; with storage, asks the client to create the container.
    static result<std::unique_ptr<file_upload_service>> open(hub_service& hub, file_upload_options opts);
    ~file_upload_service();

    bool configured() const noexcept;

    // ---- device side ----
    // A SAS for "{device}/{blob_name}" once the container is known to exist.
    void begin_upload(const store::identity_key& device, std::string blob_name, handler<upload_grant> done);
    // The device's report. Success: reads the blob's properties, appends the notification (durable)
    // and completes; failure: forgets the correlation. Either way the correlation is used up.
    void finish_upload(const store::identity_key& device, upload_status status, handler<void> done);
    std::size_t active_uploads(const store::identity_key& device) const;

    // ---- service side (/messages/serviceBound/filenotifications) ----
    subscription subscribe(std::function<void()> notify);
    void unsubscribe(subscription s);
    std::optional<locked_file_notification> lock_next(std::chrono::milliseconds lock_duration);
    void complete(std::string_view lock_token, handler<void> done);
    result<void> abandon(std::string_view lock_token);
    std::size_t notification_count() const;

    void sweep();

    struct impl;

private:
    explicit file_upload_service(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::service
