#pragma once
// Sits between the socket and Proton's connection driver on the way in and drops the frames a
// client sends on a session it has already ended. rhea (under @azure/event-hubs) settles the
// deliveries of a closing receiver after its `end`; the real hub ignores those dispositions, but
// Proton's transport answers "no such channel" and closes the whole connection, killing every
// other link on it. The filter parses only frame headers (AMQP 1.0 section 2.3) and the
// performative's descriptor; everything else passes byte for byte. Malformed framing switches it
// to pass-through so that Proton reports the error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace twinhub::amqp {

class frame_filter {
public:
    // Appends to `out` the bytes of `in` that Proton should see. Streams: frames may span calls.
    void feed(const char* in, std::size_t n, std::string& out);
    std::uint64_t dropped_frames() const noexcept { return dropped_; }

private:
    enum class state { header, frame_head, frame_rest, passthrough };
    void decide(std::string& out);

    state state_ = state::header;
    std::string head_;            // the bytes of the current protocol header or frame head
    std::size_t need_ = 8;        // bytes head_ must reach before a decision
    std::uint32_t frame_size_ = 0;
    std::size_t rest_ = 0;        // bytes of the current frame left after head_
    bool drop_ = false;           // the current frame is dropped
    std::vector<bool> ended_;     // by channel: the client sent `end` and no `begin` since
    std::uint64_t dropped_ = 0;
};

}  // namespace twinhub::amqp
