#include "client/event_decode.hpp"

#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/error.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>
#include <proton/symbol.hpp>
#include <proton/timestamp.hpp>
#include <proton/uuid.hpp>

#include <boost/json/serialize.hpp>

#include <map>
#include <vector>

namespace twinhub::client {

namespace {

template <class Scalar>
std::string text_of(const Scalar& s) {
    switch (s.type()) {
        case proton::STRING: return proton::get<std::string>(s);
        case proton::SYMBOL: return proton::get<proton::symbol>(s);
        case proton::NULL_TYPE: return {};
        default: {
            auto j = json_of(proton::value(s));
            return j.is_string() ? std::string(j.as_string()) : boost::json::serialize(j);
        }
    }
}

std::string key_text(const proton::value& k) {
    if (k.type() == proton::STRING) return proton::get<std::string>(k);
    if (k.type() == proton::SYMBOL) return proton::get<proton::symbol>(k);
    return proton::to_string(k);
}

std::int64_t ms_of(const proton::value& v) {
    if (v.type() == proton::TIMESTAMP) return proton::get<proton::timestamp>(v).milliseconds();
    auto j = json_of(v);
    return j.is_int64() ? j.as_int64() : 0;
}

std::int64_t int_of(const proton::value& v) {
    auto j = json_of(v);
    if (j.is_int64()) return j.as_int64();
    if (j.is_uint64()) return static_cast<std::int64_t>(j.as_uint64());
    if (j.is_string()) {
        try {
            return std::stoll(std::string(j.as_string()));
        } catch (...) {
        }
    }
    return 0;
}

result<std::map<std::string, proton::value>> body_map(const proton::value& body) {
    if (body.type() != proton::MAP) return error{errc::format_error, "the $management reply body is not a map"};
    std::vector<std::pair<proton::value, proton::value>> entries;
    try {
        proton::get(body, entries);
    } catch (const proton::error& e) {
        return error{errc::format_error, std::string("the $management reply body is unreadable: ") + e.what()};
    }
    std::map<std::string, proton::value> out;
    for (auto& [k, v] : entries) out[key_text(k)] = v;
    return out;
}

}  // namespace

std::string body_bytes(const proton::message& m) {
    const proton::value& v = m.body();
    switch (v.type()) {
        case proton::BINARY: {
            auto b = proton::get<proton::binary>(v);
            return std::string(b.begin(), b.end());
        }
        case proton::STRING: return proton::get<std::string>(v);
        case proton::SYMBOL: return proton::get<proton::symbol>(v);
        default: return {};
    }
}

int int_property(const proton::message& m, const std::string& key) {
    if (!m.properties().exists(key)) return -1;
    proton::scalar v = m.properties().get(key);
    try {
        switch (v.type()) {
            case proton::INT: return proton::get<std::int32_t>(v);
            case proton::LONG: return static_cast<int>(proton::get<std::int64_t>(v));
            case proton::UINT: return static_cast<int>(proton::get<std::uint32_t>(v));
            case proton::SHORT: return proton::get<std::int16_t>(v);
            case proton::STRING: return std::stoi(proton::get<std::string>(v));
            default: return -1;
        }
    } catch (...) {
        return -1;
    }
}

std::string string_property(const proton::message& m, const std::string& key) {
    if (!m.properties().exists(key)) return {};
    proton::scalar v = m.properties().get(key);
    if (v.type() == proton::STRING) return proton::get<std::string>(v);
    return {};
}

boost::json::value json_of(const proton::value& v) {
    using boost::json::value;
    switch (v.type()) {
        case proton::NULL_TYPE: return nullptr;
        case proton::BOOLEAN: return proton::get<bool>(v);
        case proton::UBYTE: return proton::get<std::uint8_t>(v);
        case proton::BYTE: return proton::get<std::int8_t>(v);
        case proton::USHORT: return proton::get<std::uint16_t>(v);
        case proton::SHORT: return proton::get<std::int16_t>(v);
        case proton::UINT: return proton::get<std::uint32_t>(v);
        case proton::INT: return proton::get<std::int32_t>(v);
        case proton::ULONG: return proton::get<std::uint64_t>(v);
        case proton::LONG: return proton::get<std::int64_t>(v);
        case proton::FLOAT: return proton::get<float>(v);
        case proton::DOUBLE: return proton::get<double>(v);
        case proton::TIMESTAMP: return proton::get<proton::timestamp>(v).milliseconds();
        case proton::STRING: return value(proton::get<std::string>(v));
        case proton::SYMBOL: return value(std::string(proton::get<proton::symbol>(v)));
        case proton::BINARY: {
            auto b = proton::get<proton::binary>(v);
            return value(std::string(b.begin(), b.end()));
        }
        case proton::UUID: return value(proton::get<proton::uuid>(v).str());
        default: return value(proton::to_string(v));
    }
}

event_data decode_event(const proton::message& m, const std::string& partition) {
    event_data e;
    e.partition = partition;
    e.body = body_bytes(m);
    auto& sys = e.system_properties;
    auto put_id = [&](const char* name, const proton::message_id& id) {
        if (id.empty()) return;
        if (id.type() == proton::STRING)
            sys[name] = proton::get<std::string>(id);
        else
            sys[name] = proton::to_string(id);
    };
    put_id("message-id", m.id());
    put_id("correlation-id", m.correlation_id());
    if (!m.user().empty()) sys["user-id"] = m.user();
    if (!m.to().empty()) sys["to"] = m.to();
    if (!m.subject().empty()) sys["subject"] = m.subject();
    if (!m.reply_to().empty()) sys["reply-to"] = m.reply_to();
    if (!m.content_type().empty()) sys["content-type"] = m.content_type();
    if (!m.content_encoding().empty()) sys["content-encoding"] = m.content_encoding();
    if (m.expiry_time().milliseconds() != 0) sys["absolute-expiry-time"] = m.expiry_time().milliseconds();
    if (m.creation_time().milliseconds() != 0) sys["creation-time"] = m.creation_time().milliseconds();
    if (!m.group_id().empty()) sys["group-id"] = m.group_id();

    std::vector<std::pair<proton::annotation_key, proton::value>> annotations;
    if (!m.message_annotations().empty()) proton::get(m.message_annotations().value(), annotations);
    for (auto& [k, v] : annotations) {
        const std::string key =
            k.type() == proton::SYMBOL ? std::string(proton::get<proton::symbol>(k)) : proton::to_string(k);
        e.annotations[key] = json_of(v);
        if (key == "x-opt-sequence-number")
            e.sequence_number = int_of(v);
        else if (key == "x-opt-offset")
            e.offset = v.type() == proton::STRING ? proton::get<std::string>(v) : proton::to_string(v);
        else if (key == "x-opt-enqueued-time")
            e.enqueued_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_of(v)));
        else if (key.rfind("x-opt-", 0) == 0)
            continue;
        else {
            sys[key] = json_of(v);
            if (key == "iothub-connection-device-id" && v.type() == proton::STRING)
                e.device_id = proton::get<std::string>(v);
            if (key == "iothub-connection-module-id" && v.type() == proton::STRING)
                e.module_id = proton::get<std::string>(v);
        }
    }

    std::vector<std::pair<std::string, proton::scalar>> props;
    if (!m.properties().empty()) proton::get(m.properties().value(), props);
    for (auto& [k, v] : props) e.properties.emplace_back(k, text_of(v));
    return e;
}

