// c2d_service: the feedback queue (spec: service-bound feedback, batches locked by a token).
#include "service/c2d_service_impl.hpp"

namespace twinhub::service {

using namespace c2d_detail;

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

}  // namespace twinhub::service
