#include "proto/mqtt/decoder.hpp"

#include "proto/mqtt/validation.hpp"

#include <cstring>

namespace twinhub::mqtt {
namespace {

std::string prefix(packet_type t) {
    return std::string("MQTT ") + to_string(t) + ": ";
}

// A failed step of packet decoding: the kind tells the session how to react.
struct decode_error {
    decode_failure kind;
    error err;
};

decode_error malformed(packet_type t, std::string_view violation) {
    return {decode_failure::malformed, error{errc::invalid_argument, prefix(t) + std::string(violation)}};
}

decode_error malformed(error e) {
    return {decode_failure::malformed, std::move(e)};
}

// Reads the fields of one packet body. The first failure is kept; later reads return empty
// values, so a parser can read a whole layout and check failed() at the points that matter.
class body_reader {
public:
    body_reader(packet_type type, std::string_view body) : type_(type), body_(body) {}

    std::size_t remaining() const noexcept { return body_.size() - pos_; }
    bool failed() const noexcept { return error_.has_value(); }
    decode_error take_error() { return std::move(*error_); }

    void fail(std::string_view violation) {
        if (!error_) error_ = malformed(type_, violation);
    }
    void fail(error e) {
        if (!error_) error_ = malformed(std::move(e));
    }

    std::uint8_t u8(const char* field) {
        if (!need(1, field)) return 0;
        return static_cast<std::uint8_t>(body_[pos_++]);
    }

    std::uint16_t u16(const char* field) {
        if (!need(2, field)) return 0;
        const auto hi = static_cast<std::uint8_t>(body_[pos_]);
        const auto lo = static_cast<std::uint8_t>(body_[pos_ + 1]);
        pos_ += 2;
        return static_cast<std::uint16_t>((hi << 8) | lo);
    }

    // A two-byte length followed by that many bytes, unchecked.
    std::string binary(const char* field) {
        const std::uint16_t n = u16(field);
        if (failed() || !need(n, field)) return {};
        std::string s(body_.substr(pos_, n));
        pos_ += n;
        return s;
    }

    // A binary field that must be a well-formed MQTT UTF-8 string.
    std::string utf8(const char* field) {
        std::string s = binary(field);
        if (failed()) return s;
        // The packet type goes in front of the message only on failure (no string per field).
        if (auto r = validate_utf8_string(s, field); !r)
            fail(error{r.error().code, prefix(type_) + r.error().message});
        return s;
    }

    std::uint16_t packet_id() {
        const std::uint16_t id = u16("packet identifier");
        if (!failed() && id == 0) fail("packet identifier must not be 0");
        return id;
    }

    std::string rest() {
        std::string s(body_.substr(pos_));
        pos_ = body_.size();
        return s;
    }

    void expect_end() {
        if (!failed() && remaining() != 0) {
            fail(std::to_string(remaining()) + " unexpected bytes after the last field");
        }
    }

private:
    bool need(std::size_t n, const char* field) {
        if (failed()) return false;
        if (remaining() < n) {
            fail(std::string("packet ends inside the ") + field);
            return false;
        }
        return true;
    }

