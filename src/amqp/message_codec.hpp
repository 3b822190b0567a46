// Internal to src/amqp: between Proton messages and the hub's records (spec: iothub-amqp 4.3):
// bodies (one data section, or an AMQP string), properties, annotations, message ids, and the AMQP
// error condition for each twinhub error.
#pragma once

#include "common/errc.hpp"
#include "store/store.hpp"

#include <proton/message.hpp>
#include <proton/message_id.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::amqp {

// The body as bytes: a data section (binary), an AMQP string or symbol value; "" otherwise.
std::string body_bytes(const proton::message& m);
// The body as text (the CBS token is an AMQP string value).
std::string body_text(const proton::message& m);
// Sets one data section holding `bytes`.
void set_body_bytes(proton::message& m, std::string_view bytes);

// An application property as text (numbers and booleans formatted), "" when absent.
std::string app_property(const proton::message& m, const std::string& key);
// An application property that is an integer (any width), or a decimal string.
bool int_app_property(const proton::message& m, const std::string& key, int& out);
// Every application property as text (see app_property), by key.
std::vector<std::pair<std::string, std::string>> application_properties_text(const proton::message& m);
// A message annotation as text, "" when absent.
std::string annotation_text(const proton::message& m, const char* key);

// A message id of any AMQP type as the text the SDKs use (a uuid in its 8-4-4-4-12 form).
std::string message_id_text(const proton::message_id& id);

// The system and application properties of a telemetry message, as the event log stores them
// (the names MQTT's property bag maps to: message-id, correlation-id, content-type, ...).
void telemetry_properties(const proton::message& m, store::event_record& e);

// An event of the log as the Event Hubs SDKs read it (spec: iothub-amqp 5.4): the body as one data
// section, x-opt-sequence-number / x-opt-offset / x-opt-enqueued-time and the iothub-* system
// properties as message annotations, message-id, correlation-id, content-type ... in the
// properties section, the device's application properties unchanged.
proton::message event_message(const store::event_record& e);



}  // namespace twinhub::amqp
