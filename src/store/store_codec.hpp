// Encodings of the store's own records, shared by the SQLite and PostgreSQL backends so that both
// store the same bytes: sessions and feedback records as JSON, event and C2D properties as a
// binary list encoding (property values are whatever bytes the device sent).
// Thread safety: pure functions.
#pragma once

#include "store/store.hpp"

#include <boost/json/value.hpp>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::store {

using property_list = std::vector<std::pair<std::string, std::string>>;

std::string session_doc(const session_record& s);
result<session_record> parse_session(std::string_view client_id, std::string_view text);

// For each list, a 4-byte little-endian count, then for each property its key and value, each as a
// 4-byte little-endian length and the bytes.
std::string encode_lists(std::initializer_list<const property_list*> lists);
bool parse_lists(std::string_view in, std::initializer_list<property_list*> lists);

std::string event_props(const event_record& e);
bool parse_event_props(std::string_view in, event_record& e);

// C2D message properties: the system properties as a list of (short name, value), then the
// application properties.
std::string c2d_props(const c2d_message& m);
bool parse_c2d_props(std::string_view in, c2d_message& m);

std::string feedback_doc(const feedback_record& f);
// Fills `f` (all but sequence_number) from its stored document; corrupt_data when malformed.
result<void> parse_feedback(std::string_view text, feedback_record& f);

result<boost::json::value> parse_doc(std::string_view text, std::string_view what);

// The device id of an MQTT client id: up to its first '/'.
std::string device_of_client(const std::string& client_id);

// One serialized document per op of `b` (empty where an op has none): what a backend stores in its
// doc/props column. Runs on the committing thread, not the writer.
std::vector<std::string> serialize_docs(const write_batch& b);

}  // namespace twinhub::store
