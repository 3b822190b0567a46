// Decoding what the Event Hubs-compatible endpoint sends (spec iothub-amqp 5.4, 5.5) into the SDK's
// event_consumer types: an event's annotations and properties, and the $management READ bodies.
// Sans-I/O: Proton messages and values in, SDK values out.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"
#include "twinhub/event_consumer.hpp"

#include <proton/message.hpp>
#include <proton/value.hpp>

#include <boost/json/value.hpp>

#include <string>

namespace twinhub::client {

// A message's body bytes (a data section, or a string or symbol value); "" for anything else.
std::string body_bytes(const proton::message& m);
// An application property as an int (-1 when absent or not a number) or a string ("" unless a string).
int int_property(const proton::message& m, const std::string& key);
std::string string_property(const proton::message& m, const std::string& key);

// An AMQP value as JSON: numbers and booleans as such, strings and symbols as strings, timestamps
// as Unix milliseconds, binary as its bytes, anything else in Proton's text form.
boost::json::value json_of(const proton::value& v);

// One delivered event of `partition`.
event_data decode_event(const proton::message& m, const std::string& partition);

// The body of READ com.microsoft:eventhub: a map with name and partition_ids. format_error when it
// is not one.
result<event_hub_properties> decode_hub_properties(const proton::value& body);
// The body of READ com.microsoft:partition.
result<partition_properties> decode_partition_properties(const proton::value& body);

}  // namespace twinhub::client
