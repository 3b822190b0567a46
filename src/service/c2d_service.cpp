// The C2D message service: see c2d_service.hpp for the contract.
//
// Layout: one mutex guards every queue, the lock table and the feedback queue. Store batches are
// built under it and committed after it is released (a store may complete inline), and so are the
// notifications. A message enters its queue in memory only once its enqueue is durable, so it is
// never delivered before that; a feedback record likewise enters the feedback queue after its
// settlement batch is durable.
#include "service/c2d_service.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace twinhub::service {
namespace {

std::string new_lock_token() {
    // A random (version 4) UUID in its 8-4-4-4-12 form.
    std::string b = random_bytes(16);
    b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[(static_cast<unsigned char>(b[i]) >> 4) & 0xf];
        out += hex[static_cast<unsigned char>(b[i]) & 0xf];
    }
    return out;
}

bool wants_positive(store::c2d_ack a) { return a == store::c2d_ack::positive || a == store::c2d_ack::full; }
bool wants_negative(store::c2d_ack a) { return a == store::c2d_ack::negative || a == store::c2d_ack::full; }

std::int64_t ns_of(time_point t) { return t.time_since_epoch().count(); }

std::size_t size_of(const c2d_outgoing& m) {
    std::size_t n = m.body.size() + m.message_id.size() + m.correlation_id.size() + m.user_id.size() +
                    m.content_type.size() + m.content_encoding.size();
    for (auto& [k, v] : m.application_properties) n += k.size() + v.size();
    return n;
}

}  // namespace

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

struct c2d_service::impl final : change_observer {
    struct entry {
        store::c2d_message m;
        std::string lock;  // empty: available
        std::optional<time_point> lock_expiry;
        std::string generation;  // generation id of the identity it was sent to (see on_identity_revoked)
    };
    struct queue {
        std::map<std::uint64_t, entry> messages;  // by sequence number
        std::size_t enqueuing = 0;                // sends not yet durable
    };
    struct lock_ref {
        store::identity_key id;
        std::uint64_t seq;
    };
    struct fb_entry {
        store::feedback_record r;
        std::string lock;
    };
    struct fb_batch {
        std::vector<std::uint64_t> seqs;
        time_point expiry;
    };
    struct subscriber {
        std::optional<store::identity_key> id;  // nullopt: feedback
        std::shared_ptr<std::function<void()>> notify;
    };

    // Work to do once the mutex is released: store commits and notifications.
    struct after {
        std::vector<std::pair<store::write_batch, store::commit_handler>> commits;
        std::vector<std::shared_ptr<std::function<void()>>> notifications;
    };

    store::store& st_;
    hub_service& hub_;
    c2d_options opts_;

    mutable std::mutex mu_;
    std::map<store::identity_key, queue> queues_;
    std::map<std::string, lock_ref, std::less<>> locks_;
    std::map<std::uint64_t, fb_entry> feedback_;
    std::map<std::string, fb_batch, std::less<>> fb_batches_;
    std::uint64_t next_seq_ = 1;
    std::uint64_t next_fb_seq_ = 1;
    std::map<subscription, subscriber> subscribers_;
    subscription next_sub_ = 1;
    bool stopping_ = false;

    // Store commits in flight; the destructor waits for them.
    std::mutex out_mu_;
    std::condition_variable out_cv_;
    std::size_t outstanding_ = 0;

    std::thread sweeper_;
    std::condition_variable sweep_cv_;

    impl(store::store& s, hub_service& h, c2d_options o) : st_(s), hub_(h), opts_(std::move(o)) {}

    time_point clock_now() const { return opts_.clock ? opts_.clock() : twinhub::now(); }

    void run(after& a) {
        for (auto& [b, h] : a.commits) {
            {
                std::lock_guard l(out_mu_);
                ++outstanding_;
            }
            st_.commit(std::move(b), [this, h = std::move(h)](result<void> r) {
                if (h) h(r);
                std::lock_guard l(out_mu_);
                if (--outstanding_ == 0) out_cv_.notify_all();
            });
        }
        for (auto& n : a.notifications) (*n)();
    }

