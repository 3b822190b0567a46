// The built-in Event Hubs-compatible endpoint (spec: iothub-amqp 5): partition receivers with
// selector filters and epochs (owner levels), $management READ, consumer groups, and the
// amqp:link:redirect that IoT Hub answers to links on its own "messages/events" address.
#include "amqp/connection.hpp"

#include "amqp/event_encoding.hpp"
#include "amqp/event_position.hpp"
#include "amqp/message_codec.hpp"
#include "common/log.hpp"
#include "service/hub_service.hpp"
#include "service/telemetry_service.hpp"

#include <proton/connection.hpp>
#include <proton/error_condition.hpp>
#include <proton/link.hpp>
#include <proton/scalar.hpp>
#include <proton/sender_options.hpp>
#include <proton/source.hpp>
#include <proton/source_options.hpp>
#include <proton/symbol.hpp>
#include <proton/target.hpp>
#include <proton/timestamp.hpp>

#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/link.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <variant>
#include <vector>

namespace twinhub::amqp {

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The partition number of `text` when it names one of `count` partitions.
std::optional<std::uint32_t> partition_number(const std::string& text, std::uint32_t count) {
    std::uint32_t p = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || p >= count) return std::nullopt;
    return p;
}

// `com.microsoft:epoch` of an Event Hubs receiver's attach (its owner level), if it has one.
std::optional<std::int64_t> link_epoch(const proton::sender& s) {
    try {
        auto props = s.properties();
        auto it = props.find(proton::symbol("com.microsoft:epoch"));
        if (it == props.end()) return std::nullopt;
        auto v = proton::get<proton::scalar>(it->second);
        switch (v.type()) {
        case proton::LONG: return proton::get<std::int64_t>(v);
        case proton::INT: return proton::get<std::int32_t>(v);
        case proton::ULONG: return static_cast<std::int64_t>(proton::get<std::uint64_t>(v));
        case proton::UINT: return proton::get<std::uint32_t>(v);
        default: return std::nullopt;
        }
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// Proton's C++ link::close(error_condition) sends the condition's name and description but, in
// Debian's 0.37, not its info map (measured: the detach carries a null info). The redirect's info
// (hostname, address) is what its readers follow, so the condition is written with the C API.
struct raw_endpoint : proton::link {
    static pn_link_t* of(const proton::link& l) { return static_cast<const raw_endpoint&>(l).pn_object(); }
};

void close_with_info(proton::link& l, const char* name, const std::string& description,
                     const std::vector<std::pair<std::string, std::variant<std::string, std::int32_t>>>& info) {
    pn_link_t* pl = raw_endpoint::of(l);
    pn_condition_t* c = pn_link_condition(pl);
    pn_condition_clear(c);
    pn_condition_set_name(c, name);
    pn_condition_set_description(c, description.c_str());
    pn_data_t* d = pn_condition_info(c);
    pn_data_clear(d);
    pn_data_put_map(d);
    pn_data_enter(d);
    for (const auto& [key, value] : info) {
        pn_data_put_symbol(d, pn_bytes(key.size(), key.data()));
        if (auto* text = std::get_if<std::string>(&value)) pn_data_put_string(d, pn_bytes(text->size(), text->data()));
        else pn_data_put_int(d, std::get<std::int32_t>(value));
    }
    pn_data_exit(d);
    pn_link_close(pl);
}

}  // namespace

// ---- epochs (owner levels) across connections ----

std::vector<amqp_server::state::stolen_reader> amqp_server::state::claim_partition(
    const eh_reader_key& key, const std::shared_ptr<connection>& c, const std::string& link, std::optional<std::int64_t> epoch,
    std::string& refusal) {
    std::lock_guard lock(mu_);
    auto& readers = eh_owners_[key];
    // Forget readers whose connection is gone.
    std::erase_if(readers, [](const eh_owner& o) { return o.conn.expired(); });
    std::optional<std::int64_t> highest;
    for (auto& o : readers)
        if (o.epoch && (!highest || *o.epoch > *highest)) highest = o.epoch;
    if (highest && (!epoch || *epoch < *highest)) {
        refusal = epoch ? "Receiver with epoch '" + std::to_string(*epoch) + "' cannot be created: a receiver with the higher epoch '" +
                              std::to_string(*highest) + "' is open on this partition of this consumer group."
                        : "A receiver with epoch '" + std::to_string(*highest) +
                              "' is open on this partition of this consumer group; a receiver without an epoch cannot be created.";
        return {};
    }
    std::vector<stolen_reader> stolen;
    if (epoch) {
        std::erase_if(readers, [&](const eh_owner& o) {
            if (o.epoch && *o.epoch >= *epoch) return false;
            stolen.push_back({o.conn, o.link, *epoch});
            return true;
        });
    }
    readers.push_back({c, link, epoch});
    return stolen;
}

void amqp_server::state::release_partition(const eh_reader_key& key, const connection* c, const std::string& link) {
    std::lock_guard lock(mu_);
    auto it = eh_owners_.find(key);
    if (it == eh_owners_.end()) return;
    std::erase_if(it->second, [&](const eh_owner& o) {
        auto p = o.conn.lock();
        return !p || (p.get() == c && o.link == link);
    });
    if (it->second.empty()) eh_owners_.erase(it);
}

void amqp_server::connection::steal_reader(const std::string& link, std::int64_t by_epoch) {
    post([this, link, by_epoch] {
        auto it = eh_readers_.find(link);
        if (it == eh_readers_.end()) return;
        auto s = it->second.link;
        const std::string why = "New receiver with higher epoch of '" + std::to_string(by_epoch) +
                                "' is created hence current receiver is getting disconnected.";
        log::info("amqp.eventhub_receiver_stolen", {{"conn", log_id_}, {"link", link}, {"epoch", by_epoch}});
        st_->release_partition(it->second.key, this, link);
        eh_readers_.erase(it);
        senders_.erase(link);
        s.close(proton::error_condition("amqp:link:stolen", why));
    });
}

void amqp_server::connection::eh_forget(const std::string& link) {
    auto it = eh_readers_.find(link);
    if (it == eh_readers_.end()) return;
    st_->release_partition(it->second.key, this, link);
    eh_readers_.erase(it);
}

void amqp_server::connection::eh_forget_all() {
    for (auto& [name, r] : eh_readers_) st_->release_partition(r.key, this, name);
    eh_readers_.clear();
}

// ---- links ----

std::optional<std::uint32_t> amqp_server::connection::eh_entity(const std::string& entity) const {
    if (entity.empty() || entity == "messages/events" || lower(entity) == lower(st_->opts.event_hub_name)) return 0u;
    // A custom Event Hubs-compatible endpoint of the routing configuration.
    if (auto* tel = st_->telemetry.load())
        if (auto i = tel->custom_endpoint_index(entity)) return store::stream_base(*i);
    return std::nullopt;
}

bool amqp_server::connection::eh_redirect(proton::link l, const link_address& a) {
    if (a.entity != "messages/events") return false;
    // IoT Hub answers links on its own address with a redirect to the Event Hubs-compatible
    // endpoint (spec: iothub-amqp 5.6, A.1): here the same host and AMQP port, entity = the Event
    // Hub name. az iot hub monitor-events and Microsoft's sample read hostname and address.
    std::string host = l.connection().virtual_host();
    if (host.empty() || std::find(st_->opts.host_names.begin(), st_->opts.host_names.end(), host) == st_->opts.host_names.end())
        host = st_->opts.host_names.empty() ? std::string("localhost") : st_->opts.host_names.front();
    const unsigned short port = st_->opts.redirect_port ? st_->opts.redirect_port : st_->opts.port;
    std::string path = st_->opts.event_hub_name;
    if (a.kind == link_kind::eventhub_partition) path += "/ConsumerGroups/" + a.consumer_group + "/Partitions/" + a.partition;
    else path += "/$management";
    const std::string address = "amqps://" + host + ":" + std::to_string(port) + "/" + path;
    log::info("amqp.link_redirected", {{"conn", log_id_}, {"link", l.name()}, {"address", address}});
    close_with_info(l, "amqp:link:redirect",
                    "Read the device-to-cloud events from the Event Hubs-compatible endpoint '" + address + "'.",
                    {{"hostname", host}, {"network-host", host}, {"port", static_cast<std::int32_t>(port)}, {"address", address}});
    return true;
}

void amqp_server::connection::eh_open(proton::sender& s, const link_address& a) {
    proton::sender_options o;
    proton::source_options src;
    src.address(s.source().address());
    o.source(src);
    s.open(o);
    if (eh_redirect(s, a)) return;
    const auto base = eh_entity(a.entity);
    if (!base)
        return refuse(s, "amqp:not-found",
                      "The Event Hub '" + a.entity + "' does not exist here (it is '" + st_->opts.event_hub_name + "').");
    auto* tel = st_->telemetry.load();
    if (tel ? !tel->has_consumer_group(a.consumer_group) : lower(a.consumer_group) != "$default")
        return refuse(s, "amqp:not-found", "The messaging entity '" + st_->opts.event_hub_name + "/ConsumerGroups/" +
                                               a.consumer_group + "' could not be found: no such consumer group.");
    const std::uint32_t count = st_->hub.event_partition_count();
    auto partition = partition_number(a.partition, count);
    if (!partition)
        return refuse(s, "com.microsoft:argument-out-of-range",
                      "The partition '" + a.partition + "' does not exist (partitions 0-" + std::to_string(count - 1) + ").");
    // Where to start: the selector filter; none means the start of the log.
    event_position pos{event_position::kind::earliest};
    if (auto text = selector_filter(s)) {
        auto p = parse_event_position(*text);
        if (!p)
            return refuse(s, "com.microsoft:argument-error", "The receiver filter '" + *text + "' is not one this hub understands.");
        pos = *p;
    }
    const std::uint32_t stream = *base + *partition;
    auto info = st_->hub.event_partition_info(stream);
    if (!info) return refuse(s, "amqp:internal-error", info.error().message);
    eh_reader r{s, stream, info->begin_sequence_number, {lower(a.consumer_group), stream}};
    const auto last = info->last_sequence_number;  // -1: empty
    switch (pos.what) {
    case event_position::kind::earliest: break;
    case event_position::kind::latest: r.next = static_cast<std::uint64_t>(last + 1); break;
    case event_position::kind::offset:
    case event_position::kind::sequence_number:
        r.next = std::max<std::uint64_t>(r.next, static_cast<std::uint64_t>(std::max<std::int64_t>(pos.value + (pos.inclusive ? 0 : 1), 0)));
        break;
    case event_position::kind::enqueued_time: {
        // The first event enqueued after the time: scan forward in pages.
        const std::int64_t after_ns = pos.value * 1'000'000;
        std::uint64_t at = r.next;
        for (;;) {
            auto page = st_->hub.read_events(stream, at, 1024);
            if (!page) return refuse(s, "amqp:internal-error", page.error().message);
            if (page->empty()) {
                at = static_cast<std::uint64_t>(last + 1);
                break;
            }
            auto it = std::find_if(page->begin(), page->end(), [&](const store::event_record& e) { return e.enqueued_time_ns > after_ns; });
            if (it != page->end()) {
                at = it->sequence_number;
                break;
            }
            at = page->back().sequence_number + 1;
        }
        r.next = at;
        break;
    }
    }
    // Owner levels: a receiver with a higher epoch takes the partition (of this consumer group) over.
    std::string refusal;
    auto stolen = st_->claim_partition(r.key, shared_from_this(), s.name(), link_epoch(s), refusal);
    if (!refusal.empty()) return refuse(s, "amqp:link:stolen", refusal);
    for (auto& v : stolen)
        if (auto c = v.conn.lock()) c->steal_reader(v.link, v.by_epoch);
    senders_[s.name()] = a;
    auto& slot = eh_readers_[s.name()] = r;
    st_->add_reader(shared_from_this());
    eh_send(slot);
}

void amqp_server::connection::wake_readers(std::uint32_t partition) {
    (void)partition;
    if (wake_pending_.exchange(true)) return;
    post([this] {
        wake_pending_ = false;
        for (auto& [_, r] : eh_readers_) eh_send(r);
    });
}

void amqp_server::connection::eh_send(eh_reader& r) {
    while (r.link.active() && r.link.credit() > 0) {
        auto page = st_->hub.read_events(r.partition, r.next, static_cast<std::size_t>(std::min(r.link.credit(), 256)));
        if (!page) {
            log::warn("amqp.eventhub_read_failed", {{"conn", log_id_}, {"message", page.error().message}});
            return;
        }
        if (page->empty()) return;
        // Encoded straight to bytes (event_encoding.hpp): building a proton::message per event
        // cost about three quarters of a partition read's CPU (docs/benchmarks.md, "Telemetry").
        std::string bytes;
        for (auto& e : *page) {
            bytes.clear();
            encode_event(e, bytes);
            send_encoded(r.link, bytes, r.tag);
            r.next = e.sequence_number + 1;
        }
    }
}

void amqp_server::connection::management_request(proton::delivery&, proton::message& m) {
    const std::string operation = app_property(m, "operation");
    const std::string type = app_property(m, "type");
    const std::string name = app_property(m, "name");
    const std::uint32_t count = st_->hub.event_partition_count();
    int status = 200;
    std::string description = "OK";
    proton::value body;
    if (operation != "READ") {
        status = 400;
        description = "Unsupported management operation '" + operation + "'.";
    } else if (!eh_entity(name)) {  // (checked again below for the stream)
        status = 404;
        description = "The Event Hub '" + name + "' does not exist here (it is '" + st_->opts.event_hub_name + "').";
    } else if (type == "com.microsoft:eventhub") {
        std::vector<std::string> ids;
        for (std::uint32_t p = 0; p < count; ++p) ids.push_back(std::to_string(p));
        std::map<std::string, proton::value> b;
        b["name"] = name.empty() ? st_->opts.event_hub_name : name;
        b["created_at"] = proton::timestamp(st_->hub.event_hub_created_ns() / 1'000'000);
        b["partition_count"] = static_cast<std::int32_t>(count);
        b["partition_ids"] = ids;
        body = b;
    } else if (type == "com.microsoft:partition") {
        const std::string part = app_property(m, "partition");
        auto p = partition_number(part, count);
        auto info = p ? st_->hub.event_partition_info(*eh_entity(name) + *p)
                      : result<store::store::partition_info>(error{errc::not_found, "no such partition"});
        if (!info) {
            status = info.error().code == errc::not_found ? 404 : 500;
            description = info.error().code == errc::not_found ? "The partition '" + part + "' does not exist." : info.error().message;
        } else {
            std::map<std::string, proton::value> b;
            b["name"] = st_->opts.event_hub_name;
            b["partition"] = part;
            b["begin_sequence_number"] = static_cast<std::int64_t>(info->begin_sequence_number);
            b["last_enqueued_sequence_number"] = info->last_sequence_number;
            b["last_enqueued_offset"] = std::to_string(info->last_sequence_number);
            b["last_enqueued_time_utc"] = proton::timestamp(info->last_enqueued_time_ns / 1'000'000);
            b["is_partition_empty"] = info->last_sequence_number < 0;
            body = b;
        }
    } else {
        status = 400;
        description = "Unsupported management type '" + type + "'.";
    }
    proton::message reply;
    reply.correlation_id(m.id());
    if (!m.reply_to().empty()) reply.to(m.reply_to());
    reply.properties().put("status-code", proton::scalar(static_cast<std::int32_t>(status)));
    reply.properties().put("status-description", proton::scalar(description));
    if (status == 200) reply.body(body);
    // The reply goes on the management link whose target is the request's reply-to.
    for (auto& [_, snd] : mgmt_senders_)
        if (m.reply_to().empty() || snd.target().address() == m.reply_to()) return send(snd, std::move(reply));
    if (!mgmt_senders_.empty()) send(mgmt_senders_.begin()->second, std::move(reply));
}

}  // namespace twinhub::amqp
