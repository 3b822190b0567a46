// libFuzzer target for the twin query language: any bytes go through query::parse(); plans that
// parse are evaluated over a small fixed fleet (filter, projection, aggregation), so the evaluator
// sees every shape of expression the parser accepts.
#include "query/query_evaluator.hpp"
#include "query/query_parser.hpp"

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

const std::vector<boost::json::object>& fleet() {
    static const std::vector<boost::json::object> docs = [] {
        std::vector<boost::json::object> v;
        for (const char* j : {
                 R"({"deviceId":"d1","etag":"AAAAAAAAAAE=","status":"enabled","connectionState":"Disconnected","version":2,
                    "tags":{"location":{"region":"US"},"n":5,"s":"5","b":true,"z":null,"a":[1,"x",{"k":2}]},
                    "properties":{"desired":{"x":1.5,"$version":3},"reported":{"x":-2,"status":"Success","$version":7}}})",
                 R"({"deviceId":"d2","moduleId":"m","tags":{},"properties":{"desired":{},"reported":{"x":"str"}}})",
                 R"({"deviceId":"d3"})"}) {
            v.push_back(boost::json::parse(j).as_object());
        }
        return v;
    }();
    return docs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view sql(reinterpret_cast<const char*>(data), size);
    auto plan = twinhub::query::parse(sql);
    if (!plan) {
        if (plan.error().message.empty()) __builtin_trap();  // every rejection must say why
        return 0;
    }
    using namespace twinhub::query;
    if (plan->aggregated) {
        aggregator agg(*plan);
        for (const auto& d : fleet()) {
            json_row row(*plan, d);
            if (matches(*plan, row)) agg.add(row);
        }
        (void)agg.finish();
    } else {
        for (const auto& d : fleet()) {
            json_row row(*plan, d);
            if (matches(*plan, row)) (void)project(*plan, row);
        }
    }
    return 0;
}