    // Under mu_.
    void notify_identity(const store::identity_key& id, after& a) {
        for (auto& [_, s] : subscribers_)
            if (s.id && *s.id == id) a.notifications.push_back(s.notify);
    }
    void notify_feedback(after& a) {
        for (auto& [_, s] : subscribers_)
            if (!s.id) a.notifications.push_back(s.notify);
    }

    store::feedback_record make_feedback(const store::c2d_message& m, std::string status, std::string description) {
        store::feedback_record f;
        f.sequence_number = next_fb_seq_++;
        f.original_message_id = m.message_id;
        f.description = std::move(description);
        f.device_id = m.target.device_id;
        f.module_id = m.target.module_id;
        if (auto d = hub_.get_device(m.target.device_id)) f.device_generation_id = d->generation_id;
        f.enqueued_time_ns = ns_of(clock_now());
        f.status_code = std::move(status);
        return f;
    }

    // Under mu_: removes `seq` of `id` from memory (and its lock), queues its delete, and the
    // feedback record (status) when the message asked for it. `finish` runs after the commit.
    void remove(const store::identity_key& id, std::uint64_t seq, const char* status, const char* description,
                bool feedback_wanted, after& a, handler<void> finish) {
        auto qit = queues_.find(id);
        store::write_batch b;
        std::optional<store::feedback_record> fb;
        if (qit != queues_.end()) {
            auto it = qit->second.messages.find(seq);
            if (it != qit->second.messages.end()) {
                if (!it->second.lock.empty()) locks_.erase(it->second.lock);
                if (feedback_wanted) fb = make_feedback(it->second.m, status, description);
                qit->second.messages.erase(it);
            }
            if (qit->second.messages.empty() && qit->second.enqueuing == 0) queues_.erase(qit);
        }
        b.delete_c2d(seq);
        if (fb) b.append_feedback(*fb);
        a.commits.emplace_back(std::move(b), [this, fb, finish = std::move(finish)](result<void> r) {
            if (r && fb) {
                after a2;
                {
                    std::lock_guard l(mu_);
                    feedback_.emplace(fb->sequence_number, fb_entry{*fb, {}});
                    notify_feedback(a2);
                }
                run(a2);
            }
            if (!r) log::warn("c2d.commit_failed", {{"what", "settlement"}, {"code", to_string(r.error().code)}});
            if (finish) finish(r);
        });
    }

    // Under mu_: a delivery of `e` ended without completion (abandon, lock expiry).
    void end_delivery(const store::identity_key& id, entry& e, time_point t, after& a, handler<void> finish) {
        const std::uint64_t seq = e.m.sequence_number;
        if (!e.lock.empty()) locks_.erase(e.lock);
        e.lock.clear();
        e.lock_expiry.reset();
        const std::uint32_t count = e.m.delivery_count + 1;
        if (count >= opts_.max_delivery_count)
            return remove(id, seq, "DeliveryCountExceeded", "Message delivery count exceeded",
                          wants_negative(e.m.ack), a, std::move(finish));
        if (e.m.expiry_time_ns <= ns_of(t))
            return remove(id, seq, "Expired", "Message expired", wants_negative(e.m.ack), a, std::move(finish));
        e.m.delivery_count = count;
        store::write_batch b;
        b.update_c2d_delivery_count(seq, count);
        a.commits.emplace_back(std::move(b), [finish = std::move(finish)](result<void> r) {
            if (finish) finish(r);
        });
        notify_identity(id, a);
    }

