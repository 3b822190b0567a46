#include "amqp/sasl_layer.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace twinhub::amqp {

namespace {

constexpr std::string_view sasl_header{"AMQP\x03\x01\x00\x00", 8};
constexpr std::string_view amqp_header{"AMQP\x00\x01\x00\x00", 8};

// A SASL frame (type 1, channel 0) around `body`.
std::string sasl_frame(const std::string& body) {
    const std::uint32_t size = static_cast<std::uint32_t>(8 + body.size());
    std::string f;
    f += static_cast<char>(size >> 24);
    f += static_cast<char>(size >> 16);
    f += static_cast<char>(size >> 8);
    f += static_cast<char>(size);
    f += '\x02';  // doff: 2 words
    f += '\x01';  // SASL
    f += '\x00';
    f += '\x00';
    return f + body;
}

// sasl-mechanisms (0x40): one field, an array of symbols.
std::string mechanisms_frame() {
    std::string elems;
    for (std::string_view m : {std::string_view("MSSBCBS"), std::string_view("ANONYMOUS"), std::string_view("PLAIN")}) {
        elems += static_cast<char>(m.size());
        elems += m;
    }
    std::string array;
    array += '\xe0';                                        // array8
    array += static_cast<char>(2 + elems.size());           // size: count + constructor + elements
    array += '\x03';                                        // count
    array += '\xa3';                                        // sym8
    array += elems;
    std::string body = std::string("\x00\x53\x40", 3);
    body += '\xc0';  // list8
    body += static_cast<char>(1 + array.size());
    body += '\x01';
    body += array;
    return sasl_frame(body);
}

// sasl-outcome (0x44) with code ok (ubyte 0).
std::string outcome_ok_frame() { return sasl_frame(std::string("\x00\x53\x44\xc0\x03\x01\x50\x00", 8)); }
// sasl-outcome with code auth (1): the credentials were refused.
std::string outcome_auth_frame() { return sasl_frame(std::string("\x00\x53\x44\xc0\x03\x01\x50\x01", 8)); }

std::uint32_t be32(const std::string& s, std::size_t at) {
    return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

}  // namespace

void sasl_layer::on_init_frame() {
    // buf_ holds the whole frame. Body: 0x00 0x53 0x41 (sasl-init), a list whose first field is the
    // mechanism symbol (sym8 0xa3 or sym32 0xb3).
    const std::size_t doff = std::size_t(std::uint8_t(buf_[4])) * 4;
    if (buf_[5] != '\x01' || doff < 8 || doff > buf_.size()) {
        state_ = state::failed;
        return;
    }
    std::string_view b(buf_);
    b.remove_prefix(doff);
    if (b.size() < 3 || b.substr(0, 3) != std::string_view("\x00\x53\x41", 3)) {
        state_ = state::failed;
        return;
    }
    b.remove_prefix(3);
    // list8 (0xc0 size count) or list32 (0xd0 size4 count4)
    if (!b.empty() && b[0] == '\xc0' && b.size() >= 3) b.remove_prefix(3);
    else if (!b.empty() && b[0] == '\xd0' && b.size() >= 9) b.remove_prefix(9);
    else {
        state_ = state::failed;
        return;
    }
    if (b.size() >= 2 && b[0] == '\xa3' && b.size() >= 2 + std::size_t(std::uint8_t(b[1]))) {
        mechanism_ = std::string(b.substr(2, std::uint8_t(b[1])));
        b.remove_prefix(2 + std::size_t(std::uint8_t(b[1])));
    } else if (b.size() >= 5 && b[0] == '\xb3') {
        std::string tmp(b.substr(1, 4));
        const std::uint32_t n = be32(tmp, 0);
        if (b.size() - 5 < n) {
            state_ = state::failed;
            return;
        }
        mechanism_ = std::string(b.substr(5, n));
        b.remove_prefix(5 + n);
    } else {
        state_ = state::failed;
        return;
    }
    if (mechanism_ == "PLAIN") {
        // initial-response: vbin8 (0xa0 len) or vbin32 (0xb0 len4): authzid NUL authcid NUL passwd
        std::string_view resp;
        if (b.size() >= 2 && b[0] == '\xa0' && b.size() >= 2 + std::size_t(std::uint8_t(b[1]))) {
            resp = b.substr(2, std::uint8_t(b[1]));
        } else if (b.size() >= 5 && b[0] == '\xb0') {
            const std::uint32_t n = be32(std::string(b.substr(1, 4)), 0);
            if (b.size() - 5 >= n) resp = b.substr(5, n);
        }
        const auto first = resp.find('\0');
        const auto second = first == std::string_view::npos ? first : resp.find('\0', first + 1);
        if (second == std::string_view::npos) {
            state_ = state::failed;
            return;
        }
        plain_user_ = std::string(resp.substr(first + 1, second - first - 1));
        plain_password_ = std::string(resp.substr(second + 1));
        return;
    }
    if (mechanism_ != "MSSBCBS" && mechanism_ != "ANONYMOUS") state_ = state::failed;
}

void sasl_layer::feed(const char* in, std::size_t n, std::string& to_proton, std::string& to_client) {
    while (n > 0 && state_ != state::failed) {
        if (state_ == state::passthrough) {
            to_proton.append(in, n);
            return;
        }
        const std::size_t k = std::min(n, need_ - buf_.size());
        buf_.append(in, k);
        in += k;
        n -= k;
        if (buf_.size() < need_) return;
        switch (state_) {
        case state::header:
            if (buf_ == sasl_header) {
                to_client += sasl_header;
                to_client += mechanisms_frame();
                state_ = state::init_head;
                need_ = 8;
            } else {
                to_proton += buf_;  // no SASL layer (Node), or something Proton will refuse
                state_ = state::passthrough;
            }
            buf_.clear();
            break;
        case state::init_head: {
            const std::uint32_t size = be32(buf_, 0);
            if (size < 8 || size > max_init_frame) {
                state_ = state::failed;
                break;
            }
            if (size == 8) {  // an empty frame (heartbeat): wait for the next
                buf_.clear();
                break;
            }
            need_ = size;
            state_ = state::init_body;
            break;
        }
        case state::init_body:
            on_init_frame();
            if (state_ == state::failed) break;
            if (mechanism_ == "PLAIN" && !(validate_plain_ && validate_plain_(plain_user_, plain_password_))) {
                std::fill(plain_password_.begin(), plain_password_.end(), '\0');
                plain_password_.clear();
                to_client += outcome_auth_frame();
                state_ = state::failed;
                break;
            }
            std::fill(plain_password_.begin(), plain_password_.end(), '\0');
            plain_password_.clear();
            to_client += outcome_ok_frame();
            buf_.clear();
            need_ = 8;
            state_ = state::amqp_header;
            break;
        case state::amqp_header:
            if (buf_ != amqp_header) {
                state_ = state::failed;
                break;
            }
            to_proton += buf_;
            buf_.clear();
            state_ = state::passthrough;
            break;
        case state::passthrough:
        case state::failed: break;
        }
    }
}

}  // namespace twinhub::amqp
