// Incremental MQTT 3.1.1 decoder: fed arbitrary byte chunks as they arrive from a socket (or a
// WebSocket frame, or a test), it yields complete packets one at a time and checks every rule of
// the standard that a single packet can break. Sans-I/O: it never reads, writes or waits.
//
// What it enforces (each failure is errc::invalid_argument whose message names the rule, unless
// noted):
//   * fixed header: reserved packet types 0 and 15; reserved flag bits (0b0010 for PUBREL,
//     SUBSCRIBE, UNSUBSCRIBE, 0 for all but PUBLISH); remaining length at most 4 bytes and in its
//     minimal encoding; the exact remaining length of fixed-size packets (2 or 0);
//   * size: a packet larger than max_packet_size() (fixed header included) fails with
//     errc::message_too_large as soon as its header is complete, before its body is buffered;
//   * strings: well-formed UTF-8, no U+0000, no surrogates, no overlong forms;
//   * PUBLISH: QoS 3, DUP set on QoS 0, empty topic, wildcards in the topic, packet id 0 at QoS>0;
//   * SUBSCRIBE/UNSUBSCRIBE: packet id 0, no filter, invalid filters ('#' only as the whole last
//     level, '+' only as a whole level), reserved bits in the requested QoS, QoS 3;
//   * SUBACK: no return code, return codes other than 0, 1, 2, 0x80;
//   * CONNECT: protocol name/level (below), reserved flag bit 0, Will QoS/Retain without the Will
//     flag, Will QoS 3, password flag without username flag, an invalid Will topic;
//   * CONNACK: reserved acknowledge flags, return codes above 5, session present with a refusal;
//   * acknowledgements: packet id 0 (it can never match an outstanding id);
//   * any packet: bytes left over after the last field, or a field that runs past the packet.
//
// Protocol versions: only protocol name "MQTT" at level 4 (MQTT 3.1.1) decodes. A CONNECT that
// names "MQTT" at another level, or "MQIsdp" (MQTT 3.1, level 3), fails with failure() ==
// decode_failure::unacceptable_protocol_version so that the server can answer CONNACK 0x01 before
// closing, as MQTT-3.1.2-2 requires. MQTT 3.1 is refused rather than decoded because no Azure IoT
// SDK sends it and IoT Hub does not accept it; its CONNECT differs only in name and level, so
// accepting it later is a small change here. Any other protocol name is malformed.
//
// Not enforced here (session rules, they need state): CONNECT must be the first packet and appear
// once (pending_type() lets a server refuse a non-CONNECT first packet before its body arrives),
// empty client id with clean_session=0 (CONNACK 0x02), which packet types a client or a server may
// send, packet-id reuse.
//
// After an error the decoder stays failed: next() returns the same error again, feed() discards
// its input, and the buffered bytes are released.
//
// Thread safety: none; one decoder per connection, used from that connection's strand.
#pragma once

#include "common/errc.hpp"
#include "proto/mqtt/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twinhub::mqtt {

enum class decode_failure : std::uint8_t {
    none,
    malformed,                      // errc::invalid_argument: close the connection
    too_large,                      // errc::message_too_large: close the connection
    unacceptable_protocol_version,  // errc::invalid_argument: send CONNACK 0x01, then close
};

class decoder {
public:
    // 256 KiB of IoT Hub message payload plus room for the topic (property bags) and headers.
    static constexpr std::size_t default_max_packet_size = 256 * 1024 + 64 * 1024;

    explicit decoder(std::size_t max_packet_size = default_max_packet_size) noexcept
        : max_packet_size_(max_packet_size) {}

    // Appends bytes received from the peer. The decoder copies what it needs; `data` may be reused
    // as soon as feed returns. Ignored once the decoder has failed.
    void feed(const char* data, std::size_t size);
    void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

    // The next complete packet, std::nullopt when more bytes are needed, or the error that made
    // the decoder fail (see the rules above). Call it until it returns std::nullopt or an error.
    result<std::optional<packet>> next();

    bool failed() const noexcept { return failure_ != decode_failure::none; }
    decode_failure failure() const noexcept { return failure_; }

    // The type of the packet being received, once its first byte is buffered; std::nullopt when no
    // byte of the next packet has arrived or the type is reserved.
    std::optional<packet_type> pending_type() const noexcept;

    // Bytes buffered but not yet returned as packets.
    std::size_t buffered() const noexcept { return buffer_.size() - pos_; }
    // Total bytes of all packets returned so far.
    std::uint64_t consumed() const noexcept { return consumed_; }

    std::size_t max_packet_size() const noexcept { return max_packet_size_; }
    // Takes effect from the next packet on, e.g. a smaller limit before CONNECT is authenticated.
    void set_max_packet_size(std::size_t n) noexcept { max_packet_size_ = n; }

private:
    error fail(decode_failure kind, error e);

    std::string buffer_;
    std::size_t pos_ = 0;  // start of the first packet not yet returned
    std::uint64_t consumed_ = 0;
    std::size_t max_packet_size_;
    decode_failure failure_ = decode_failure::none;
    error error_;
};

// Decodes `bytes` that must hold exactly one complete packet; anything else is an error
// (errc::invalid_argument for a truncated packet or trailing bytes).
result<packet> decode_packet(std::string_view bytes, std::size_t max_packet_size = decoder::default_max_packet_size);

}  // namespace twinhub::mqtt
