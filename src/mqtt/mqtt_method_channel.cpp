#include "mqtt/mqtt_method_channel.hpp"

#include "mqtt/mqtt_server.hpp"

namespace twinhub::mqtt {

mqtt_method_channel::mqtt_method_channel(methods::method_router& router, mqtt_server& mqtt) : router_(router), mqtt_(mqtt) {
    router_.set_channel(this);
    mqtt_.set_method_response_handler(this);
}

mqtt_method_channel::~mqtt_method_channel() {
    mqtt_.set_method_response_handler(nullptr);
    router_.set_channel(nullptr);
}

result<std::uint64_t> mqtt_method_channel::deliver(const store::identity_key& id, methods::method_call call) {
    return mqtt_.send_method_request(id, method_request{std::move(call.method_name), std::move(call.rid),
                                                              std::move(call.payload)});
}

void mqtt_method_channel::on_method_response(const store::identity_key& id, const std::string& rid, int status,
                                             const std::string& payload) {
    router_.on_response(id, rid, status, payload);
}

void mqtt_method_channel::on_methods_ready(const store::identity_key& id) { router_.on_methods_ready(id); }

void mqtt_method_channel::on_methods_gone(const store::identity_key& id, std::uint64_t connection) {
    router_.on_connection_gone(id, connection);
}

}  // namespace twinhub::mqtt
