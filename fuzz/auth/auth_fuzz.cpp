// Fuzzes the parsers that every SAS-authenticated request reaches: the Authorization header / MQTT
// password (SAS token), the decoded resource check, and connection strings. Properties checked:
// no crash, and a parsed value formats back to something that parses to the same value.
#include "auth/authenticator.hpp"
#include "auth/connection_string.hpp"
#include "auth/sas_token.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace twinhub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    if (auto t = auth::parse_sas_token(in)) {
        std::string again = auth::to_string(*t);
        auto t2 = auth::parse_sas_token(again);
        if (!t2 || t2->resource != t->resource || t2->signature != t->signature || t2->expiry != t->expiry ||
            t2->key_name != t->key_name)
            std::abort();
        if (auto r = auth::decode_resource(t->resource)) {
            (void)auth::resource_authorizes(*r, "myhub.azure-devices.net/devices/dev1/modules/mod1");
        }
        (void)auth::signature_matches(*t, "dGVzdGtleXRlc3RrZXl0ZXN0a2V5");
    }

    const std::string hosts[] = {"myhub.azure-devices.net", "localhost"};
    auth::shared_access_policy p{"iothubowner", "dGVzdGtleXRlc3RrZXl0ZXN0a2V5", "dGVzdGtleXRlc3RrZXl0ZXN0a2V5",
                                 auth::registry_read | auth::registry_write | auth::service_connect |
                                     auth::device_connect};
    (void)auth::authorize_service(in, hosts, std::span(&p, 1), auth::service_connect, now());

    if (auto cs = auth::parse_connection_string(in)) {
        auto again = auth::parse_connection_string(auth::to_string(*cs));
        if (!again) std::abort();
    }
    return 0;
}
