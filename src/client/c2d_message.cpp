#include "twinhub/c2d_message.hpp"

#include "common/text.hpp"

#include <cctype>

namespace twinhub {

const char* to_string(c2d_ack a) noexcept {
    switch (a) {
    case c2d_ack::none: return "none";
    case c2d_ack::positive: return "positive";
    case c2d_ack::negative: return "negative";
    case c2d_ack::full: return "full";
    }
    return "none";
}

std::optional<c2d_ack> parse_c2d_ack(std::string_view s) noexcept {
    for (c2d_ack a : {c2d_ack::none, c2d_ack::positive, c2d_ack::negative, c2d_ack::full}) {
        if (iequals(s, to_string(a))) return a;
    }
    return std::nullopt;
}

const std::string* received_c2d_message::property(std::string_view name) const {
    for (const auto& [k, v] : properties)
        if (k == name) return &v;
    return nullptr;
}

}  // namespace twinhub
