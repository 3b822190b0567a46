// Fuzzes what REST and MQTT bodies reach after JSON parsing: twin patches (service PATCH/PUT and
// device reported patches) and identity PUT bodies. Properties checked: no crash; a failed write
// leaves the document unchanged; the stored form of an accepted document reads back equal.
#include "registry/identity.hpp"
#include "twin/twin_document.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace twinhub;

namespace {
std::string dump(const twin::twin_document& d) { return boost::json::serialize(twin::to_storage_json(d)); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(in, ec);
    if (ec) return 0;

    const time_point t = time_point(std::chrono::seconds(1700000000));
    twin::twin_document doc = twin::new_twin(t);
    (void)twin::apply_reported_patch(doc, boost::json::parse(R"({"fw":"1.0","nested":{"a":1}})"), t);

    for (int op = 0; op < 3; ++op) {
        std::string before = dump(doc);
        bool ok = false;
        if (op == 0) ok = twin::apply_service_patch(doc, v, t).has_value();
        if (op == 1) ok = twin::apply_service_replace(doc, v, t).has_value();
        if (op == 2) ok = twin::apply_reported_patch(doc, v, t).has_value();
        if (!ok && dump(doc) != before) std::abort();  // a rejected write must change nothing
    }
    (void)twin::device_view(doc);
    (void)twin::properties_json(doc);
    auto back = twin::from_storage_json(twin::to_storage_json(doc));
    if (!back || dump(*back) != dump(doc)) std::abort();

    (void)registry::parse_device_request(v);
    (void)registry::parse_module_request(v);
    return 0;
}
