// The AMQP head's text parsers that a peer's ATTACH and transfers reach before any authorisation
// decision: link addresses (source/target), a C2D message's `to`, the CBS put-token audience (the
// token's sr), an Event Hubs receiver's selector filter and the SASL layer. The first input byte picks the parser.
// Invariants: no crash; an address or `to` that parses to an identity names a device id that
// appears in the input (no identity made up), and a module only with a device.
#include "amqp/address.hpp"
#include "amqp/event_position.hpp"
#include "amqp/sasl_layer.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace twinhub;

namespace {
void check_identity(const store::identity_key& id) {
    if (id.device_id.empty() && !id.module_id.empty()) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    static const std::vector<std::string> hosts{"hub.local", "localhost"};
    switch (data[0] % 5) {
    case 0:
        if (auto a = amqp::parse_link_address(in)) check_identity(a->identity);
        break;
    case 1:
        if (auto id = amqp::parse_c2d_destination(in)) {
            if (id->device_id.empty()) std::abort();
            check_identity(*id);
        }
        break;
    case 2:
        if (auto a = amqp::parse_audience(in, hosts)) {
            if (!a->hub) check_identity(a->identity);
        }
        break;
    case 3: (void)amqp::parse_event_position(in); break;
    case 4: {
        // The SASL layer: what reaches Proton is always a suffix of the input (never made up).
        amqp::sasl_layer s;
        std::string p, c;
        s.feed(in.data(), in.size(), p, c);
        if (p.size() > in.size() || in.substr(in.size() - p.size()) != p) std::abort();
        break;
    }
    }
    return 0;
}