    // ---- change_observer: a deleted identity's messages are gone from the store (cascade) ----
    void on_desired_change(const store::identity_key&, const twin::desired_change&) override {}
    void on_credentials_changed(const store::identity_key&) override {}
    void on_policies_changed() override {}
    // Revoked means deleted or disabled. A deleted identity's messages are gone from the store, but
    // the identity may exist again by now (deleted and re-created in one commit group: the hub reports
    // both after the group), with a new generation id. So drop each message whose identity is gone or
    // has another generation than the one it was sent to; a disabled identity keeps its messages.
    // A queue with sends still being enqueued stays (as in purge): their completions decrement
    // `enqueuing`.
    void on_identity_revoked(const store::identity_key& id) override {
        std::lock_guard l(mu_);
        for (auto it = queues_.begin(); it != queues_.end();) {
            auto& [key, q] = *it;
            if (key.device_id != id.device_id || (!id.module_id.empty() && key.module_id != id.module_id)) {
                ++it;
                continue;
            }
            const std::string gen = generation_of(key);
            std::erase_if(q.messages, [&](auto& kv) {
                if (!gen.empty() && kv.second.generation == gen) return false;
                if (!kv.second.lock.empty()) locks_.erase(kv.second.lock);
                return true;
            });
            if (q.messages.empty() && q.enqueuing == 0)
                it = queues_.erase(it);
            else
                ++it;
        }
    }

    // The generation id of the identity as the hub has it committed; empty when it does not exist.
    std::string generation_of(const store::identity_key& id) const {
        if (id.is_module()) {
            auto m = hub_.get_module(id.device_id, id.module_id);
            return m ? m->generation_id : std::string();
        }
        auto d = hub_.get_device(id.device_id);
        return d ? d->generation_id : std::string();
    }

    void sweep_loop() {
        std::unique_lock l(mu_);
        while (!stopping_) {
            sweep_cv_.wait_for(l, opts_.sweep_interval, [&] { return stopping_; });
            if (stopping_) break;
            l.unlock();
            sweep();
            l.lock();
        }
    }

    void sweep() {
        after a;
        {
            std::lock_guard l(mu_);
            if (stopping_) return;
            const time_point t = clock_now();
            const std::int64_t tn = ns_of(t);
            std::vector<std::pair<store::identity_key, std::uint64_t>> expired, lock_ended;
            for (auto& [id, q] : queues_)
                for (auto& [seq, e] : q.messages) {
                    if (!e.lock.empty()) {
                        if (e.lock_expiry && *e.lock_expiry <= t) lock_ended.emplace_back(id, seq);
                    } else if (e.m.expiry_time_ns <= tn) {
                        expired.emplace_back(id, seq);
                    }
                }
            for (auto& [id, seq] : lock_ended) {
                auto qit = queues_.find(id);
                if (qit == queues_.end()) continue;
                auto it = qit->second.messages.find(seq);
                if (it == qit->second.messages.end()) continue;
                end_delivery(id, it->second, t, a, {});
            }
            for (auto& [id, seq] : expired) {
                auto qit = queues_.find(id);
                if (qit == queues_.end()) continue;
                auto it = qit->second.messages.find(seq);
                if (it == qit->second.messages.end()) continue;
                remove(id, seq, "Expired", "Message expired", wants_negative(it->second.m.ack), a, {});
            }
            for (auto& [token, batch] : fb_batches_)
                if (batch.expiry <= t) {
                    for (auto s : batch.seqs)
                        if (auto it = feedback_.find(s); it != feedback_.end()) it->second.lock.clear();
                    notify_feedback(a);
                }
            std::erase_if(fb_batches_, [&](auto& kv) { return kv.second.expiry <= t; });
        }
        run(a);
    }
};

result<std::unique_ptr<c2d_service>> c2d_service::open(store::store& s, hub_service& hub, c2d_options opts) {
    auto state = s.load_c2d();
    if (!state) return state.error();
    auto p = std::make_unique<impl>(s, hub, std::move(opts));
    for (auto& m : state->messages) {
        auto& q = p->queues_[m.target];
        q.messages.emplace(m.sequence_number, impl::entry{m, {}, {}, p->generation_of(m.target)});
    }
    for (auto& f : state->feedback) p->feedback_.emplace(f.sequence_number, impl::fb_entry{f, {}});
    p->next_seq_ = state->next_message_sequence;
    p->next_fb_seq_ = state->next_feedback_sequence;
    hub.add_observer(p.get());
    if (p->opts_.sweep_interval.count() > 0) p->sweeper_ = std::thread([raw = p.get()] { raw->sweep_loop(); });
    log::info("c2d.opened", {{"messages", state->messages.size()}, {"feedback", state->feedback.size()}});
    return std::unique_ptr<c2d_service>(new c2d_service(std::move(p)));
}

