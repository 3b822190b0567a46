// libFuzzer target for the MQTT 3.1.1 decoder, the first code that untrusted device bytes reach.
// For each input it checks, besides the sanitizers' memory and UB checks:
//   1. feeding the input in pseudo-random chunk sizes gives exactly the packets and the error of
//      feeding it in one chunk (chunk boundaries never change the outcome);
//   2. re-encoding the decoded packets reproduces the consumed input byte for byte (the decoder
//      accepts exactly one encoding of each packet value);
//   3. each re-encoded packet decodes alone to an equal value, and validate_packet() accepts it.
// The chunk sizes derive from a hash of the input, so corpus files stay plain MQTT byte streams.
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "proto/mqtt/validation.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace twinhub::mqtt;

struct outcome {
    std::vector<packet> packets;
    bool failed = false;
    decode_failure failure = decode_failure::none;
    twinhub::errc code = twinhub::errc::ok;
    std::string message;
    std::uint64_t consumed = 0;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "decoder_fuzz: %s\n", what);
    std::abort();
}

// Drains the decoder; returns false once it has failed.
bool drain(decoder& d, outcome& o) {
    for (;;) {
        auto r = d.next();
        if (!r) {
            o.failed = true;
            o.failure = d.failure();
            o.code = r.error().code;
            o.message = r.error().message;
            if (!d.failed() || d.failure() == decode_failure::none) die("error without failed state");
            auto again = d.next();
            if (again || again.error().message != o.message) die("decoder did not stay failed");
            return false;
        }
        if (!*r) return true;
        o.packets.push_back(std::move(**r));
    }
}

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    outcome whole;
    {
        decoder d;
        d.feed(input);
        drain(d, whole);
        whole.consumed = d.consumed();
    }

    outcome chunked;
    {
        std::uint64_t seed = 0xcbf29ce484222325ull;  // FNV-1a of the input seeds the chunk sizes
        for (unsigned char c : input) seed = (seed ^ c) * 0x100000001b3ull;
        decoder d;
        std::size_t pos = 0;
        while (pos < input.size()) {
            const std::uint64_t r = splitmix64(seed);
            const std::size_t limit = (r & 1) ? 4 : 97;
            const std::size_t n = std::min<std::size_t>(1 + (r >> 8) % limit, input.size() - pos);
            d.feed(input.data() + pos, n);
            pos += n;
            if (!drain(d, chunked)) break;
        }
        chunked.consumed = d.consumed();
    }

    if (whole.failed != chunked.failed || whole.failure != chunked.failure || whole.code != chunked.code ||
        whole.message != chunked.message) {
        die("chunked decoding ended differently from whole decoding");
    }
    if (whole.packets != chunked.packets || whole.consumed != chunked.consumed) {
        die("chunked decoding produced different packets");
    }

    std::string reencoded;
    for (const auto& p : whole.packets) {
        const std::size_t start = reencoded.size();
        encode(p, reencoded);
        auto again = decode_packet(std::string_view(reencoded).substr(start));
        if (!again) die("re-encoded packet does not decode");
        if (!(*again == p)) die("re-encoded packet decodes to a different value");
        if (!validate_packet(p)) die("validate_packet refuses a decoded packet");
    }
    if (reencoded != input.substr(0, whole.consumed)) {
        die("re-encoding does not reproduce the consumed input");
    }
    return 0;
}
