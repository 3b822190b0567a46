// hub_client::impl: packets from the hub (acks, twin answers, desired patches, methods, C2D).
#include "client/hub_client_engine.hpp"

namespace twinhub {

awaitable<void> hub_client::impl::read_loop(std::shared_ptr<client::transport> t, std::uint64_t gen) {
    char buf[16384];
    error why{errc::connection_failed, "the hub closed the connection"};
    for (;;) {
        auto [ec, n] = co_await t->read_some(asio::buffer(buf));
        if (ec) {
            why.message = "connection lost: " + ec.message();
            break;
        }
        if (gen != generation) co_return;
        last_read = steady::now();
        decoder.feed(buf, n);
        bool bad = false;
        for (;;) {
            auto p = decoder.next();
            if (!p) {
                why.message = "malformed packet from the hub: " + p.error().message;
                bad = true;
                break;
            }
            if (!*p) break;
            handle(std::move(**p));
        }
        if (bad) break;
    }
    t->close();
    if (gen == generation) connection_lost(why);
}

void hub_client::impl::handle(mqtt::packet&& p) {
    if (auto* pub = std::get_if<mqtt::publish>(&p)) {
        if (auto c2d = client::parse_c2d_topic(pub->topic, id.device_id, id.module_id)) {
            c2d->body = std::move(pub->payload);
            return deliver_c2d(std::move(*c2d), pub->qos == mqtt::qos::at_least_once, pub->packet_id);
        }
        if (pub->qos == mqtt::qos::at_least_once) send(mqtt::puback{pub->packet_id});
        on_publish(std::move(*pub));
    } else if (auto* a = std::get_if<mqtt::puback>(&p)) {
        complete_ack(a->packet_id, true);
    } else if (auto* u = std::get_if<mqtt::unsuback>(&p)) {
        complete_ack(u->packet_id, true);
    } else if (auto* s = std::get_if<mqtt::suback>(&p)) {
        bool ok = true;
        for (auto rc : s->return_codes) ok = ok && rc != mqtt::suback_return_code::failure;
        complete_ack(s->packet_id, ok);
    }
}

void hub_client::impl::complete_ack(std::uint16_t id_, bool ok) {
    auto it = pending_acks.find(id_);
    if (it == pending_acks.end()) return;
    auto f = std::move(it->second);
    pending_acks.erase(it);
    f(ok);
}

void hub_client::impl::on_publish(mqtt::publish&& pub) {
    if (auto res = iothub::parse_twin_response_topic(pub.topic)) {
        auto it = pending_twin.find(res->rid);
        if (it == pending_twin.end()) return;
        auto f = std::move(it->second);
        pending_twin.erase(it);
        f(twin_answer{res->status, res->version, std::move(pub.payload)});
        return;
    }
    if (auto ver = iothub::parse_desired_patch_topic(pub.topic)) {
        boost::system::error_code ec;
        auto v = boost::json::parse(pub.payload, ec);
        if (ec || !v.is_object()) return;
        auto& patch = v.as_object();
        std::int64_t version = *ver;
        if (const auto* pv = patch.if_contains("$version"); pv && pv->is_int64()) version = pv->as_int64();
        if (desired_cache && version != 0 && version <= desired_version) return;  // already seen (resync)
        if (!desired_cache) desired_cache.emplace();
        twin::merge_patch(*desired_cache, twin::without_read_only_keys(patch));
        if (version) desired_version = version;
        if (!patch.contains("$version")) patch["$version"] = version;
        deliver_patch(std::move(patch));
        return;
    }
    if (auto m = iothub::parse_method_topic(pub.topic)) {
        method_request req;
        req.method_name = m->method_name;
        req.request_id = m->rid;
        boost::system::error_code ec;
        if (!pub.payload.empty()) req.payload = boost::json::parse(pub.payload, ec);
        if (ec) req.payload = boost::json::string(pub.payload);
        method_handler h;
        {
            std::lock_guard lock(mutex);
            auto it = method_handlers.find(req.method_name);
            if (it == method_handlers.end()) it = method_handlers.find("");
            if (it != method_handlers.end()) h = it->second;
        }
        asio::post(cb_ioc, [this, h, req = std::move(req)] {
            method_response res;
            if (!h) {
                res.status = 501;
                res.payload = boost::json::object{{"message", "no handler for method '" + req.method_name + "'"}};
            } else {
                try {
                    res = h(req);
                } catch (const std::exception& e) {
                    res.status = 500;
                    res.payload = boost::json::object{{"message", e.what()}};
                }
            }
            asio::post(ioc, [this, rid = req.request_id, res = std::move(res)] {
                mqtt::publish out;
                out.topic = iothub::method_response_topic(res.status, rid);
                out.payload = boost::json::serialize(res.payload);
                send(out);
            });
        });
    }
}

void hub_client::impl::deliver_c2d(received_c2d_message m, bool qos1, std::uint16_t packet_id) {
    const auto gen = generation;
    asio::post(cb_ioc, [this, gen, qos1, packet_id, m = std::move(m)] {
        c2d_handler h;
        {
            std::lock_guard lock(mutex);
            h = c2d_h;
        }
        if (!h) return;  // unsubscribing: the hub keeps the message
        try {
            h(m);
        } catch (...) {
            return;
        }
        if (!qos1) return;
        asio::post(ioc, [this, gen, packet_id] {
            if (gen == generation && is_connected) send(mqtt::puback{packet_id});
        });
    });
}

awaitable<result<void>> hub_client::impl::unsubscribe(std::string filter) {
    mqtt::unsubscribe u;
    u.packet_id = pid();
    u.filters.push_back(std::move(filter));
    auto id_ = u.packet_id;
    auto ok = co_await await_callback<bool>(
        [&](auto cb) {
            pending_acks[id_] = std::move(cb);
            send(u);
        },
        op_timeout());
    if (!ok) {
        pending_acks.erase(id_);
        co_return error{errc::gateway_timeout, "the hub did not answer UNSUBSCRIBE in time"};
    }
    if (!*ok) co_return lost();
    co_return result<void>{};
}

void hub_client::impl::deliver_patch(boost::json::object patch) {
    std::lock_guard lock(mutex);
    if (desired_handler) {
        asio::post(cb_ioc, [h = desired_handler, patch = std::move(patch)] { h(patch); });
        return;
    }
    patch_queue.push_back(std::move(patch));
    while (patch_queue.size() > 1000) patch_queue.pop_front();
    patch_cv.notify_all();
}

}  // namespace twinhub
