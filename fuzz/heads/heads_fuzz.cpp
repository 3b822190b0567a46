// Fuzzes the protocol heads' own text parsers that network input reaches before any
// authorisation: the HTTP request target and route matcher, and the MQTT client id, username,
// PUBLISH topic router, SUBSCRIBE filter classifier and property-bag decoder. The input's first
// byte picks the parser; the rest is its input. Properties: no crash, and a topic routed for one
// identity never names another identity's device.
#include "http/request_target.hpp"
#include "http/route.hpp"
#include "proto/iothub/topics.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace twinhub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const unsigned which = data[0] % 6;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const identity_key device{"dev1", ""};
    const identity_key module{"dev1", "mod1"};

    switch (which) {
    case 0: {
        auto t = http::parse_request_target(in);
        if (t) {
            for (const char* m : {"GET", "PUT", "PATCH", "POST", "DELETE"}) {
                if (auto r = http::match_route(m, t->segments)) (void)http::required_permission(*r);
            }
            (void)t->query_value("api-version");
        }
        (void)http::target_path(in);
        break;
    }
    case 1: (void)iothub::parse_client_id(in); break;
    case 2: (void)iothub::parse_username(in); break;
    case 3:
        for (const auto& self : {device, module}) {
            auto r = iothub::route_publish(in, self);
            // Telemetry accepted for `self` must be on self's own topic, never a sibling's.
            std::string_view own = self.is_module() ? "devices/dev1/modules/mod1/messages/events" : "devices/dev1/messages/events";
            if (r && r->kind == iothub::publish_kind::telemetry && !in.starts_with(own)) std::abort();
        }
        break;
    case 4:
        for (const auto& self : {device, module}) (void)iothub::classify_filter(in, self);
        break;
    case 5: (void)iothub::decode_property_bag(in); break;
    }
    return 0;
}
