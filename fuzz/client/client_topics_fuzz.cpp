// Fuzzes what the C++ SDK parses from the hub: MQTT topics a device client receives (C2D and module
// input property bags, twin responses, desired patches, method calls), feedback batch bodies and
// REST error bodies. Properties checked: no crash; a parsed C2D bag has no more entries than
// '&'-separated pairs; a feedback batch has one record per array element.
#include "client/hub_error.hpp"
#include "client/service_json.hpp"
#include "client/topics.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace twinhub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    for (std::string_view module : {std::string_view{}, std::string_view{"mod1"}}) {
        if (auto m = client::parse_c2d_topic(in, "dev1", module)) {
            const auto pairs = static_cast<std::size_t>(std::count(in.begin(), in.end(), '&')) + 1;
            if (m->properties.size() > pairs) std::abort();
            if (module.empty() && !m->input_name.empty()) std::abort();
        }
    }
    (void)iothub::parse_twin_response_topic(in);
    (void)iothub::parse_desired_patch_topic(in);
    (void)iothub::parse_method_topic(in);

    if (auto f = client::feedback_from_json(in)) {
        if (!f->empty() && in.find('{') == std::string_view::npos) std::abort();
    }
    (void)client::parse_rest_error(404, in, {});
    (void)client::parse_twin_error(400, in);
    (void)client::errc_from_amqp_condition(in, in, true);
    return 0;
}
