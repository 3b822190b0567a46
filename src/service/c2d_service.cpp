// The C2D message service: see c2d_service.hpp for the contract, c2d_service_impl.hpp for the
// layout; the feedback queue's members are in c2d_feedback.cpp.
#include "service/c2d_service_impl.hpp"
#include "service/metrics.hpp"

namespace twinhub::service {

using namespace c2d_detail;

std::string feedback_batch_json(const std::vector<store::feedback_record>& records) {
    boost::json::array a;
    for (auto& r : records) {
        boost::json::object o;
        o["originalMessageId"] = r.original_message_id;
        o["description"] = r.description;
        o["deviceGenerationId"] = r.device_generation_id;
        o["deviceId"] = r.device_id;
        if (!r.module_id.empty()) o["moduleId"] = r.module_id;
        o["enqueuedTimeUtc"] = format_time(time_point{std::chrono::nanoseconds{r.enqueued_time_ns}});
        o["statusCode"] = r.status_code;
        a.push_back(std::move(o));
    }
    return boost::json::serialize(a);
}

result<store::c2d_ack> parse_c2d_ack(std::string_view s) {
    auto eq = [&](std::string_view w) {
        if (s.size() != w.size()) return false;
        for (std::size_t i = 0; i < s.size(); ++i)
            if (std::tolower(static_cast<unsigned char>(s[i])) != w[i]) return false;
        return true;
    };
    if (eq("none")) return store::c2d_ack::none;
    if (eq("positive")) return store::c2d_ack::positive;
    if (eq("negative")) return store::c2d_ack::negative;
    if (eq("full")) return store::c2d_ack::full;
    return error{errc::invalid_argument,
                 "iothub-ack must be one of none, positive, negative, full; got '" + std::string(s) + "'."};
}

const char* to_string(store::c2d_ack a) noexcept {
    switch (a) {
    case store::c2d_ack::none: return "none";
    case store::c2d_ack::positive: return "positive";
    case store::c2d_ack::negative: return "negative";
    case store::c2d_ack::full: return "full";
    }
    return "none";
}

result<std::unique_ptr<c2d_service>> c2d_service::open(store::store& s, hub_service& hub, c2d_options opts) {
    auto p = std::make_unique<impl>(s, hub, std::move(opts));
    // Several nodes: other nodes' C2D writes are applied from before the load on (c2d_remote.cpp);
    // the load and its merge hold mu_, so a change that arrives meanwhile is applied after them.
    p->cluster_ = dynamic_cast<store::cluster_link*>(&s);
    if (p->cluster_)
        p->cluster_->set_c2d_handler([raw = p.get()](std::vector<store::cluster_link::c2d_change>& c) { raw->apply_remote(c); });
    std::size_t loaded = 0, loaded_feedback = 0;
    {
        std::lock_guard l(p->mu_);
        auto state = s.load_c2d();
        if (!state) {
            if (p->cluster_) {
                p->mu_.unlock();
                p->cluster_->set_c2d_handler({});
                p->mu_.lock();
            }
            return state.error();
        }
        for (auto& m : state->messages) {
            auto& q = p->queues_[m.target];
            q.messages.emplace(m.sequence_number, impl::entry{m, {}, {}, p->generation_of(m.target)});
        }
        for (auto& f : state->feedback) p->feedback_.emplace(f.sequence_number, impl::fb_entry{f, {}});
        p->next_seq_ = state->next_message_sequence;
        p->next_fb_seq_ = state->next_feedback_sequence;
        loaded = state->messages.size(), loaded_feedback = state->feedback.size();
    }
    hub.add_observer(p.get());
    if (p->opts_.sweep_interval.count() > 0) p->sweeper_ = std::thread([raw = p.get()] { raw->sweep_loop(); });
    log::info("c2d.opened", {{"messages", loaded}, {"feedback", loaded_feedback}});
    return std::unique_ptr<c2d_service>(new c2d_service(std::move(p)));
}

c2d_service::c2d_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

c2d_service::~c2d_service() {
    if (impl_->cluster_) impl_->cluster_->set_c2d_handler({});  // waits for a call that is running
    {
        std::lock_guard l(impl_->mu_);
        impl_->stopping_ = true;
    }
    impl_->sweep_cv_.notify_all();
    if (impl_->sweeper_.joinable()) impl_->sweeper_.join();
    std::unique_lock l(impl_->out_mu_);
    impl_->out_cv_.wait(l, [&] { return impl_->outstanding_ == 0; });
}

void c2d_service::send(store::identity_key target, c2d_outgoing m, handler<std::uint64_t> done) {
    auto& p = *impl_;
    if (size_of(m) > p.opts_.max_message_size)
        return done(error{errc::message_too_large, "The message is " + std::to_string(size_of(m)) +
                                                       " bytes; cloud-to-device messages may be at most " +
                                                       std::to_string(p.opts_.max_message_size) + " bytes."});
    const time_point t = p.clock_now();
    time_point expiry = t + p.opts_.default_ttl;
    if (m.expiry) {
        if (*m.expiry <= t) return done(error{errc::invalid_argument, "The message's expiry time is in the past."});
        if (*m.expiry > t + p.opts_.max_ttl)
            return done(error{errc::invalid_argument, "The message's time to live exceeds the maximum of " +
                                                          std::to_string(p.opts_.max_ttl.count() / 3600) + " hours."});
        expiry = *m.expiry;
    }
    if (auto c = hub_identity_exists(target); !c) return done(c.error());
    std::string generation = p.generation_of(target);

    store::c2d_message msg;
    msg.target = target;
    msg.body = std::move(m.body);
    msg.message_id = std::move(m.message_id);
    msg.correlation_id = std::move(m.correlation_id);
    msg.user_id = std::move(m.user_id);
    msg.content_type = std::move(m.content_type);
    msg.content_encoding = std::move(m.content_encoding);
    msg.enqueued_time_ns = ns_of(t);
    msg.expiry_time_ns = ns_of(expiry);
    msg.ack = m.ack;
    msg.application_properties = std::move(m.application_properties);

    impl::after a;
    {
        std::lock_guard l(p.mu_);
        if (p.stopping_) return done(error{errc::shutting_down, "The hub is shutting down."});
        auto& q = p.queues_[target];
        if (q.messages.size() + q.enqueuing >= p.opts_.max_queue_depth)
            return done(error{errc::device_queue_full,
                              "The cloud-to-device queue of '" + target.device_id +
                                  (target.module_id.empty() ? "" : "/" + target.module_id) + "' holds its maximum of " +
                                  std::to_string(p.opts_.max_queue_depth) + " messages."});
        ++q.enqueuing;
        // A store shared by several nodes numbers the message inside its commit (store.hpp).
        auto assigned = p.st_.allocates_sequence_numbers() ? std::make_shared<std::uint64_t>(0) : nullptr;
        msg.sequence_number = assigned ? 0 : p.next_seq_++;
        store::write_batch b;
        b.enqueue_c2d(msg, assigned);
        a.commits.emplace_back(std::move(b), [&p, msg = std::move(msg), assigned, generation = std::move(generation),
                                              done = std::move(done)](result<void> r) mutable {
            if (assigned) msg.sequence_number = *assigned;
            impl::after a2;
            {
                std::lock_guard l(p.mu_);
                auto& q = p.queues_[msg.target];
                --q.enqueuing;
                if (r) {
                    q.messages.emplace(msg.sequence_number, impl::entry{msg, {}, {}, generation});
                    p.notify_identity(msg.target, a2);
                } else if (q.messages.empty() && q.enqueuing == 0) {
                    p.queues_.erase(msg.target);
                }
            }
            p.run(a2);
            if (!r) return done(r.error());
            metrics().c2d_commands_sent.inc(), metrics().quota_messages.inc(quota_blocks(msg.body.size(), 4096));
            done(msg.sequence_number);
        });
    }
    p.run(a);
}

result<void> c2d_service::hub_identity_exists(const store::identity_key& id) const {
    auto c = impl_->hub_.credentials(id);
    if (!c) return c.error();
    return {};
}

void c2d_service::purge(store::identity_key target, handler<std::size_t> done) {
    auto& p = *impl_;
    if (auto c = hub_identity_exists(target); !c) return done(c.error());
    store::write_batch b;
    std::size_t n = 0;
    {
        std::lock_guard l(p.mu_);
        auto it = p.queues_.find(target);
        if (it != p.queues_.end()) {
            for (auto& [seq, e] : it->second.messages) {
                if (!e.lock.empty()) p.locks_.erase(e.lock);
                b.delete_c2d(seq);
                ++n;
            }
            it->second.messages.clear();
            if (it->second.enqueuing == 0) p.queues_.erase(it);
        }
    }
    if (b.empty()) return done(std::size_t{0});
    impl::after a;
    a.commits.emplace_back(std::move(b), [n, done = std::move(done)](result<void> r) {
        if (!r) return done(r.error());
        done(n);
    });
    p.run(a);
}

std::size_t c2d_service::pending_count(const store::identity_key& target) const {
    std::lock_guard l(impl_->mu_);
    auto it = impl_->queues_.find(target);
    return it == impl_->queues_.end() ? 0 : it->second.messages.size();
}

c2d_service::subscription c2d_service::subscribe(store::identity_key id, std::function<void()> notify) {
    auto fn = std::make_shared<std::function<void()>>(std::move(notify));
    bool now_available = false;
    subscription s;
    {
        std::lock_guard l(impl_->mu_);
        s = impl_->next_sub_++;
        if (auto it = impl_->queues_.find(id); it != impl_->queues_.end())
            for (auto& [_, e] : it->second.messages)
                if (e.lock.empty()) {
                    now_available = true;
                    break;
                }
        impl_->subscribers_.emplace(s, impl::subscriber{std::move(id), fn});
    }
    if (now_available) (*fn)();
    return s;
}

void c2d_service::unsubscribe(subscription s) {
    std::lock_guard l(impl_->mu_);
    impl_->subscribers_.erase(s);
}

result<std::optional<c2d_delivery>> c2d_service::lock_next(const store::identity_key& id,
                                                            std::optional<std::chrono::milliseconds> lock_duration) {
    auto& p = *impl_;
    impl::after a;
    std::optional<c2d_delivery> out;
    {
        std::lock_guard l(p.mu_);
        if (p.stopping_) return error{errc::shutting_down, "The hub is shutting down."};
        auto qit = p.queues_.find(id);
        if (qit != p.queues_.end()) {
            const time_point t = p.clock_now();
            std::vector<std::uint64_t> expired;
            for (auto& [seq, e] : qit->second.messages) {
                if (!e.lock.empty()) continue;
                if (e.m.expiry_time_ns <= ns_of(t)) {
                    expired.push_back(seq);
                    continue;
                }
                e.lock = new_lock_token();
                if (lock_duration) e.lock_expiry = t + *lock_duration;
                p.locks_.emplace(e.lock, impl::lock_ref{id, seq});
                out = c2d_delivery{e.m, e.lock, e.lock_expiry};
                break;
            }
            for (auto seq : expired) {
                auto q = p.queues_.find(id);
                if (q == p.queues_.end()) break;
                auto it = q->second.messages.find(seq);
                if (it == q->second.messages.end()) continue;
                p.remove(id, seq, "Expired", "Message expired", wants_negative(it->second.m.ack), a, {});
            }
        }
    }
    p.run(a);
    return out;
}

namespace {
enum class settle { complete, abandon, reject };
}

static void settle_message(c2d_service::impl& p, const store::identity_key& id, std::string_view token, settle how,
                           handler<void> done) {
    c2d_service::impl::after a;
    {
        std::lock_guard l(p.mu_);
        auto lit = p.locks_.find(token);
        if (lit == p.locks_.end() || !(lit->second.id == id))
            return done(error{errc::message_lock_lost,
                              "The lock token does not name a message locked for this device; it was settled, "
                              "its lock expired, or it belongs to another identity."});
        const std::uint64_t seq = lit->second.seq;
        auto& e = p.queues_[id].messages[seq];
        switch (how) {
        case settle::complete:
            p.remove(id, seq, "Success", "Success", wants_positive(e.m.ack), a, std::move(done));
            break;
        case settle::reject:
            p.remove(id, seq, "Rejected", "Message rejected", wants_negative(e.m.ack), a, std::move(done));
            break;
        case settle::abandon: p.end_delivery(id, e, p.clock_now(), a, std::move(done)); break;
        }
    }
    p.run(a);
}

void c2d_service::complete(const store::identity_key& id, std::string_view lock_token, handler<void> done) {
    settle_message(*impl_, id, lock_token, settle::complete, [done = std::move(done)](result<void> r) {
        if (r) metrics().c2d_commands_egress_complete.inc();
        done(std::move(r));
    });
}
void c2d_service::abandon(const store::identity_key& id, std::string_view lock_token, handler<void> done) {
    settle_message(*impl_, id, lock_token, settle::abandon, std::move(done));
}
void c2d_service::reject(const store::identity_key& id, std::string_view lock_token, handler<void> done) {
    settle_message(*impl_, id, lock_token, settle::reject, std::move(done));
}

void c2d_service::sweep() { impl_->sweep(); }

}  // namespace twinhub::service
