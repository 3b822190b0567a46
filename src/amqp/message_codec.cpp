#include "amqp/message_codec.hpp"

#include "common/time.hpp"

#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/codec/map.hpp>
#include <proton/scalar.hpp>
#include <proton/symbol.hpp>
#include <proton/timestamp.hpp>
#include <proton/uuid.hpp>
#include <proton/value.hpp>

#include <charconv>
#include <map>

namespace twinhub::amqp {
namespace {

std::string scalar_text(const proton::scalar& s) {
    switch (s.type()) {
    case proton::STRING: return proton::get<std::string>(s);
    case proton::SYMBOL: return proton::get<proton::symbol>(s);
    case proton::BOOLEAN: return proton::get<bool>(s) ? "true" : "false";
    case proton::BINARY: {
        auto b = proton::get<proton::binary>(s);
        return std::string(b.begin(), b.end());
    }
    case proton::UUID: return proton::get<proton::uuid>(s).str();
    case proton::TIMESTAMP: return std::to_string(proton::get<proton::timestamp>(s).milliseconds());
    case proton::UBYTE: case proton::USHORT: case proton::UINT: case proton::ULONG:
        return std::to_string(proton::coerce<std::uint64_t>(s));
    case proton::BYTE: case proton::SHORT: case proton::INT: case proton::LONG:
        return std::to_string(proton::coerce<std::int64_t>(s));
    case proton::FLOAT: case proton::DOUBLE: return std::to_string(proton::coerce<double>(s));
    default: return proton::to_string(s);
    }
}

std::map<std::string, proton::scalar> properties_of(const proton::message& m) {
    std::map<std::string, proton::scalar> out;
    if (!m.properties().empty()) proton::get(m.properties().value(), out);
    return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> application_properties_text(const proton::message& m) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [k, v] : properties_of(m)) out.emplace_back(k, scalar_text(v));
    return out;
}

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

std::string body_text(const proton::message& m) { return body_bytes(m); }

void set_body_bytes(proton::message& m, std::string_view bytes) {
    m.body(proton::binary(bytes.begin(), bytes.end()));
    m.inferred(true);  // a binary body goes out as one data section, as the SDKs expect
}

std::string app_property(const proton::message& m, const std::string& key) {
    if (!m.properties().exists(key)) return {};
    return scalar_text(m.properties().get(key));
}

bool int_app_property(const proton::message& m, const std::string& key, int& out) {
    if (!m.properties().exists(key)) return false;
    proton::scalar s = m.properties().get(key);
    switch (s.type()) {
    case proton::BYTE: case proton::SHORT: case proton::INT: case proton::LONG:
    case proton::UBYTE: case proton::USHORT: case proton::UINT: case proton::ULONG:
        out = static_cast<int>(proton::coerce<std::int64_t>(s));
        return true;
    case proton::STRING: {
        auto t = proton::get<std::string>(s);
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        return ec == std::errc() && p == t.data() + t.size();
    }
    default: return false;
    }
}

std::string annotation_text(const proton::message& m, const char* key) {
    const proton::annotation_key k{proton::symbol(key)};
    if (!m.message_annotations().exists(k)) return {};
    proton::value v = m.message_annotations().get(k);
    try {
        return scalar_text(proton::get<proton::scalar>(v));
    } catch (const proton::conversion_error&) {
        return {};
    }
}

std::string message_id_text(const proton::message_id& id) {
    switch (id.type()) {
    case proton::STRING: return proton::get<std::string>(id);
    case proton::UUID: return proton::get<proton::uuid>(id).str();
    case proton::ULONG: return std::to_string(proton::get<std::uint64_t>(id));
    case proton::BINARY: {
        auto b = proton::get<proton::binary>(id);
        return std::string(b.begin(), b.end());
    }
    default: return {};
    }
}

void telemetry_properties(const proton::message& m, store::event_record& e) {
    auto add = [&](const char* name, std::string v) {
        if (!v.empty()) e.system_properties.emplace_back(name, std::move(v));
    };
    add("message-id", message_id_text(m.id()));
    add("correlation-id", message_id_text(m.correlation_id()));
    add("user-id", m.user());
    add("to", m.to());
    add("content-type", m.content_type());
    add("content-encoding", m.content_encoding());
    if (m.expiry_time().milliseconds() > 0)
        add("absolute-expiry-time", format_time(time_point(std::chrono::milliseconds(m.expiry_time().milliseconds()))));
    if (m.creation_time().milliseconds() > 0)
        add("iothub-creation-time-utc",
            format_time(time_point(std::chrono::milliseconds(m.creation_time().milliseconds()))));
    for (const char* a : {"iothub-interface-id", "dt-subject", "dt-dataschema"}) add(a, annotation_text(m, a));
    for (auto& [k, v] : properties_of(m)) {
        // The module output travels as an application property over AMQP (iothub-amqp 4.2).
        if (k == "iothub-outputname") add("iothub-outputname", scalar_text(v));
        else e.application_properties.emplace_back(k, scalar_text(v));
    }
}

proton::message event_message(const store::event_record& e) {
    proton::message m;
    set_body_bytes(m, e.body);
    auto& ma = m.message_annotations();
    const auto enqueued = proton::timestamp(e.enqueued_time_ns / 1'000'000);
    ma.put(proton::symbol("x-opt-sequence-number"), proton::value(static_cast<std::int64_t>(e.sequence_number)));
    ma.put(proton::symbol("x-opt-offset"), proton::value(std::to_string(e.sequence_number)));
    ma.put(proton::symbol("x-opt-enqueued-time"), proton::value(enqueued));
    ma.put(proton::symbol("iothub-enqueuedtime"), proton::value(enqueued));
    bool auth_method = false;
    for (auto& [k, v] : e.system_properties) {
        if (k == "message-id") m.id(proton::message_id(v));
        else if (k == "correlation-id") m.correlation_id(proton::message_id(v));
        else if (k == "user-id") m.user(v);
        else if (k == "to") m.to(v);
        else if (k == "content-type") m.content_type(v);
        else if (k == "content-encoding") m.content_encoding(v);
        else if (k == "absolute-expiry-time") continue;
        else {
            auth_method = auth_method || k == "iothub-connection-auth-method";
            ma.put(proton::symbol(k), proton::value(v));
        }
    }
    if (!auth_method)
        ma.put(proton::symbol("iothub-connection-auth-method"),
               proton::value(std::string(R"({"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null})")));
    for (auto& [k, v] : e.application_properties) m.properties().put(k, proton::scalar(v));
    return m;
}

}  // namespace twinhub::amqp
