// MQTT 3.1.1 encoder: packet values to wire bytes, appended to a caller's buffer so that several
// packets can share one write. Sans-I/O: no sockets, no Asio.
//
// Preconditions (asserted in debug builds, not checked in release): every string and binary field
// is at most 65535 bytes and the whole remaining length is at most 268,435,455 bytes. Beyond that
// the encoder writes what it is given and does not re-run the decoder's rules, so a test can
// encode a packet that a peer must refuse (a CONNECT at level 5, a QoS 1 PUBLISH with packet id 0);
// validate_packet() in validation.hpp checks a value built from application input first. Whatever
// the decoder accepts, the encoder writes back to the identical bytes.
// Thread safety: stateless functions, safe from any thread.
#pragma once

#include "proto/mqtt/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace twinhub::mqtt {

// The largest remaining length that fits the four-byte variable-length encoding.
inline constexpr std::uint32_t max_remaining_length = 268'435'455;

// Appends the variable-length encoding of `value` (1 to 4 bytes, minimal). value <= max_remaining_length.
void encode_remaining_length(std::uint32_t value, std::string& out);

// Appends the whole packet (fixed header, variable header, payload) to `out`.
void encode(const packet& p, std::string& out);

void encode(const connect& p, std::string& out);
void encode(const connack& p, std::string& out);
void encode(const publish& p, std::string& out);
void encode(const puback& p, std::string& out);
void encode(const pubrec& p, std::string& out);
void encode(const pubrel& p, std::string& out);
void encode(const pubcomp& p, std::string& out);
void encode(const subscribe& p, std::string& out);
void encode(const suback& p, std::string& out);
void encode(const unsubscribe& p, std::string& out);
void encode(const unsuback& p, std::string& out);
void encode(const pingreq& p, std::string& out);
void encode(const pingresp& p, std::string& out);
void encode(const disconnect& p, std::string& out);

// The encoded packet as a new string; convenient in tests and for one-off packets.
std::string to_bytes(const packet& p);

}  // namespace twinhub::mqtt
