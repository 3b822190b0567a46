// The service side of the SDK: the identity registry (devices and modules), twins, queries,
// direct methods and C2D queue management of one hub, over its HTTPS REST API (spec 3), authenticated with a shared access
// policy from a service connection string ("HostName=h;SharedAccessKeyName=n;SharedAccessKey=k").
//
// Every call is synchronous: it sends one request (query_all: one per page) over a kept-alive TLS
// connection, reconnecting when the hub closed it, and returns the hub's answer or an error:
//   * the hub refused: the errc of its error code (device_not_found, precondition_failed for a
//     stale etag, unauthorized for a wrong key, ...) with the hub's message;
//   * the hub could not be reached or TLS failed: errc::connection_failed;
//   * the answer is not what the API promises: errc::format_error.
// A SAS token is generated for every request from the policy key (valid for sas_token_ttl).
//
// Etags: update/delete/replace calls take an etag; "*" (the default) means "whatever the current
// version is", any other value makes the hub refuse with precondition_failed when it is stale.
//
// Thread safety: a registry_manager may be used from several threads at once; requests are
// serialised over its single connection. Moving it is not thread-safe.
#pragma once

#include "twinhub/c2d_message.hpp"
#include "twinhub/error.hpp"
#include "twinhub/identity.hpp"
#include "twinhub/method.hpp"
#include "twinhub/tls_options.hpp"
#include "twinhub/twin.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub {

struct service_options {
    tls_options tls;
    // TCP port of the REST API. 0: the port in HostName ("host:port") if any, else 443.
    std::uint16_t port = 0;
    // TCP port of AMQP over TLS (service_client). 0: 5671.
    std::uint16_t amqp_port = 0;
    std::chrono::milliseconds timeout{60'000};     // per request (direct methods: plus their timeouts)
    std::chrono::seconds sas_token_ttl{3600};
};

enum class key_type { primary, secondary };

struct query_page {
    boost::json::array items;                 // twins or projected objects
    std::optional<std::string> continuation;  // set when more pages exist
};

class registry_manager {
public:
    // Parses a service connection string; fails with invalid_argument when it is not one. Does not
    // connect: the first call does.
    static result<registry_manager> from_connection_string(std::string_view connection_string,
                                                           service_options options = {});

    registry_manager(registry_manager&&) noexcept;
    registry_manager& operator=(registry_manager&&) noexcept;
    ~registry_manager();

    const std::string& host_name() const;  // HostName of the connection string, without a port

    // ---- devices ----
    // Creates a device with SAS authentication; empty keys make the hub generate them. Fails with
    // device_already_exists when the id is taken.
    result<device_identity> create_device(std::string_view device_id, const symmetric_keys& keys = {},
                                          std::string_view status = "enabled");
    result<device_identity> get_device(std::string_view device_id);
    result<std::vector<device_identity>> list_devices(int top = 1000);
    // Writes status, status_reason, keys and iot_edge of `device`. An empty key makes the hub
    // generate a new one, as IoT Hub does: update a device read with get_device to keep its keys.
    result<device_identity> update_device(const device_identity& device, std::string_view etag = "*");
    result<void> delete_device(std::string_view device_id, std::string_view etag = "*");

    // ---- modules ----
    result<module_identity> create_module(std::string_view device_id, std::string_view module_id,
                                          const symmetric_keys& keys = {}, std::string_view managed_by = {});
    result<module_identity> get_module(std::string_view device_id, std::string_view module_id);
    result<std::vector<module_identity>> list_modules(std::string_view device_id);
    // Writes keys and managed_by of `module`; an empty key is generated anew, as for devices.
    result<module_identity> update_module(const module_identity& module, std::string_view etag = "*");
    result<void> delete_module(std::string_view device_id, std::string_view module_id, std::string_view etag = "*");

    // ---- connection strings: read the identity, format "HostName=h;DeviceId=d[;ModuleId=m];SharedAccessKey=k"
    result<std::string> device_connection_string(std::string_view device_id, key_type k = key_type::primary);
    result<std::string> module_connection_string(std::string_view device_id, std::string_view module_id,
                                                 key_type k = key_type::primary);

