#include "amqp/event_position.hpp"

#include <charconv>
#include <string>

namespace twinhub::amqp {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

std::optional<event_position> parse_event_position(std::string_view selector) {
    std::string_view s = trim(selector);
    constexpr std::string_view prefix = "amqp.annotation.";
    if (!starts_with(s, prefix)) return std::nullopt;
    s.remove_prefix(prefix.size());
    event_position p;
    if (starts_with(s, "x-opt-offset")) {
        p.what = event_position::kind::offset;
        s.remove_prefix(12);
    } else if (starts_with(s, "x-opt-sequence-number")) {
        p.what = event_position::kind::sequence_number;
        s.remove_prefix(21);
    } else if (starts_with(s, "x-opt-enqueued-time")) {
        p.what = event_position::kind::enqueued_time;
        s.remove_prefix(19);
    } else {
        return std::nullopt;
    }
    s = trim(s);
    if (starts_with(s, ">=")) {
        p.inclusive = true;
        s.remove_prefix(2);
    } else if (starts_with(s, ">")) {
        s.remove_prefix(1);
    } else {
        return std::nullopt;
    }
    s = trim(s);
    if (s.size() < 2 || s.front() != '\'' || s.back() != '\'') return std::nullopt;
    s = s.substr(1, s.size() - 2);
    if (p.what == event_position::kind::offset && s == "@latest") {
        p.what = event_position::kind::latest;
        return p;
    }
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), p.value);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    if (p.what == event_position::kind::offset && p.value == -1) p.what = event_position::kind::earliest;
    else if (p.value < 0) return std::nullopt;
    return p;
}

}  // namespace twinhub::amqp
