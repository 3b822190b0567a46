#include "amqp/frame_filter.hpp"

#include <algorithm>
#include <cstring>

namespace twinhub::amqp {
namespace {

constexpr std::uint8_t begin_code = 0x11;
constexpr std::uint8_t attach_code = 0x12;  // attach, flow, transfer, disposition, detach, end
constexpr std::uint8_t end_code = 0x17;

std::uint32_t be32(const char* p) {
    auto b = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
}

// The performative's descriptor code at `p` (a described type: 0x00 then smallulong or ulong), or
// -1 when it is not one.
int descriptor(const std::string& head, std::size_t at) {
    if (head.size() < at + 3 || head[at] != 0) return -1;
    const auto t = static_cast<unsigned char>(head[at + 1]);
    if (t == 0x53) return static_cast<unsigned char>(head[at + 2]);
    if (t == 0x44) return 0;  // ulong0
    if (t == 0x80 && head.size() >= at + 10) {
        for (std::size_t i = 2; i < 9; ++i)
            if (head[at + i] != 0) return -1;
        return static_cast<unsigned char>(head[at + 9]);
    }
    return -1;
}

}  // namespace

void frame_filter::feed(const char* in, std::size_t n, std::string& out) {
    while (n > 0) {
        switch (state_) {
        case state::passthrough:
            out.append(in, n);
            return;
        case state::frame_rest: {
            const std::size_t k = std::min(rest_, n);
            if (!drop_) out.append(in, k);
            in += k;
            n -= k;
            rest_ -= k;
            if (rest_ == 0) {
                state_ = state::frame_head;
                need_ = 8;
            }
            break;
        }
        case state::header:
        case state::frame_head: {
            const std::size_t k = std::min(need_ - head_.size(), n);
            head_.append(in, k);
            in += k;
            n -= k;
            if (head_.size() == need_) decide(out);
            break;
        }
        }
    }
}

void frame_filter::decide(std::string& out) {
    if (state_ == state::header || (head_.size() == 8 && head_.compare(0, 4, "AMQP") == 0)) {
        // A protocol header: "AMQP" id major minor revision (id 3: SASL, 0: AMQP), before the
        // first frame and again after SASL's outcome.
        if (head_.compare(0, 4, "AMQP") != 0) {
            out += head_;
            head_.clear();
            state_ = state::passthrough;
            return;
        }
        out += head_;
        head_.clear();
        state_ = state::frame_head;
        need_ = 8;
        return;
    }
    if (head_.size() == 8) {
        frame_size_ = be32(head_.data());
        const std::size_t doff = static_cast<unsigned char>(head_[4]);
        if (frame_size_ < 8 || doff < 2 || doff * 4 > frame_size_) {
            out += head_;
            head_.clear();
            state_ = state::passthrough;
            return;
        }
        // Enough of the body to read the descriptor (at most 10 bytes), within the frame.
        const std::size_t want = std::min<std::size_t>(frame_size_, doff * 4 + 10);
        if (want > head_.size()) {
            need_ = want;
            return;
        }
    }
    // head_ holds the frame's first need_ bytes.
    const std::uint8_t type = static_cast<unsigned char>(head_[5]);
    const std::uint16_t channel = static_cast<std::uint16_t>((static_cast<unsigned char>(head_[6]) << 8) |
                                                             static_cast<unsigned char>(head_[7]));
    const std::size_t doff = static_cast<unsigned char>(head_[4]);
    drop_ = false;
    if (type == 0 && frame_size_ > doff * 4) {  // SASL frames are type 1
        const int code = descriptor(head_, doff * 4);
        if (channel >= ended_.size() && code == end_code) ended_.resize(std::size_t{channel} + 1, false);
        if (code == begin_code) {
            if (channel < ended_.size()) ended_[channel] = false;
        } else if (channel < ended_.size() && ended_[channel] && code >= attach_code && code <= end_code) {
            // Only a session's own performatives: open and close travel on channel 0 too.
            drop_ = true;
            ++dropped_;
        } else if (code == end_code) {
            ended_[channel] = true;
        }
    }
    if (!drop_) out += head_;
    rest_ = frame_size_ - head_.size();
    head_.clear();
    if (rest_ == 0) {
        state_ = state::frame_head;
        need_ = 8;
    } else {
        state_ = state::frame_rest;
    }
}

}  // namespace twinhub::amqp