    // ---- twins ----
    result<device_twin> get_twin(std::string_view device_id);
    // Merge-patch: `patch` may hold "tags" and/or "properties": {"desired": {...}}; null deletes.
    result<device_twin> update_twin(std::string_view device_id, const boost::json::object& patch, std::string_view etag = "*");
    // Replaces tags and desired properties wholesale with those of `document`.
    result<device_twin> replace_twin(std::string_view device_id, const boost::json::object& document,
                              std::string_view etag = "*");
    result<device_twin> get_module_twin(std::string_view device_id, std::string_view module_id);
    result<device_twin> update_module_twin(std::string_view device_id, std::string_view module_id,
                                    const boost::json::object& patch, std::string_view etag = "*");
    result<device_twin> replace_module_twin(std::string_view device_id, std::string_view module_id,
                                     const boost::json::object& document, std::string_view etag = "*");

    // ---- bulk registry operations (POST /devices, at most 100 entries) ----
    // ExportImportDevice objects (id, importMode create|update|updateIfMatchETag|delete|
    // deleteIfMatchETag, authentication, status, ...). Each entry is its own write: the answer is
    // IoT Hub's {"isSuccessful", "errors": [{"deviceId", "errorCode", "errorStatus"}], "warnings"}
    // whether or not every entry succeeded; an error only when the request as a whole was refused.
    result<boost::json::object> bulk(const boost::json::array& devices);

    // ---- queries (POST /devices/query) ----
    // One page. page_size 0 lets the hub choose; pass the previous page's continuation for the next.
    result<query_page> query(std::string_view sql, int page_size = 0, std::string_view continuation = {});
    // Every page until the last, or until `max_items` items (0 = no limit).
    result<boost::json::array> query_all(std::string_view sql, std::size_t max_items = 0, int page_size = 100);

    // ---- direct methods ----
    // The device's answer (any status it chose), or device_not_online, gateway_timeout, ...
    result<method_result> invoke_device_method(std::string_view device_id, const method_invocation& call);
    result<method_result> invoke_module_method(std::string_view device_id, std::string_view module_id,
                                               const method_invocation& call);

    // ---- cloud-to-device queues ----
    // Removes every message queued for the device (DELETE /devices/{id}/commands), or for one of
    // its modules (/devices/{id}/modules/{mid}/commands, a twinhub extension); no feedback is sent.
    // Fails with device_not_found / module_not_found.
    result<purge_result> purge_c2d_messages(std::string_view device_id, std::string_view module_id = {});

    // ---- the device HTTPS C2D API, on behalf of the device (as az iot device c2d-message does) ----
    // Signed with this policy for sr={host}/devices/{id}, so the policy needs DeviceConnect.
    // The next message for the device, locked for the caller (its lock_token is the ETag), or
    // std::nullopt when the queue is empty (204). Application property names arrive lower-cased
    // (HTTP header names are case-insensitive).
    result<std::optional<received_c2d_message>> receive_c2d_message(std::string_view device_id);
    // Settle a received message by its lock token: complete removes it (Success feedback if asked),
    // reject dead-letters it (Rejected feedback), abandon puts it back in the queue. A stale or
    // unknown token fails with message_lock_lost.
    result<void> complete_c2d_message(std::string_view device_id, std::string_view lock_token);
    result<void> reject_c2d_message(std::string_view device_id, std::string_view lock_token);
    result<void> abandon_c2d_message(std::string_view device_id, std::string_view lock_token);

    // ---- escape hatch: one raw REST call (target like "/statistics/devices"); returns the body.
    // A non-empty `if_match` is sent as the If-Match header (quoted unless it already is).
    result<std::string> raw_request(std::string_view method, std::string_view target, std::string_view body = {},
                                    std::string_view if_match = {});

    struct impl;

private:
    explicit registry_manager(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub
