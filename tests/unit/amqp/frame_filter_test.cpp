// frame_filter: what reaches Proton when rhea settles deliveries after ending their session.
#include "amqp/frame_filter.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twinhub::amqp {
namespace {

// An AMQP frame (type 0) on `channel` whose body is the described performative `code` followed
// by `tail` bytes.
std::string frame(std::uint16_t channel, std::uint8_t code, std::string tail = std::string("\x45", 1), std::uint8_t type = 0) {
    std::string body{'\0', '\x53', static_cast<char>(code)};
    body += tail;
    const std::uint32_t size = static_cast<std::uint32_t>(8 + body.size());
    std::string f{static_cast<char>(size >> 24), static_cast<char>(size >> 16), static_cast<char>(size >> 8),
                  static_cast<char>(size), '\x02', static_cast<char>(type), static_cast<char>(channel >> 8),
                  static_cast<char>(channel)};
    return f + body;
}

const std::string amqp_header("AMQP\x00\x01\x00\x00", 8);
const std::string sasl_header("AMQP\x03\x01\x00\x00", 8);
constexpr std::uint8_t begin = 0x11, attach = 0x12, flow = 0x13, disposition = 0x15, detach = 0x16, end = 0x17;

std::string run(const std::string& in, std::size_t chunk, frame_filter& f) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += chunk) f.feed(in.data() + i, std::min(chunk, in.size() - i), out);
    return out;
}

TEST(FrameFilter, DropsFramesOnAnEndedSessionUntilItsChannelBeginsAgain) {
    const std::string kept = amqp_header + frame(0, 0x10) + frame(5, begin) + frame(5, attach) + frame(5, detach) +
                             frame(5, end);
    const std::string late = frame(5, disposition) + frame(5, flow);
    const std::string again = frame(5, begin) + frame(5, attach, std::string(300, 'x')) + frame(6, disposition);
    for (std::size_t chunk : {1u, 3u, 7u, 64u, 4096u}) {
        frame_filter f;
        EXPECT_EQ(run(kept + late + again, chunk, f), kept + again) << "chunk " << chunk;
        EXPECT_EQ(f.dropped_frames(), 2u);
    }
}

TEST(FrameFilter, SaslLayerAndHeartbeatsPassUnchanged) {
    // sasl-init, a heartbeat (an empty frame), then AMQP; an `end` code in a SASL frame is not an end.
    const std::string heartbeat("\x00\x00\x00\x08\x02\x00\x00\x00", 8);
    const std::string in = sasl_header + frame(0, 0x41, "\x45", 1) + frame(0, end, "\x45", 1) + amqp_header +
                           heartbeat + frame(0, begin) + frame(0, flow);
    frame_filter f;
    EXPECT_EQ(run(in, 5, f), in);
    EXPECT_EQ(f.dropped_frames(), 0u);
}

TEST(FrameFilter, ConnectionCloseOnChannelZeroPassesAfterThatChannelsSessionEnded) {
    // rhea ends session 0, settles late, then closes the connection on channel 0.
    const std::string close_frame = frame(0, 0x18);
    const std::string in = amqp_header + frame(0, 0x10) + frame(0, begin) + frame(0, end) + frame(0, disposition) + close_frame;
    frame_filter f;
    EXPECT_EQ(run(in, 3, f), amqp_header + frame(0, 0x10) + frame(0, begin) + frame(0, end) + close_frame);
}

TEST(FrameFilter, MalformedFramingPassesThroughForProtonToRefuse) {
    const std::string bad = amqp_header + std::string("\x00\x00\x00\x04\x02\x00\x00\x00", 8) + frame(5, end) + frame(5, flow);
    frame_filter f;
    EXPECT_EQ(run(bad, 2, f), bad);
    const std::string not_amqp = "GET / HTTP/1.1\r\n\r\n";
    frame_filter g;
    EXPECT_EQ(run(not_amqp, 4, g), not_amqp);
}

TEST(FrameFilter, LongDescriptorFormIsRecognised) {
    // 0x00 0x80 <ulong 0x17>: `end` written as a full ulong.
    std::string body("\x00\x80\x00\x00\x00\x00\x00\x00\x00\x17\x45", 11);
    std::string end_long = std::string("\x00\x00\x00\x13\x02\x00\x00\x05", 8) + body;
    const std::string in = amqp_header + frame(5, begin) + end_long + frame(5, disposition);
    frame_filter f;
    EXPECT_EQ(run(in, 1, f), amqp_header + frame(5, begin) + end_long);
}

}  // namespace
}  // namespace twinhub::amqp
