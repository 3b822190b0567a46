#include "proto/mqtt/encoder.hpp"

#include <cassert>

namespace twinhub::mqtt {
namespace {

constexpr std::size_t string_size(const std::string& s) {
    return 2 + s.size();
}

void put_u8(std::uint8_t v, std::string& out) {
    out.push_back(static_cast<char>(v));
}

void put_u16(std::uint16_t v, std::string& out) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xFF));
}

// A UTF-8 string or binary field: two-byte big-endian length, then the bytes.
void put_string(const std::string& s, std::string& out) {
    assert(s.size() <= 0xFFFF);
    put_u16(static_cast<std::uint16_t>(s.size()), out);
    out.append(s);
}

void put_fixed_header(std::uint8_t first_byte, std::size_t remaining, std::string& out) {
    assert(remaining <= max_remaining_length);
    out.reserve(out.size() + 5 + remaining);
    put_u8(first_byte, out);
    encode_remaining_length(static_cast<std::uint32_t>(remaining), out);
}

std::uint8_t type_bits(packet_type t, std::uint8_t flags = 0) {
    return static_cast<std::uint8_t>((static_cast<std::uint8_t>(t) << 4) | flags);
}

void put_id_only(packet_type t, std::uint8_t flags, packet_id id, std::string& out) {
    put_fixed_header(type_bits(t, flags), 2, out);
    put_u16(id, out);
}

void put_empty(packet_type t, std::string& out) {
    put_u8(type_bits(t), out);
    put_u8(0, out);
}

}  // namespace

void encode_remaining_length(std::uint32_t value, std::string& out) {
    assert(value <= max_remaining_length);
    do {
        std::uint8_t byte = value & 0x7F;
        value >>= 7;
        if (value > 0) byte |= 0x80;
        put_u8(byte, out);
    } while (value > 0);
}

void encode(const connect& p, std::string& out) {
    std::size_t remaining = string_size(p.protocol_name) + 1 + 1 + 2 + string_size(p.client_id);
    std::uint8_t flags = 0;
    if (p.clean_session) flags |= 0x02;
    if (p.will) {
        flags |= 0x04;
        flags |= static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.will->qos) << 3);
        if (p.will->retain) flags |= 0x20;
        remaining += string_size(p.will->topic) + string_size(p.will->payload);
    }
    if (p.password) {
        flags |= 0x40;
        remaining += string_size(*p.password);
    }
    if (p.username) {
        flags |= 0x80;
        remaining += string_size(*p.username);
    }
    put_fixed_header(type_bits(packet_type::connect), remaining, out);
    put_string(p.protocol_name, out);
    put_u8(p.protocol_level, out);
    put_u8(flags, out);
    put_u16(p.keep_alive, out);
    put_string(p.client_id, out);
    if (p.will) {
        put_string(p.will->topic, out);
        put_string(p.will->payload, out);
    }
    if (p.username) put_string(*p.username, out);
    if (p.password) put_string(*p.password, out);
}

void encode(const connack& p, std::string& out) {
    put_fixed_header(type_bits(packet_type::connack), 2, out);
    put_u8(p.session_present ? 1 : 0, out);
    put_u8(static_cast<std::uint8_t>(p.return_code), out);
}

void encode(const publish& p, std::string& out) {
    const bool has_id = p.qos != qos::at_most_once;
    const std::size_t remaining = string_size(p.topic) + (has_id ? 2 : 0) + p.payload.size();
    std::uint8_t flags = static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.qos) << 1);
    if (p.dup) flags |= 0x08;
    if (p.retain) flags |= 0x01;
    put_fixed_header(type_bits(packet_type::publish, flags), remaining, out);
    put_string(p.topic, out);
    if (has_id) put_u16(p.packet_id, out);
    out.append(p.payload);
}

void encode(const puback& p, std::string& out) {
    put_id_only(packet_type::puback, 0, p.packet_id, out);
}
void encode(const pubrec& p, std::string& out) {
    put_id_only(packet_type::pubrec, 0, p.packet_id, out);
}
void encode(const pubrel& p, std::string& out) {
    put_id_only(packet_type::pubrel, 2, p.packet_id, out);
}
void encode(const pubcomp& p, std::string& out) {
    put_id_only(packet_type::pubcomp, 0, p.packet_id, out);
}
void encode(const unsuback& p, std::string& out) {
    put_id_only(packet_type::unsuback, 0, p.packet_id, out);
}

void encode(const subscribe& p, std::string& out) {
    std::size_t remaining = 2;
    for (const auto& s : p.subscriptions) remaining += string_size(s.filter) + 1;
    put_fixed_header(type_bits(packet_type::subscribe, 2), remaining, out);
    put_u16(p.packet_id, out);
    for (const auto& s : p.subscriptions) {
        put_string(s.filter, out);
        put_u8(static_cast<std::uint8_t>(s.qos), out);
    }
}

void encode(const suback& p, std::string& out) {
    put_fixed_header(type_bits(packet_type::suback), 2 + p.return_codes.size(), out);
    put_u16(p.packet_id, out);
    for (auto rc : p.return_codes) put_u8(static_cast<std::uint8_t>(rc), out);
}

void encode(const unsubscribe& p, std::string& out) {
    std::size_t remaining = 2;
    for (const auto& f : p.filters) remaining += string_size(f);
    put_fixed_header(type_bits(packet_type::unsubscribe, 2), remaining, out);
    put_u16(p.packet_id, out);
    for (const auto& f : p.filters) put_string(f, out);
}

void encode(const pingreq&, std::string& out) {
    put_empty(packet_type::pingreq, out);
}
void encode(const pingresp&, std::string& out) {
    put_empty(packet_type::pingresp, out);
}
void encode(const disconnect&, std::string& out) {
    put_empty(packet_type::disconnect, out);
}

void encode(const packet& p, std::string& out) {
    std::visit([&out](const auto& v) { encode(v, out); }, p);
}

std::string to_bytes(const packet& p) {
    std::string out;
    encode(p, out);
    return out;
}

}  // namespace twinhub::mqtt
