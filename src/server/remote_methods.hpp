// Direct methods across nodes on one shared store (issue 18 item 2; store/cluster_link.hpp): the
// last method_channel of the hub's channel_set. A call for an identity whose session another node
// holds is forwarded there through the database; that node invokes it on the session with its own
// router and sends the answer back, which completes the call on this node's router. This node's
// router keeps the caller's timeouts, so the error codes are those of one node: 404103 when no node
// holds a session, 504101 when no answer came in time; a session that the holding node no longer
// has when the call arrives fails the call at once with 504101 (it cannot tell whether the device
// got it).
// Thread safety: deliver() from the router (under its lock); handlers on the store's feed thread.
#pragma once

#include "methods/method_router.hpp"
#include "store/cluster_link.hpp"

#include <atomic>
#include <cstdint>

namespace twinhub::server {

class remote_methods final : public methods::method_channel {
public:
    remote_methods(store::cluster_link& link, methods::method_router& router);
    ~remote_methods() override;  // stops the handlers (waits for one running)

    result<std::uint64_t> deliver(const identity_key& id, methods::method_call call) override;

private:
    void on_call(store::cluster_link::method_call c);
    void on_result(store::cluster_link::method_result r);

    store::cluster_link& link_;
    methods::method_router& router_;
    std::atomic<std::uint64_t> next_{1};
};

}  // namespace twinhub::server
