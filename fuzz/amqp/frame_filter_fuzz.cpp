// The AMQP head's frame filter (src/amqp/frame_filter.hpp) is the first code that AMQP input
// reaches. Invariants: it never grows the stream, it never reorders bytes (its output is a
// subsequence of whole frames), and feeding in one piece or byte by byte gives the same output.
#include "amqp/frame_filter.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* p = reinterpret_cast<const char*>(data);
    twinhub::amqp::frame_filter whole, bytes;
    std::string a, b;
    whole.feed(p, size, a);
    for (std::size_t i = 0; i < size; ++i) bytes.feed(p + i, 1, b);
    if (a != b || a.size() > size) std::abort();
    return 0;
}
