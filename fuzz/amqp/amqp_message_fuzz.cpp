// AMQP message bodies as the hub decodes them from transfers (telemetry, CBS put-token, C2D sends):
// Proton's decoder on arbitrary bytes, then twinhub's codec that reads properties, application
// properties, annotations and the body (src/amqp/message_codec.hpp). Invariant: no crash, and
// decoding errors are exceptions Proton throws (caught here as the connection handler does).
#include "amqp/message_codec.hpp"

#include <proton/error.hpp>
#include <proton/message.hpp>

#include <cstdint>
#include <exception>
#include <vector>

using namespace twinhub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    proton::message m;
    try {
        m.decode(std::vector<char>(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size));
    } catch (const std::exception&) {
        return 0;
    }
    try {
        (void)amqp::body_bytes(m);
        (void)amqp::body_text(m);
        (void)amqp::application_properties_text(m);
        (void)amqp::app_property(m, "operation");
        int n = 0;
        (void)amqp::int_app_property(m, "status-code", n);
        (void)amqp::annotation_text(m, "iothub-partition-key");
        (void)amqp::message_id_text(m.id());
        store::event_record e;
        amqp::telemetry_properties(m, e);
    } catch (const proton::error&) {
        // a value of an unexpected type: the head answers with an error, as here
    }
    return 0;
}
