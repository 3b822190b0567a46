// The MQTT 3.1.1 grammar checks that do not depend on a packet's layout: UTF-8 strings (1.5.3),
// topic names and topic filters (4.7). The decoder applies them to every field it reads; the
// server and the SDK may reuse them on strings that come from elsewhere. Generic MQTT only: the
// IoT Hub topic catalogue lives in the MQTT head.
// Thread safety: stateless functions, safe from any thread.
#pragma once

#include "common/errc.hpp"
#include "proto/mqtt/packet.hpp"

#include <string_view>

namespace twinhub::mqtt {

// Success when `s` is well-formed UTF-8 (no overlong forms, no surrogates U+D800..U+DFFF, nothing
// above U+10FFFF) without U+0000, and fits an MQTT string (at most 65535 bytes). Otherwise
// errc::invalid_argument; the message names `what` (e.g. "PUBLISH topic name") and the byte offset.
result<void> validate_utf8_string(std::string_view s, std::string_view what);

// Success when `topic` is a valid topic name for PUBLISH or a Will: a valid UTF-8 string, at
// least one byte, no '+' or '#' (MQTT-3.3.2-2, MQTT-4.7.3-1). Otherwise errc::invalid_argument.
result<void> validate_topic_name(std::string_view topic, std::string_view what);

// Success when `filter` is a valid topic filter: a valid UTF-8 string, at least one byte, '#' only
// as the whole last level, '+' only as a whole level (MQTT-4.7.1-2, MQTT-4.7.1-3). Otherwise
// errc::invalid_argument.
result<void> validate_topic_filter(std::string_view filter, std::string_view what);

// Success when the encoder can write `p` and a strict decoder would accept the bytes: every string
// fits 65535 bytes, the packet fits the largest remaining length, and every rule that decoder.hpp
// lists holds (so a CONNECT must be "MQTT" level 4). Otherwise errc::invalid_argument (or
// errc::message_too_large) with the decoder's message. For values built from application input,
// e.g. a topic an SDK user passes, before they are encoded; costs one encode and one decode.
result<void> validate_packet(const packet& p);

}  // namespace twinhub::mqtt
