#include "server/remote_methods.hpp"

#include "common/log.hpp"
#include "methods/method_invocation.hpp"

namespace twinhub::server {
namespace {
// Set while this node invokes a call another node forwarded: its delivery must stay local (no
// forwarding back and forth between nodes that disagree for a moment on who holds the session).
thread_local bool forwarded_invoke = false;
// Forwarded calls' connection numbers, apart from the heads' (which count from 1).
constexpr std::uint64_t remote_connection_bit = std::uint64_t{1} << 62;
}  // namespace

remote_methods::remote_methods(store::cluster_link& link, methods::method_router& router) : link_(link), router_(router) {
    link_.set_method_handlers([this](store::cluster_link::method_call c) { on_call(std::move(c)); },
                              [this](store::cluster_link::method_result r) { on_result(std::move(r)); });
}

remote_methods::~remote_methods() { link_.set_method_handlers({}, {}); }

result<std::uint64_t> remote_methods::deliver(const identity_key& id, methods::method_call call) {
    if (forwarded_invoke) return error{errc::device_not_online, "The device is not connected to this node."};
    auto node = link_.node_of(id);
    if (node.empty()) return error{errc::device_not_online, "The device is not connected to any node."};
    const std::uint64_t conn = remote_connection_bit | next_++;
    link_.send_method_call(node, {link_.self(), id, std::move(call.method_name), std::move(call.rid),
                                  std::move(call.payload), conn});
    return conn;
}

void remote_methods::on_call(store::cluster_link::method_call c) {
    methods::invoke_options o;
    // The caller's router times the call out; this one only bounds how long it keeps it.
    o.response_timeout = methods::max_response_timeout;
    o.connect_timeout = std::chrono::milliseconds(0);
    auto target = c.target;
    auto method = c.method;
    auto payload = c.payload;
    forwarded_invoke = true;
    router_.invoke(std::move(target), std::move(method), std::move(payload), o,
                   [&link = link_, c = std::move(c)](result<methods::method_response> r) {
                       store::cluster_link::method_result m;
                       m.target = c.target;
                       m.rid = c.rid;
                       m.connection = c.connection;
                       if (r) {
                           m.status = r->status;
                           m.payload = std::move(r->payload);
                       } else {
                           m.delivered = false;
                       }
                       link.send_method_result(c.origin, std::move(m));
                   });
    forwarded_invoke = false;
}

void remote_methods::on_result(store::cluster_link::method_result r) {
    if (r.delivered) router_.on_response(r.target, r.rid, r.status, r.payload);
    else router_.on_connection_gone(r.target, r.connection);
}

}  // namespace twinhub::server
