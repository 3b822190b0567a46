// The built-in endpoint's consumer groups over REST. Azure manages them through ARM
// (`az iot hub consumer-group create|list|show|delete`); twinhub serves the same resource on the
// hub: /eventHubEndpoints/events/consumerGroups[/{name}], answering in ARM's shape.
#include "http/error_body.hpp"
#include "http/rest_api.hpp"
#include "http/route.hpp"
#include "common/time.hpp"
#include "common/text.hpp"
#include "service/telemetry_service.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::http {

namespace {

namespace json = boost::json;

json::object group_json(const service::telemetry_service::consumer_group& g) {
    json::object props;
    props["created"] = format_time(time_point(std::chrono::nanoseconds(g.created_ns)));
    json::object o;
    o["name"] = g.name;
    o["type"] = "Microsoft.Devices/IotHubs/EventHubEndpoints/ConsumerGroups";
    o["properties"] = std::move(props);
    return o;
}

rest_response ok_json(int status, const json::value& v) {
    rest_response r;
    r.status = status;
    r.body = json::serialize(v);
    return r;
}

}  // namespace

void rest_api::handle_consumer_groups(const route& r, const rest_request&, completion done) const {
    if (!telemetry_) return done(error_response(error{errc::not_found, "Consumer groups are not served by this hub."}));
    if (r.kind == route_kind::consumer_groups) {
        json::array a;
        for (auto& g : telemetry_->consumer_groups()) a.push_back(group_json(g));
        json::object o;
        o["value"] = std::move(a);
        return done(ok_json(200, o));
    }
    const std::string& name = r.lock_token;
    switch (r.method) {
    case http_method::get:
        for (auto& g : telemetry_->consumer_groups())
            if (g.name == name || (telemetry_->has_consumer_group(name) && iequals(g.name, name)))
                return done(ok_json(200, group_json(g)));
        return done(error_response(error{errc::not_found, "The consumer group '" + name + "' does not exist."}));
    case http_method::put:
        return telemetry_->create_consumer_group(name, [done](result<service::telemetry_service::consumer_group> g) {
            if (!g) return done(error_response(g.error()));
            done(ok_json(200, group_json(*g)));
        });
    case http_method::delete_:
        return telemetry_->delete_consumer_group(name, [done](result<void> res) {
            if (!res) return done(error_response(res.error()));
            rest_response out;
            out.status = 200;
            done(out);
        });
    default:
        return done(error_response(error{errc::method_not_allowed, "Use GET, PUT or DELETE on a consumer group."}));
    }
}

}  // namespace twinhub::http
