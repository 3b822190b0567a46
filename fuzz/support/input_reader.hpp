// A fuzz input read front to back as choices and strings, simple enough that seed files can be
// written by hand or by fuzz/support/make_seeds.py: a choice takes one byte (two for ranges above 255,
// big-endian; ranged as lo + value % (hi - lo + 1)), a string runs to the next NUL (consumed) or to
// `max` bytes or the end, bytes(n) takes n bytes as they are, rest() takes everything left. Past the end every choice is `lo` and every
// string empty. Thread safety: none (one input).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace twinhub::fuzz {

class input_reader {
public:
    input_reader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}

    std::size_t remaining_bytes() const { return static_cast<std::size_t>(end_ - p_); }

    template <class T>
    T range(T lo, T hi) {
        const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
        std::uint64_t v = byte();
        if (span > 0xff) v = (v << 8) | byte();
        if (span > 0xffff) v = (v << 16) | (std::uint64_t{byte()} << 8) | byte();
        if (span > 0xffffffffu) v = (v << 32) | integral<std::uint32_t>();
        return span == UINT64_MAX ? static_cast<T>(v) : static_cast<T>(static_cast<std::uint64_t>(lo) + v % (span + 1));
    }
    bool flag() { return (byte() & 1) != 0; }
    template <class T>
    T integral() {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) v = (v << 8) | byte();
        return static_cast<T>(v);
    }
    std::string str(std::size_t max) {
        const std::uint8_t* stop = p_ + std::min(max, remaining_bytes());
        const void* nul = std::memchr(p_, 0, static_cast<std::size_t>(stop - p_));
        const std::uint8_t* e = nul ? static_cast<const std::uint8_t*>(nul) : stop;
        std::string s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(e - p_));
        p_ = nul ? e + 1 : e;
        return s;
    }
    // Exactly `n` bytes (fewer at the end), NULs included.
    std::string bytes(std::size_t n) {
        n = std::min(n, remaining_bytes());
        std::string s(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return s;
    }
    std::string rest() {
        std::string s(reinterpret_cast<const char*>(p_), remaining_bytes());
        p_ = end_;
        return s;
    }

private:
    std::uint8_t byte() { return p_ < end_ ? *p_++ : 0; }

    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

}  // namespace twinhub::fuzz
