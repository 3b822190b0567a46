// The write pipeline alone, over the memory store and a toy target (no registry, no twins): commit
// order, group completion, failure epochs, inline completion of a closed store, waiting for idle.
#include "service/write_pipeline.hpp"

#include "common/log.hpp"
#include "store/memory_store.hpp"

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace twinhub::service {
namespace {

struct toy_entry : write_pipeline::entry_state {
    int committed = 0;
    std::optional<int> head;
};

// The domain state: named entries holding one int. Every call is made under `mu`.
class toy_target final : public write_pipeline::target {
public:
    std::shared_mutex mu;
    std::map<std::string, toy_entry, std::less<>> entries;
    bool lose_entries = false;  // entry() finds nothing: the invariant the pipeline checks
    int resets = 0, settles = 0;

    write_pipeline::entry_state* entry(std::string_view key) override {
        if (lose_entries) return nullptr;
        auto it = entries.find(key);
        return it == entries.end() ? nullptr : &it->second;
    }
    void reset_heads(std::string_view key, write_pipeline::entry_state& e) override {
        ++resets;
        static_cast<toy_entry&>(e).head.reset();
    }
    void settle(std::string_view key, write_pipeline::entry_state& e) override {
        ++settles;
        static_cast<toy_entry&>(e).head.reset();
    }
};

store::write_batch ok_batch(int i) {
    store::write_batch b;
    b.put_setting("k", std::to_string(i));
    return b;
}

// Fails its condition: the device does not exist.
store::write_batch failing_batch() {
    registry::device_identity d;
    d.device_id = "ghost";
    store::write_batch b;
    b.put_device(d, store::expect::present());
    return b;
}

class write_pipeline_test : public ::testing::Test {
protected:
    void SetUp() override { log::set_level(log::level::error); }
    void TearDown() override {
        store_->close();
        pipeline_.reset();
    }

    // Takes the lock, as the services do, and submits.
    void write(const std::string& key, store::write_batch b, int value, std::promise<result<void>>* done = nullptr) {
        after_unlock after;
        std::unique_lock lock(target_.mu);
        write_locked(after, key, std::move(b), value, done);
    }
    // With target_.mu held: sets the head, submits, and records apply/finish.
    void write_locked(after_unlock& after, const std::string& key, store::write_batch b, int value,
                      std::promise<result<void>>* done = nullptr) {
        toy_entry& e = target_.entries[key];
        e.head = value;
        pipeline_->submit(
            e, key, std::move(b),
            [this, &e, value] {
                e.committed = value;
                std::lock_guard l(m_);
                events_.push_back("apply " + std::to_string(value));
            },
            [this, value, done](result<void> r) {
                {
                    std::lock_guard l(m_);
                    events_.push_back("finish " + std::to_string(value) + (r ? "" : " failed"));
                    results_[value] = r;
                }
                if (done) done->set_value(r);
            },
            after);
    }
    std::vector<std::string> events() {
        std::lock_guard l(m_);
        return events_;
    }

    std::unique_ptr<store::store> store_ = store::make_memory_store();
    toy_target target_;
    std::unique_ptr<write_pipeline> pipeline_ = std::make_unique<write_pipeline>(*store_, target_.mu, target_);
    std::mutex m_;
    std::vector<std::string> events_;
    std::map<int, result<void>> results_;
};

TEST_F(write_pipeline_test, writes_apply_and_finish_in_commit_order_and_the_entry_settles) {
    constexpr int n = 200;
    for (int i = 0; i < n - 1; ++i) write("a", ok_batch(i), i);
    std::promise<result<void>> last;
    write("a", ok_batch(n - 1), n - 1, &last);
    ASSERT_TRUE(last.get_future().get());
    pipeline_->wait_idle();

    std::vector<int> applied, finished;
    for (auto& ev : events()) {
        if (ev.rfind("apply ", 0) == 0) applied.push_back(std::stoi(ev.substr(6)));
        if (ev.rfind("finish ", 0) == 0) finished.push_back(std::stoi(ev.substr(7)));
    }
    std::vector<int> want(n);
    for (int i = 0; i < n; ++i) want[i] = i;
    EXPECT_EQ(applied, want);
    EXPECT_EQ(finished, want);
    std::shared_lock lock(target_.mu);
    const toy_entry& e = target_.entries.at("a");
    EXPECT_EQ(e.in_flight, 0u);
    EXPECT_EQ(e.epoch, 0u);
    EXPECT_EQ(e.committed, n - 1);
    EXPECT_FALSE(e.head);
    EXPECT_GE(target_.settles, 1);
    EXPECT_EQ(target_.resets, 0);
}

TEST_F(write_pipeline_test, a_group_is_applied_under_one_lock_before_its_handlers_run) {
    // Submitted under one lock hold: the store queues them while the first completion waits for
    // the lock, so they complete in few groups, each applied entirely before its first handler.
    constexpr int n = 100;
    std::promise<result<void>> last;
    {
        after_unlock after;
        std::unique_lock lock(target_.mu);
        for (int i = 0; i < n - 1; ++i) write_locked(after, "k" + std::to_string(i % 7), ok_batch(i), i);
        write_locked(after, "k0", ok_batch(n - 1), n - 1, &last);
    }
    ASSERT_TRUE(last.get_future().get());
    pipeline_->wait_idle();
    // A handler followed by an apply starts a new group: count the groups.
    auto ev = events();
    ASSERT_EQ(ev.size(), 2u * n);
    int groups = 1;
    for (std::size_t i = 1; i < ev.size(); ++i)
        if (ev[i].rfind("apply ", 0) == 0 && ev[i - 1].rfind("finish ", 0) == 0) ++groups;
    EXPECT_LT(groups, n) << "every write completed on its own: no group completion";
    EXPECT_EQ(ev.front(), "apply 0");
}

TEST_F(write_pipeline_test, a_failure_resets_the_heads_and_a_later_condition_failure_becomes_storage_error) {
    std::promise<result<void>> first, second, third;
    {
        // Both accepted before the first completes (the completion needs the lock we hold).
        after_unlock after;
        std::unique_lock lock(target_.mu);
        write_locked(after, "a", failing_batch(), 1, &first);
        write_locked(after, "a", failing_batch(), 2, &second);
    }
    auto r1 = first.get_future().get();
    auto r2 = second.get_future().get();
    ASSERT_FALSE(r1);
    EXPECT_EQ(r1.error().code, errc::device_not_found);  // the store's error, as it is
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code, errc::storage_error);  // failed only because the first one did
    EXPECT_NE(r2.error().message.find("earlier write"), std::string::npos);
    {
        std::shared_lock lock(target_.mu);
        EXPECT_EQ(target_.entries.at("a").epoch, 1u);
        EXPECT_EQ(target_.resets, 1);
        EXPECT_FALSE(target_.entries.at("a").head);
    }
    // A new epoch: the next failure is reported as the store's error again, a success applies.
    write("a", failing_batch(), 3, &third);
    auto r3 = third.get_future().get();
    ASSERT_FALSE(r3);
    EXPECT_EQ(r3.error().code, errc::device_not_found);
    std::promise<result<void>> fourth;
    write("a", ok_batch(4), 4, &fourth);
    EXPECT_TRUE(fourth.get_future().get());
    std::shared_lock lock(target_.mu);
    EXPECT_EQ(target_.entries.at("a").epoch, 2u);
    EXPECT_EQ(target_.entries.at("a").committed, 4);
    EXPECT_EQ(target_.entries.at("a").in_flight, 0u);
}

TEST_F(write_pipeline_test, failures_of_another_entry_do_not_touch_this_one) {
    std::promise<result<void>> bad, good;
    write("a", failing_batch(), 1, &bad);
    write("b", ok_batch(2), 2, &good);
    EXPECT_FALSE(bad.get_future().get());
    EXPECT_TRUE(good.get_future().get());
    pipeline_->wait_idle();
    std::shared_lock lock(target_.mu);
    EXPECT_EQ(target_.entries.at("a").epoch, 1u);
    EXPECT_EQ(target_.entries.at("b").epoch, 0u);
    EXPECT_EQ(target_.entries.at("b").committed, 2);
}

TEST_F(write_pipeline_test, a_closed_store_completes_after_the_lock_is_released) {
    store_->close();
    bool finished = false;
    bool lock_free_in_handler = false;
    {
        after_unlock after;
        std::unique_lock lock(target_.mu);
        toy_entry& e = target_.entries["a"];
        pipeline_->submit(
            e, "a", ok_batch(1), [] { FAIL() << "applied a write the store refused"; },
            [&](result<void> r) {
                finished = true;
                ASSERT_FALSE(r);
                EXPECT_EQ(r.error().code, errc::shutting_down);
                lock_free_in_handler = target_.mu.try_lock();
                if (lock_free_in_handler) target_.mu.unlock();
            },
            after);
        EXPECT_FALSE(finished) << "completed inline, under the caller's lock";
        // A plain commit under the lock is deferred the same way.
        pipeline_->commit_plain(ok_batch(2), [&](result<void> r) { EXPECT_FALSE(r); }, &after);
        EXPECT_EQ(after.fns.size(), 2u);
    }
    EXPECT_TRUE(finished);
    EXPECT_TRUE(lock_free_in_handler);
    EXPECT_EQ(target_.entries.at("a").in_flight, 0u);
    pipeline_->wait_idle();  // returns: both completions were counted down
}

TEST_F(write_pipeline_test, plain_commits_finish_in_commit_order_with_entry_writes) {
    std::promise<result<void>> last;
    for (int i = 0; i < 50; ++i) {
        if (i % 2) {
            write("a", ok_batch(i), i, i == 49 ? &last : nullptr);
        } else {
            pipeline_->commit_plain(ok_batch(i), [this, i](result<void> r) {
                EXPECT_TRUE(r);
                std::lock_guard l(m_);
                events_.push_back("finish " + std::to_string(i));
            });
        }
    }
    ASSERT_TRUE(last.get_future().get());
    pipeline_->wait_idle();
    std::vector<int> finished;
    for (auto& ev : events())
        if (ev.rfind("finish ", 0) == 0) finished.push_back(std::stoi(ev.substr(7)));
    std::vector<int> want(50);
    for (int i = 0; i < 50; ++i) want[i] = i;
    EXPECT_EQ(finished, want);
}

TEST_F(write_pipeline_test, a_completion_without_its_entry_is_reported_as_internal) {
    std::promise<result<void>> done;
    {
        after_unlock after;
        std::unique_lock lock(target_.mu);
        write_locked(after, "a", ok_batch(1), 1, &done);
        target_.lose_entries = true;  // break the invariant before the completion runs
    }
    auto r = done.get_future().get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::internal);
    EXPECT_TRUE(events().front() == "finish 1 failed");
}

TEST_F(write_pipeline_test, wait_idle_waits_for_the_handlers_still_running) {
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> handler_returned{false};
    {
        after_unlock after;
        std::unique_lock lock(target_.mu);
        toy_entry& e = target_.entries["a"];
        pipeline_->submit(
            e, "a", ok_batch(1), [] {},
            [&, released](result<void>) {
                released.wait();
                handler_returned = true;
            },
            after);
    }
    std::atomic<bool> idle{false};
    std::thread waiter([&] {
        pipeline_->wait_idle();
        idle = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(idle) << "wait_idle returned while a handler was running";
    release.set_value();
    waiter.join();
    EXPECT_TRUE(idle);
    EXPECT_TRUE(handler_returned);
}

}  // namespace
}  // namespace twinhub::service
