// Where an Event Hubs receiver starts (spec: iothub-amqp 5.3): the selector filter string of its
// source, e.g. "amqp.annotation.x-opt-offset > '-1'". Pure; network input reaches it (fuzzed).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace twinhub::amqp {

struct event_position {
    enum class kind { earliest, latest, offset, sequence_number, enqueued_time } what = kind::latest;
    std::int64_t value = 0;  // the offset or sequence number; enqueued time in Unix milliseconds
    bool inclusive = false;  // ">=" rather than ">"
};

// Parses the three filter forms (offset, sequence number, enqueued time) and the special offsets
// '-1' (earliest) and '@latest'. nullopt for anything else.
std::optional<event_position> parse_event_position(std::string_view selector);

}  // namespace twinhub::amqp