c2d_service::c2d_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

c2d_service::~c2d_service() {
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
        msg.sequence_number = p.next_seq_++;
        store::write_batch b;
        b.enqueue_c2d(msg);
        a.commits.emplace_back(std::move(b), [&p, msg = std::move(msg), generation = std::move(generation),
                                              done = std::move(done)](result<void> r) {
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
    settle_message(*impl_, id, lock_token, settle::complete, std::move(done));
}
void c2d_service::abandon(const store::identity_key& id, std::string_view lock_token, handler<void> done) {
    settle_message(*impl_, id, lock_token, settle::abandon, std::move(done));
}
void c2d_service::reject(const store::identity_key& id, std::string_view lock_token, handler<void> done) {
    settle_message(*impl_, id, lock_token, settle::reject, std::move(done));
}

c2d_service::subscription c2d_service::subscribe_feedback(std::function<void()> notify) {
    auto fn = std::make_shared<std::function<void()>>(std::move(notify));
    bool now_available = false;
    subscription s;
    {
        std::lock_guard l(impl_->mu_);
        s = impl_->next_sub_++;
        for (auto& [_, f] : impl_->feedback_)
            if (f.lock.empty()) {
                now_available = true;
                break;
            }
        impl_->subscribers_.emplace(s, impl::subscriber{std::nullopt, fn});
    }
    if (now_available) (*fn)();
    return s;
}

std::optional<feedback_batch> c2d_service::receive_feedback_batch(std::chrono::milliseconds lock_duration,
                                                                  std::size_t max_records) {
    auto& p = *impl_;
    std::lock_guard l(p.mu_);
    const std::size_t limit = std::min(p.opts_.max_feedback_batch, max_records);
    feedback_batch out;
    impl::fb_batch b;
    for (auto& [seq, f] : p.feedback_) {
        if (out.records.size() >= limit) break;
        if (!f.lock.empty()) continue;
        out.records.push_back(f.r);
        b.seqs.push_back(seq);
    }
    if (out.records.empty()) return std::nullopt;
    out.lock_token = new_lock_token();
    for (auto s : b.seqs) p.feedback_[s].lock = out.lock_token;
    b.expiry = p.clock_now() + lock_duration;
    p.fb_batches_.emplace(out.lock_token, std::move(b));
    return out;
}

void c2d_service::complete_feedback(std::string_view lock_token, handler<void> done) {
    auto& p = *impl_;
    impl::after a;
    {
        std::lock_guard l(p.mu_);
        auto it = p.fb_batches_.find(lock_token);
        if (it == p.fb_batches_.end())
            return done(error{errc::message_lock_lost, "The feedback lock token is unknown or its lock expired."});
        store::write_batch b;
        for (auto s : it->second.seqs) {
            p.feedback_.erase(s);
            b.delete_feedback(s);
        }
        p.fb_batches_.erase(it);
        a.commits.emplace_back(std::move(b), [done = std::move(done)](result<void> r) { done(r); });
    }
    p.run(a);
}

result<void> c2d_service::abandon_feedback(std::string_view lock_token) {
    auto& p = *impl_;
    impl::after a;
    {
        std::lock_guard l(p.mu_);
        auto it = p.fb_batches_.find(lock_token);
        if (it == p.fb_batches_.end())
            return error{errc::message_lock_lost, "The feedback lock token is unknown or its lock expired."};
        for (auto s : it->second.seqs)
            if (auto f = p.feedback_.find(s); f != p.feedback_.end()) f->second.lock.clear();
        p.fb_batches_.erase(it);
        p.notify_feedback(a);
    }
    p.run(a);
    return {};
}

std::size_t c2d_service::feedback_count() const {
    std::lock_guard l(impl_->mu_);
    return impl_->feedback_.size();
}

void c2d_service::sweep() { impl_->sweep(); }

}  // namespace twinhub::service
