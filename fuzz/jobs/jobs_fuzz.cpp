// libFuzzer target for the bodies the jobs and configurations routes accept: any bytes that are
// JSON go through parse_job_request, parse_configuration (then the per-twin decision over a small
// fleet, and the storage round trip) and parse_apply_request; expand_configuration_refs sees the
// raw text; the text as a devices.txt blob goes line by line through parse_import_line, and the
// JSON through parse_ie_request (import/export jobs). Nothing may crash, and what parses must
// round-trip through storage.
#include "jobs/configuration_content.hpp"
#include "jobs/configuration_service.hpp"
#include "jobs/import_export.hpp"
#include "jobs/job_state.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace twinhub;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)jobs::expand_configuration_refs(text);
    for (auto& [n, line] : jobs::blob_lines(text)) (void)jobs::parse_import_line(line, n);
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) return 0;
    const time_point t = now();
    if (auto r = jobs::parse_job_request("job1", v, t)) {
        jobs::job_record j;
        j.req = *r;
        j.created_time = t;
        std::size_t chunks = 0;
        if (!jobs::from_storage(boost::json::parse(boost::json::serialize(jobs::to_storage(j, 0))), chunks)) std::abort();
        (void)jobs::to_json(j);
    }
    if (auto c = jobs::parse_configuration("cfg1", v, t)) {
        c->etag_counter = 1;
        jobs::finish_document(*c);
        if (!jobs::configuration_from_storage(c->doc)) std::abort();
        auto shared = std::make_shared<const jobs::configuration>(std::move(*c));
        static const auto twin = boost::json::parse(
            R"({"deviceId":"d","moduleId":"m","tags":{"a":1,"b":"x"},"properties":{"desired":{"a":{"b":1},"$version":2},"reported":{}}})")
                                     .as_object();
        (void)jobs::decide(twin, false, {shared});
        (void)jobs::decide(twin, true, {shared});
    }
    (void)jobs::parse_apply_request(v);
    if (auto ie = jobs::parse_ie_request(v)) {
        ie->job_id = "j";
        auto back = jobs::ie_job_from_json(jobs::to_stored_json(*ie));
        if (!back || back->output_uri != ie->output_uri || back->exclude_keys != ie->exclude_keys) std::abort();
    }
    return 0;
}
