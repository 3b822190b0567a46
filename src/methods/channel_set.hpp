// Several protocol heads behind one method_channel: a request goes to the first head on which the
// identity is connected and subscribed to methods (MQTT, then AMQP, as registered).
// Thread safety: add() before serving; deliver() from any thread (as each channel allows).
#pragma once

#include "methods/method_router.hpp"

#include <vector>

namespace twinhub::methods {

class channel_set final : public method_channel {
public:
    void add(method_channel* c) { channels_.push_back(c); }

    result<std::uint64_t> deliver(const identity_key& id, method_call call) override {
        result<std::uint64_t> r = error{errc::device_not_online, "No protocol head serves direct methods."};
        for (auto* c : channels_) {
            r = c->deliver(id, call);
            if (r) return r;
        }
        return r;
    }

private:
    std::vector<method_channel*> channels_;
};

}  // namespace twinhub::methods
