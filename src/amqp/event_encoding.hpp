// Events of the log encoded straight to AMQP 1.0 bytes for the Event Hubs-compatible endpoint's
// partition senders (spec: iothub-amqp 5.4), without building a proton::message per event. The
// profile of a partition read (docs/benchmarks.md, "Telemetry") put about 75% of the hub's CPU in
// building, encoding and freeing proton::message objects (a pn_data_t and a proton::value per
// annotation); this writes the same sections directly.
// Thread safety: pure functions, except send_encoded, which must run on the link's connection thread.
#pragma once

#include "store/store.hpp"

#include <proton/sender.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace twinhub::amqp {

// Appends to `out` the AMQP encoding of event_message(e) (message_codec.hpp): the same
// message-annotations, properties, application-properties and one data section. Where
// event_message would overwrite a key given twice, the last value wins here too.
void encode_event(const store::event_record& e, std::string& out);

// Sends `bytes` (one encoded message) on `s` as one delivery, as proton::sender::send does with a
// message it encoded (settled at once when the link's sender settle mode is settled). `tag` is the
// caller's per-link delivery counter; tags have the top bit set, apart from proton's own counter.
void send_encoded(proton::sender& s, std::string_view bytes, std::uint64_t& tag);

}  // namespace twinhub::amqp
