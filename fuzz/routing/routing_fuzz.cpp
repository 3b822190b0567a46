// libFuzzer target for message routing: any bytes are compiled as a route condition and evaluated
// on fixed messages (JSON body with a twin, non-JSON body, UTF-16 body); bytes that are JSON go
// through parse_routing_config and, when valid, router::compile and route(); and the bytes are
// used as a message body in each allowed encoding under fixed conditions.
#include "telemetry/router.hpp"
#include "telemetry/routing_condition.hpp"
#include "telemetry/routing_config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace twinhub::telemetry;

const boost::json::value& twin() {
    static const boost::json::value t = boost::json::parse(
        R"({"tags":{"site":"oslo","floor":1,"loc":{"a":[1,"x",{"k":null}]}},
            "properties":{"desired":{"mode":"eco","$version":3},"reported":{"fw":{"version":"1.2"},"battery":55}}})");
    return t;
}

std::vector<routing_message> messages() {
    routing_message json;
    json.body = R"({"Weather":{"Temperature":50,"PrevTemperatures":[20,30,40],"IsEnabled":true,
                    "Location":{"State":"WA"},"HistoricalData":[{"Month":"Feb"}]},"n":null,"s":"str"})";
    json.content_type = "application/json";
    json.content_encoding = "utf-8";
    json.app_properties = {{"level", "critical"}, {"severity", "3"}, {"processing-path", "hot"}, {"$custom", "x"}};
    json.system = {{"$connectionDeviceId", "d1"},
                   {"$connectionModuleId", "m1"},
                   {"$messageId", "1"},
                   {"$enqueuedTime", "2026-12-07T12:00:00Z"}};
    json.twin = &twin();
    routing_message text = json;
    text.body = "not json";
    text.twin = nullptr;
    text.source = route_source::twin_change;
    routing_message wide = json;
    wide.content_encoding = "utf-16";
    wide.body.clear();
    for (char c : std::string(R"({"Weather":{"Temperature":50}})")) {
        wide.body += c;
        wide.body += '\0';
    }
    wide.source = route_source::lifecycle;
    return {json, text, wide};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::vector<routing_message> fixed = messages();
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // 1. The bytes as a condition.
    auto cond = condition::compile(text);
    if (!cond) {
        if (cond.error().message.empty()) __builtin_trap();  // every rejection must say why
    } else {
        for (const auto& m : fixed) (void)cond->matches(m);
    }

    // 2. The bytes as a routing configuration.
    boost::system::error_code ec;
    boost::json::value json = boost::json::parse(text, ec);
    if (!ec) {
        auto config = parse_routing_config(json);
        if (!config) {
            if (config.error().message.empty()) __builtin_trap();
        } else {
            // What parse_routing_config accepts, to_json writes back identically and the router compiles.
            auto again = parse_routing_config(to_json(*config));
            if (!again || boost::json::serialize(to_json(*again)) != boost::json::serialize(to_json(*config)))
                __builtin_trap();
            auto r = router::compile(std::move(*config), "fuzzhub");
            if (!r) __builtin_trap();
            for (const auto& m : fixed) {
                auto deliveries = (*r)->route(m);
                for (std::size_t i = 0; i < deliveries.size(); ++i)
                    for (std::size_t j = i + 1; j < deliveries.size(); ++j)
                        if (deliveries[i].endpoint == deliveries[j].endpoint) __builtin_trap();  // deduplicated
            }
        }
    }

    // 3. The bytes as a body in every encoding a body query accepts.
    static const std::vector<condition> body_conditions = [] {
        std::vector<condition> v;
        for (const char* c : {"$body.a = 1", "IS_DEFINED($body.a.b[0])", "LENGTH($body.s) > 2 OR $body.n = null",
                              "CONTAINS(CONCAT($body.x, $body.y), 'z') AND NOT IS_OBJECT($body.o)"})
            v.push_back(condition::compile(c).value());
        return v;
    }();
    for (const char* enc : {"utf-8", "utf-16", "utf-32"}) {
        routing_message m;
        m.body.assign(text);
        m.content_type = "application/json";
        m.content_encoding = enc;
        condition_input in(m);
        for (const auto& c : body_conditions) (void)c.matches(in);
    }
    return 0;
}
