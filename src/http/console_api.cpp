// The console's own REST calls, for what IoT Hub's REST API does not offer (IoT Hub sends C2D over
// AMQP and serves telemetry through the Event Hubs endpoint), with the same service SAS tokens:
//   POST /console/api/devices/{id}/messages        ServiceConnect: the body becomes one C2D message
//        (Content-Type kept; x-ms-property-{name} headers become application properties);
//        200 {"sequenceNumber": n}.
//   GET  /console/api/devices/{id}/events[?from=N] ServiceConnect: the device's telemetry from its
//        built-in endpoint partition: {"partition","next","events":[{sequenceNumber,enqueuedTime,
//        body,properties,systemProperties}]}; without `from` only `next` (the end), so a viewer
//        starts live; at most 200 events per call (poll with from=next).
#include "http/ops_api.hpp"

#include "auth/authenticator.hpp"
#include "common/time.hpp"
#include "http/error_body.hpp"
#include "http/request_target.hpp"
#include "registry/identity.hpp"
#include "service/c2d_service.hpp"
#include "service/hub_service.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace twinhub::http {

namespace json = boost::json;

namespace {

rest_response json_ok(const json::value& v) {
    rest_response r;
    r.body = json::serialize(v);
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

json::object pairs(const std::vector<std::pair<std::string, std::string>>& ps) {
    json::object o;
    for (const auto& [k, v] : ps) o[k] = v;
    return o;
}

}  // namespace

bool ops_api::console_api(const rest_request& req, completion& done) {
    auto target = parse_request_target(req.target);
    if (!target) {
        done(error_response(target.error()));
        return true;
    }
    const auto& seg = target->segments;  // console, api, devices, {id}, messages|events
    if (seg.size() != 5 || seg[2] != "devices" || (seg[4] != "messages" && seg[4] != "events")) {
        done(error_response(error{errc::not_found, "No such console API route."}));
        return true;
    }
    const bool send = seg[4] == "messages";
    if (req.method != (send ? "POST" : "GET")) {
        done(error_response(error{errc::method_not_allowed, send ? "Use POST to send a message." : "Use GET."}));
        return true;
    }
    const std::string& id = seg[3];
    {
        auto policies = hub_.policies();
        auto granted = auth::authorize_service(req.authorization.value_or(""), opts_.host_names, policies,
                                               auth::service_connect, now(), "devices/" + id);
        if (!granted) {
            done(error_response(granted.error()));
            return true;
        }
    }
    if (auto ok = registry::validate_id(id, "deviceId"); !ok) {
        done(error_response(ok.error()));
        return true;
    }
    store::identity_key key{id, ""};
    if (send) {
        if (!opts_.c2d) {
            done(error_response(error{errc::not_found, "Cloud-to-device messages are not served by this hub."}));
            return true;
        }
        service::c2d_outgoing m;
        m.body = req.body;
        m.content_type = req.content_type.value_or("");
        for (const auto& [k, v] : req.iothub_headers) {
            if (k.starts_with("iothub-app-")) m.application_properties.emplace_back(k.substr(11), v);
        }
        opts_.c2d->send(std::move(key), std::move(m), [done](result<std::uint64_t> r) {
            if (!r) return done(error_response(r.error()));
            json::object o;
            o["sequenceNumber"] = *r;
            done(json_ok(o));
        });
        return true;
    }
    if (auto d = hub_.get_device(id); !d) {
        done(error_response(d.error()));
        return true;
    }
    const std::uint32_t partition = store::partition_of(key, hub_.event_partition_count());
    auto info = hub_.event_partition_info(partition);
    if (!info) {
        done(error_response(info.error()));
        return true;
    }
    const std::uint64_t end = static_cast<std::uint64_t>(info->last_sequence_number + 1);
    json::object out;
    out["partition"] = partition;
    json::array events;
    std::uint64_t next = end;
    if (auto from = target->query_value("from"); from && !from->empty()) {
        std::uint64_t f = 0;
        auto [p, ec] = std::from_chars(from->data(), from->data() + from->size(), f);
        if (ec != std::errc{} || p != from->data() + from->size()) {
            done(error_response(error{errc::invalid_argument, "from must be a sequence number."}));
            return true;
        }
        f = std::max<std::uint64_t>(f, info->begin_sequence_number);
        next = f;
        if (f < end) {
            auto read = hub_.read_events(partition, f, 200);
            if (!read) {
                done(error_response(read.error()));
                return true;
            }
            for (const auto& e : *read) {
                next = e.sequence_number + 1;
                if (e.source.device_id != id) continue;
                json::object o;
                o["sequenceNumber"] = e.sequence_number;
                o["enqueuedTime"] = format_time(time_point(std::chrono::nanoseconds(e.enqueued_time_ns)));
                o["moduleId"] = e.source.module_id;
                o["body"] = e.body;
                o["properties"] = pairs(e.application_properties);
                o["systemProperties"] = pairs(e.system_properties);
                events.push_back(std::move(o));
            }
        }
    }
    out["next"] = next;
    out["events"] = std::move(events);
    done(json_ok(out));
    return true;
}

}  // namespace twinhub::http
