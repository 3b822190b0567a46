// Internal to src/amqp: what the amqp_server shares with its connections.
#pragma once

#include "amqp/amqp_server.hpp"
#include "store/store.hpp"

namespace twinhub::service {
class c2d_service;
class telemetry_service;
class file_upload_service;
}

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace twinhub::amqp {

// An Event Hubs reader's consumer group (lower case) and partition.
using eh_reader_key = std::pair<std::string, std::uint32_t>;

struct amqp_server::state {
    state(boost::asio::io_context& i, boost::asio::ssl::context& t, service::hub_service& h, amqp_options o)
        : ioc(i), tls(t), hub(h), opts(std::move(o)) {}

    boost::asio::io_context& ioc;
    boost::asio::ssl::context& tls;
    service::hub_service& hub;
    const amqp_options opts;
    std::atomic<methods::method_router*> router{nullptr};
    std::atomic<service::c2d_service*> c2d{nullptr};
    std::atomic<service::telemetry_service*> telemetry{nullptr};
    std::atomic<service::file_upload_service*> files{nullptr};
    std::atomic<bool> stopped{false};
    // AMQP connection numbers live above 2^62 so that the method router never confuses them with
    // MQTT's (which count from 1).
    std::atomic<std::uint64_t> next_connection{(std::uint64_t{1} << 62) + 1};

    // The connection that holds an identity's device links (the latest to attach one).
    void claim(const store::identity_key& id, const std::shared_ptr<connection>& c);
    void release(const store::identity_key& id, const connection* c);
    std::shared_ptr<connection> find(const store::identity_key& id) const;

    // Connections with Event Hubs readers: woken when telemetry is committed.
    void add_reader(const std::shared_ptr<connection>& c);
    std::vector<std::shared_ptr<connection>> readers() const;

    // Epochs (owner levels) of the Event Hubs readers of one consumer group and partition, across
    // connections. claim_partition registers `link` of `c`; with `epoch`, it takes the partition
    // from readers with a lower epoch or none (returned: their connections must detach them). When
    // a reader with a higher epoch is open (or any epoch reader, for a reader without one), nothing
    // is registered and `refusal` says why.
    struct stolen_reader {
        std::weak_ptr<connection> conn;
        std::string link;
        std::int64_t by_epoch = 0;
    };
    std::vector<stolen_reader> claim_partition(const eh_reader_key& key, const std::shared_ptr<connection>& c,
                                               const std::string& link, std::optional<std::int64_t> epoch,
                                               std::string& refusal);
    void release_partition(const eh_reader_key& key, const connection* c, const std::string& link);

    void add_open(const std::shared_ptr<connection>& c);
    void remove_open(const connection* c);  // also forgets it as a reader
    std::vector<std::shared_ptr<connection>> open_connections() const;

private:
    mutable std::mutex mu_;
    std::map<store::identity_key, std::weak_ptr<connection>> by_identity_;
    std::map<const connection*, std::weak_ptr<connection>> open_;
    std::map<const connection*, std::weak_ptr<connection>> readers_;
    struct eh_owner {
        std::weak_ptr<connection> conn;
        std::string link;
        std::optional<std::int64_t> epoch;
    };
    std::map<eh_reader_key, std::vector<eh_owner>> eh_owners_;
};

}  // namespace twinhub::amqp