    packet_type type_;
    std::string_view body_;
    std::size_t pos_ = 0;
    std::optional<decode_error> error_;
};

using parse_result = std::variant<packet, decode_error>;

// The checks that need only the first byte and the remaining length, so that a bad packet fails
// before its body is buffered.
std::optional<decode_error> check_fixed_header(std::uint8_t first, std::uint32_t remaining) {
    const unsigned type_bits = first >> 4;
    const unsigned flags = first & 0x0F;
    const auto type = static_cast<packet_type>(type_bits);
    unsigned expected_flags = 0;
    int expected_length = -1;  // -1: variable
    switch (type) {
        case packet_type::publish:
            if ((flags & 0x06) == 0x06) return malformed(type, "QoS 3 is invalid");
            if ((flags & 0x08) && (flags & 0x06) == 0) {
                return malformed(type, "DUP flag must be 0 for QoS 0");
            }
            return std::nullopt;
        case packet_type::pubrel:
        case packet_type::subscribe:
        case packet_type::unsubscribe: expected_flags = 0x02; break;
        case packet_type::connect:
        case packet_type::suback: break;
        case packet_type::connack:
        case packet_type::puback:
        case packet_type::pubrec:
        case packet_type::pubcomp:
        case packet_type::unsuback: expected_length = 2; break;
        case packet_type::pingreq:
        case packet_type::pingresp:
        case packet_type::disconnect: expected_length = 0; break;
        default:
            return decode_error{
                decode_failure::malformed,
                error{errc::invalid_argument, "MQTT: reserved packet type " + std::to_string(type_bits)}};
    }
    if (type == packet_type::pubrel) expected_length = 2;
    if (flags != expected_flags) {
        return malformed(type, std::string("reserved fixed-header flags must be ") +
                                   (expected_flags ? "0b0010" : "0b0000") + " (got " + std::to_string(flags) + ")");
    }
    if (expected_length >= 0 && remaining != static_cast<std::uint32_t>(expected_length)) {
        return malformed(type, "remaining length must be " + std::to_string(expected_length) + " (got " +
                                   std::to_string(remaining) + ")");
    }
    return std::nullopt;
}

parse_result parse_connect(body_reader& r) {
    connect p;
    p.protocol_name = r.utf8("protocol name");
    p.protocol_level = r.u8("protocol level");
    if (r.failed()) return r.take_error();
    if (p.protocol_name == "MQTT" || p.protocol_name == "MQIsdp") {
        if (p.protocol_name != "MQTT" || p.protocol_level != 4) {
            return decode_error{
                decode_failure::unacceptable_protocol_version,
                error{errc::invalid_argument, "MQTT CONNECT: unsupported protocol '" + p.protocol_name + "' level " +
                                                  std::to_string(p.protocol_level) +
                                                  "; only MQTT 3.1.1 (protocol 'MQTT' level 4) is supported"}};
        }
    } else {
        return malformed(packet_type::connect, "unknown protocol name (expected 'MQTT')");
    }
    const std::uint8_t flags = r.u8("connect flags");
    p.keep_alive = r.u16("keep alive");
    if (r.failed()) return r.take_error();
    if (flags & 0x01) return malformed(packet_type::connect, "reserved connect flag must be 0");
    p.clean_session = flags & 0x02;
    const bool will_flag = flags & 0x04;
    const unsigned will_qos = (flags >> 3) & 0x03;
    const bool will_retain = flags & 0x20;
    const bool password_flag = flags & 0x40;
    const bool username_flag = flags & 0x80;
    if (will_qos == 3) return malformed(packet_type::connect, "Will QoS 3 is invalid");
    if (!will_flag && (will_qos != 0 || will_retain)) {
        return malformed(packet_type::connect, "Will QoS and Will Retain must be 0 when the Will flag is 0");
    }
    if (password_flag && !username_flag) {
        return malformed(packet_type::connect, "password flag set without the user name flag");
    }
    p.client_id = r.utf8("client identifier");
    if (will_flag) {
        will w;
        w.topic = r.utf8("Will topic");
        if (!r.failed()) {
            if (auto v = validate_topic_name(w.topic, "MQTT CONNECT: Will topic"); !v) {
                r.fail(v.error());
            }
        }
        w.payload = r.binary("Will message");
        w.qos = static_cast<qos>(will_qos);
        w.retain = will_retain;
        p.will = std::move(w);
    }
    if (username_flag) p.username = r.utf8("user name");
    if (password_flag) p.password = r.binary("password");
    r.expect_end();
    if (r.failed()) return r.take_error();
    return packet{std::move(p)};
}

parse_result parse_connack(body_reader& r) {
    const std::uint8_t ack_flags = r.u8("acknowledge flags");
    const std::uint8_t rc = r.u8("return code");
    if (r.failed()) return r.take_error();
    if (ack_flags & 0xFE) return malformed(packet_type::connack, "reserved acknowledge flags must be 0");
    if (rc > 5) {
        return malformed(packet_type::connack, "reserved return code " + std::to_string(rc));
    }
    if (rc != 0 && (ack_flags & 0x01)) {
        return malformed(packet_type::connack, "session present must be 0 when the connection is refused");
    }
    return packet{connack{(ack_flags & 0x01) != 0, static_cast<connect_return_code>(rc)}};
}

parse_result parse_publish(body_reader& r, std::uint8_t flags) {
    publish p;
    p.dup = flags & 0x08;
    p.qos = static_cast<qos>((flags >> 1) & 0x03);
    p.retain = flags & 0x01;
    p.topic = r.utf8("topic name");
    if (!r.failed()) {
        if (auto v = validate_topic_name(p.topic, "MQTT PUBLISH: topic name"); !v) r.fail(v.error());
    }
    if (p.qos != qos::at_most_once) p.packet_id = r.packet_id();
    if (r.failed()) return r.take_error();
    p.payload = r.rest();
    return packet{std::move(p)};
}

template <class Ack>
parse_result parse_ack(body_reader& r) {
    Ack a;
    a.packet_id = r.packet_id();
    r.expect_end();
    if (r.failed()) return r.take_error();
    return packet{a};
}

std::optional<qos> to_qos(std::uint8_t b) {
    if (b > 2) return std::nullopt;
    return static_cast<qos>(b);
}

parse_result parse_subscribe(body_reader& r) {
    subscribe p;
    p.packet_id = r.packet_id();
    if (!r.failed() && r.remaining() == 0) {
        r.fail("a SUBSCRIBE must contain at least one topic filter");
    }
    while (!r.failed() && r.remaining() > 0) {
        subscription s;
        s.filter = r.utf8("topic filter");
        if (!r.failed()) {
            if (auto v = validate_topic_filter(s.filter, "MQTT SUBSCRIBE: topic filter"); !v) {
                r.fail(v.error());
            }
        }
        const std::uint8_t requested = r.u8("requested QoS");
        if (r.failed()) break;
        if (requested & 0xFC) {
            r.fail("reserved bits of the requested QoS byte must be 0");
        } else if (auto q = to_qos(requested)) {
            s.qos = *q;
        } else {
            r.fail("requested QoS 3 is invalid");
        }
        p.subscriptions.push_back(std::move(s));
    }
    if (r.failed()) return r.take_error();
    return packet{std::move(p)};
}

parse_result parse_suback(body_reader& r) {
    suback p;
    p.packet_id = r.packet_id();
    if (!r.failed() && r.remaining() == 0) r.fail("a SUBACK must contain at least one return code");
    while (!r.failed() && r.remaining() > 0) {
        const std::uint8_t rc = r.u8("return code");
        if (rc > 2 && rc != 0x80) {
            r.fail("invalid return code " + std::to_string(rc));
            break;
        }
        p.return_codes.push_back(static_cast<suback_return_code>(rc));
    }
    if (r.failed()) return r.take_error();
    return packet{std::move(p)};
}

parse_result parse_unsubscribe(body_reader& r) {
    unsubscribe p;
    p.packet_id = r.packet_id();
    if (!r.failed() && r.remaining() == 0) {
        r.fail("an UNSUBSCRIBE must contain at least one topic filter");
    }
    while (!r.failed() && r.remaining() > 0) {
        std::string f = r.utf8("topic filter");
        if (r.failed()) break;
        if (auto v = validate_topic_filter(f, "MQTT UNSUBSCRIBE: topic filter"); !v) {
            r.fail(v.error());
            break;
        }
        p.filters.push_back(std::move(f));
    }
    if (r.failed()) return r.take_error();
    return packet{std::move(p)};
}

parse_result parse_body(std::uint8_t first, std::string_view body) {
    const auto type = static_cast<packet_type>(first >> 4);
    body_reader r(type, body);
    switch (type) {
        case packet_type::connect: return parse_connect(r);
        case packet_type::connack: return parse_connack(r);
        case packet_type::publish: return parse_publish(r, first & 0x0F);
        case packet_type::puback: return parse_ack<puback>(r);
        case packet_type::pubrec: return parse_ack<pubrec>(r);
        case packet_type::pubrel: return parse_ack<pubrel>(r);
        case packet_type::pubcomp: return parse_ack<pubcomp>(r);
        case packet_type::subscribe: return parse_subscribe(r);
        case packet_type::suback: return parse_suback(r);
        case packet_type::unsubscribe: return parse_unsubscribe(r);
        case packet_type::unsuback: return parse_ack<unsuback>(r);
        case packet_type::pingreq: return packet{pingreq{}};
        case packet_type::pingresp: return packet{pingresp{}};
        case packet_type::disconnect: return packet{disconnect{}};
    }
    // check_fixed_header() has already refused reserved types.
    return malformed(type, "reserved packet type");
}

}  // namespace

void decoder::feed(const char* data, std::size_t size) {
    if (failed() || size == 0) return;
    // Drop returned packets before growing, so the buffer holds at most one partial packet plus
    // the latest chunk.
    if (pos_ == buffer_.size()) {
        buffer_.clear();
        pos_ = 0;
    } else if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    buffer_.append(data, size);
}

std::optional<packet_type> decoder::pending_type() const noexcept {
    if (failed() || pos_ >= buffer_.size()) return std::nullopt;
    const unsigned t = static_cast<std::uint8_t>(buffer_[pos_]) >> 4;
    if (t == 0 || t == 15) return std::nullopt;
    return static_cast<packet_type>(t);
}

error decoder::fail(decode_failure kind, error e) {
    failure_ = kind;
    error_ = std::move(e);
    std::string().swap(buffer_);
    pos_ = 0;
    return error_;
}

result<std::optional<packet>> decoder::next() {
    if (failed()) return error_;
    const std::size_t avail = buffer_.size() - pos_;
    if (avail == 0) return std::optional<packet>{};
    const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + pos_);

