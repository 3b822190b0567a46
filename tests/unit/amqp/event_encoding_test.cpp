// encode_event (amqp/event_encoding.hpp) against proton's own encoding of event_message: both are
// decoded by Proton, as a receiver would, and compared section by section.
#include "amqp/event_encoding.hpp"
#include "amqp/message_codec.hpp"

#include <proton/annotation_key.hpp>
#include <proton/codec/map.hpp>
#include <proton/message.hpp>
#include <proton/scalar.hpp>
#include <proton/value.hpp>

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace twinhub::amqp {
namespace {

proton::message decoded(const std::string& bytes) {
    proton::message m;
    m.decode(std::vector<char>(bytes.begin(), bytes.end()));
    return m;
}

proton::message via_proton(const store::event_record& e) {
    std::vector<char> buf;
    event_message(e).encode(buf);
    proton::message m;
    m.decode(buf);
    return m;
}

std::map<std::string, std::string> annotations_of(const proton::message& m) {
    std::map<std::string, std::string> out;
    std::map<proton::annotation_key, proton::value> raw;
    if (!m.message_annotations().empty()) proton::get(m.message_annotations().value(), raw);
    for (auto& [k, v] : raw) out[proton::to_string(k)] = proton::to_string(v) + " : " + std::to_string(static_cast<int>(v.type()));
    return out;
}

std::map<std::string, std::string> app_of(const proton::message& m) {
    std::map<std::string, std::string> out;
    std::map<std::string, proton::scalar> raw;
    if (!m.properties().empty()) proton::get(m.properties().value(), raw);
    for (auto& [k, v] : raw) out[k] = proton::to_string(v) + " : " + std::to_string(static_cast<int>(v.type()));
    return out;
}

void expect_same(const store::event_record& e) {
    std::string bytes;
    encode_event(e, bytes);
    const proton::message ours = decoded(bytes), theirs = via_proton(e);
    EXPECT_EQ(body_bytes(ours), body_bytes(theirs));
    EXPECT_EQ(ours.body().type(), theirs.body().type());
    EXPECT_EQ(ours.id(), theirs.id());
    EXPECT_EQ(ours.correlation_id(), theirs.correlation_id());
    EXPECT_EQ(ours.user(), theirs.user());
    EXPECT_EQ(ours.to(), theirs.to());
    EXPECT_EQ(ours.content_type(), theirs.content_type());
    EXPECT_EQ(ours.content_encoding(), theirs.content_encoding());
    EXPECT_EQ(ours.subject(), theirs.subject());
    EXPECT_EQ(ours.reply_to(), theirs.reply_to());
    EXPECT_EQ(annotations_of(ours), annotations_of(theirs));
    EXPECT_EQ(app_of(ours), app_of(theirs));
}

store::event_record telemetry(std::string body) {
    store::event_record e;
    e.source = {"dev1", ""};
    e.body = std::move(body);
    e.enqueued_time_ns = 1'765'000'000'123'456'789;
    e.sequence_number = 41;
    e.system_properties = {{"iothub-connection-device-id", "dev1"}, {"iothub-message-source", "Telemetry"}};
    return e;
}

TEST(EventEncoding, PlainTelemetryMatchesProton) { expect_same(telemetry("{\"t\":21.5}")); }

TEST(EventEncoding, EmptyBody) { expect_same(telemetry("")); }

TEST(EventEncoding, LongValuesUse32BitLengths) {
    auto e = telemetry(std::string(70'000, 'b'));
    e.system_properties.emplace_back("message-id", std::string(300, 'm'));
    e.application_properties.emplace_back(std::string(260, 'k'), std::string(1000, 'v'));
    expect_same(e);
}

TEST(EventEncoding, PropertiesSectionAndModule) {
    auto e = telemetry(std::string("\x00\x01\xff binary", 10));
    e.source = {"dev1", "mod1"};
    e.sequence_number = 9'000'000'000;
    e.system_properties = {{"message-id", "mid-1"},
                           {"correlation-id", "cid-1"},
                           {"user-id", "someone"},
                           {"to", "/devices/dev1/messages/events"},
                           {"content-type", "application/json"},
                           {"content-encoding", "utf-8"},
                           {"absolute-expiry-time", "2026-12-08T00:00:00Z"},
                           {"iothub-connection-device-id", "dev1"},
                           {"iothub-connection-module-id", "mod1"},
                           {"iothub-connection-auth-method", "{\"scope\":\"module\"}"},
                           {"iothub-connection-auth-generation-id", "638000"},
                           {"iothub-message-source", "Telemetry"},
                           {"iothub-outputname", "out1"}};
    e.application_properties = {{"alarm", "true"}, {"level", "3"}, {"ünïcode", "välue"}};
    expect_same(e);
}

TEST(EventEncoding, OnlyContentTypeLeavesLeadingFieldsNull) {
    auto e = telemetry("x");
    e.system_properties.emplace_back("content-type", "text/plain");
    expect_same(e);
}

TEST(EventEncoding, RepeatedKeysKeepTheLastValue) {
    auto e = telemetry("x");
    e.system_properties.emplace_back("iothub-message-source", "twinChangeEvents");
    e.system_properties.emplace_back("message-id", "a");
    e.system_properties.emplace_back("message-id", "b");
    e.system_properties.emplace_back("x-opt-offset", "overridden");
    e.application_properties = {{"k", "1"}, {"k", "2"}};
    expect_same(e);
}

}  // namespace
}  // namespace twinhub::amqp
