// Helpers that keep raw MQTT bytes readable in tests: hex("10 0e 00 04") and str16("MQTT").
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>

namespace twinhub::mqtt::test {

// "30 0a 00" -> the bytes 0x30 0x0a 0x00; spaces are ignored.
inline std::string hex(std::string_view text) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    int high = -1;
    for (char c : text) {
        if (c == ' ') continue;
        const int v = nibble(c);
        assert(v >= 0);
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<char>(high * 16 + v));
            high = -1;
        }
    }
    assert(high < 0);
    return out;
}

// An MQTT string or binary field: two-byte big-endian length, then the bytes.
inline std::string str16(std::string_view s) {
    std::string out;
    out.push_back(static_cast<char>(s.size() >> 8));
    out.push_back(static_cast<char>(s.size() & 0xFF));
    out.append(s);
    return out;
}

// A whole packet with a one-byte remaining length (body shorter than 128 bytes).
inline std::string packet_bytes(std::uint8_t first_byte, std::string_view body) {
    assert(body.size() < 128);
    std::string out;
    out.push_back(static_cast<char>(first_byte));
    out.push_back(static_cast<char>(body.size()));
    out.append(body);
    return out;
}

}  // namespace twinhub::mqtt::test