    // Remaining length: 1 to 4 bytes, 7 bits each, least significant first.
    std::uint32_t remaining = 0;
    std::size_t header = 1;
    for (;;) {
        if (header > 4) {
            return fail(decode_failure::malformed,
                        error{errc::invalid_argument, "MQTT: remaining length longer than 4 bytes"});
        }
        if (avail <= header) return std::optional<packet>{};
        const unsigned char b = p[header];
        remaining |= static_cast<std::uint32_t>(b & 0x7F) << (7 * (header - 1));
        ++header;
        if (!(b & 0x80)) {
            if (b == 0 && header > 2) {
                return fail(decode_failure::malformed,
                            error{errc::invalid_argument, "MQTT: remaining length is not minimally encoded"});
            }
            break;
        }
    }
    if (auto e = check_fixed_header(p[0], remaining)) return fail(e->kind, std::move(e->err));
    const std::size_t total = header + remaining;
    if (total > max_packet_size_) {
        return fail(decode_failure::too_large,
                    error{errc::message_too_large, prefix(static_cast<packet_type>(p[0] >> 4)) + "packet of " +
                                                       std::to_string(total) + " bytes exceeds the limit of " +
                                                       std::to_string(max_packet_size_) + " bytes"});
    }
    if (avail < total) return std::optional<packet>{};

    const std::string_view body(buffer_.data() + pos_ + header, remaining);
    parse_result parsed = parse_body(p[0], body);
    if (auto* e = std::get_if<decode_error>(&parsed)) return fail(e->kind, std::move(e->err));
    pos_ += total;
    consumed_ += total;
    return std::optional<packet>{std::move(std::get<packet>(parsed))};
}

result<packet> decode_packet(std::string_view bytes, std::size_t max_packet_size) {
    decoder d(max_packet_size);
    d.feed(bytes);
    auto r = d.next();
    if (!r) return r.error();
    if (!*r) return error{errc::invalid_argument, "MQTT: incomplete packet"};
    if (d.buffered() != 0) {
        return error{errc::invalid_argument, "MQTT: " + std::to_string(d.buffered()) + " bytes after the packet"};
    }
    return std::move(**r);
}

}  // namespace twinhub::mqtt