result<event_hub_properties> decode_hub_properties(const proton::value& body) {
    auto b = body_map(body);
    if (!b) return b.error();
    event_hub_properties p;
    if (auto it = b->find("name"); it != b->end()) p.name = key_text(it->second);
    auto it = b->find("partition_ids");
    if (p.name.empty() || it == b->end())
        return error{errc::format_error, "the $management reply lacks name or partition_ids"};
    std::vector<proton::value> ids;
    try {
        proton::get(it->second, ids);
    } catch (const proton::error& e) {
        return error{errc::format_error, std::string("partition_ids is not a sequence: ") + e.what()};
    }
    for (auto& id : ids) p.partition_ids.push_back(key_text(id));
    if (p.partition_ids.empty()) return error{errc::format_error, "the hub lists no partitions"};
    return p;
}

result<partition_properties> decode_partition_properties(const proton::value& body) {
    auto b = body_map(body);
    if (!b) return b.error();
    partition_properties p;
    auto at = [&](const char* k) -> const proton::value* {
        auto it = b->find(k);
        return it == b->end() ? nullptr : &it->second;
    };
    if (auto* v = at("partition")) p.partition = key_text(*v);
    if (auto* v = at("begin_sequence_number")) p.begin_sequence_number = int_of(*v);
    if (auto* v = at("last_enqueued_sequence_number")) p.last_enqueued_sequence_number = int_of(*v);
    if (auto* v = at("last_enqueued_offset")) p.last_enqueued_offset = key_text(*v);
    if (auto* v = at("last_enqueued_time_utc"))
        p.last_enqueued_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_of(*v)));
    if (auto* v = at("is_partition_empty"); v && v->type() == proton::BOOLEAN)
        p.is_empty = proton::get<bool>(*v);
    else
        p.is_empty = p.last_enqueued_sequence_number < 0;
    return p;
}

}  // namespace twinhub::client
