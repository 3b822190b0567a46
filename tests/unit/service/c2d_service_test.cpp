// c2d_service: per-identity C2D queues (send, lock, complete / abandon / reject, expiry, dead-lettering,
// purge, notifications), the feedback queue and its batch locks, identity deletion, and durability
// over the SQLite store. Time is a fake clock (c2d_options::clock) and the sweeper is off
// (sweep_interval 0): the tests call sweep().
#include "service_test_support.hpp"

#include "service/c2d_service.hpp"
#include "store/sqlite_store.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <regex>
#include <set>

namespace twinhub::service {
namespace {

namespace ts = twinhub::store;
using namespace std::chrono_literals;
using testing::device_request;
using testing::module_request;
using testing::wait_for;

const ts::identity_key dev1{"dev1", ""};
const ts::identity_key dev2{"dev2", ""};
const ts::identity_key mod1{"dev1", "m1"};

// Polls `pred` for up to 5 s (for effects that happen on the store's thread with no handler).
bool eventually(const std::function<bool()>& pred) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}

// A store that forwards to an inner store, except that while hold_enqueues() is on, batches that
// enqueue a C2D message are held back (not yet handed to the inner store) until release(). Lets a
// test keep a send "being enqueued" while other writes (e.g. a device delete) go through.
class gated_store final : public ts::store {
public:
    explicit gated_store(std::unique_ptr<ts::store> inner) : inner_(std::move(inner)) {}

    result<ts::snapshot> load() override { return inner_->load(); }
    result<std::vector<auth::shared_access_policy>> load_policies() override { return inner_->load_policies(); }
    void commit(ts::write_batch batch, ts::commit_handler done) override {
        {
            std::lock_guard l(m_);
            if (hold_ && has_enqueue(batch)) {
                held_.emplace_back(std::move(batch), std::move(done));
                return;
            }
        }
        inner_->commit(std::move(batch), std::move(done));
    }
    result<std::vector<ts::event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                      std::size_t max_count) override {
        return inner_->read_events(partition, from, max_count);
    }
    result<partition_info> event_partition_info(std::uint32_t partition) override {
        return inner_->event_partition_info(partition);
    }
    result<ts::c2d_state> load_c2d() override { return inner_->load_c2d(); }
    void set_change_listener(ts::change_listener l) override { inner_->set_change_listener(std::move(l)); }
    void close() override {
        release();
        inner_->close();
    }

    void hold_enqueues() {
        std::lock_guard l(m_);
        hold_ = true;
    }
    std::size_t held() const {
        std::lock_guard l(m_);
        return held_.size();
    }
    // Stops holding and hands the held batches to the inner store, in order.
    void release() {
        std::vector<std::pair<ts::write_batch, ts::commit_handler>> h;
        {
            std::lock_guard l(m_);
            hold_ = false;
            h.swap(held_);
        }
        for (auto& [b, d] : h) inner_->commit(std::move(b), std::move(d));
    }

    // Parks the store's writer thread inside the completion of an empty batch until unblock(), so
    // that the batches committed meanwhile are applied and completed together as one group.
    void block_writer() {
        auto entered = std::make_shared<std::promise<void>>();
        auto f = entered->get_future();
        auto gate = gate_.get_future().share();
        inner_->commit(ts::write_batch{}, [entered, gate](result<void>) {
            entered->set_value();
            gate.wait();
        });
        f.wait();
    }
    void unblock_writer() { gate_.set_value(); }

private:
    static bool has_enqueue(const ts::write_batch& b) {
        return std::any_of(b.ops().begin(), b.ops().end(), [](const ts::write_batch::op& o) {
            return std::holds_alternative<ts::write_batch::enqueue_c2d_op>(o);
        });
    }

    std::unique_ptr<ts::store> inner_;
    mutable std::mutex m_;
    bool hold_ = false;
    std::vector<std::pair<ts::write_batch, ts::commit_handler>> held_;
    std::promise<void> gate_;
};

// Unsubscribes when it goes out of scope (also when an assertion returns early).
struct scoped_subscription {
    c2d_service& c;
    c2d_service::subscription s;
    ~scoped_subscription() { c.unsubscribe(s); }
};

time_point t0() { return *parse_time("2024-05-01T12:00:00Z"); }

c2d_outgoing msg(std::string body, std::string message_id = {}, ts::c2d_ack ack = ts::c2d_ack::none) {
    c2d_outgoing m;
    m.body = std::move(body);
    m.message_id = std::move(message_id);
    m.ack = ack;
    return m;
}

// A hub over a gated memory store with devices dev1, dev2 and module dev1/m1, and a c2d_service on
// a fake clock (starting at t0) with no sweeper thread. Suites override options() to change limits.
class c2d_fixture : public ::testing::Test {
public:  // the helpers are also taken by address (&c2d_fixture::complete) in the tests
    void SetUp() override {
        log::set_level(log::level::warn);
        now_ns_ = t0().time_since_epoch().count();
        store_ = std::make_unique<gated_store>(ts::make_memory_store());
        auto h = hub_service::open(*store_, {});
        ASSERT_TRUE(h) << h.error().message;
        hub_ = std::move(*h);
        auto d = create_device("dev1");
        ASSERT_TRUE(d) << d.error().message;
        gen1_ = d->generation_id;
        ASSERT_TRUE(create_device("dev2"));
        ASSERT_TRUE(create_module("dev1", "m1"));
        auto c = c2d_service::open(*store_, *hub_, options());
        ASSERT_TRUE(c) << c.error().message;
        c2d_ = std::move(*c);
    }
    void TearDown() override {
        if (store_) store_->release();
        c2d_.reset();
        if (store_) store_->close();
        hub_.reset();
        store_.reset();
    }

    virtual c2d_options options() {
        c2d_options o;
        o.sweep_interval = 0ms;
        o.clock = [this] { return now(); };
        return o;
    }

    time_point now() const { return time_point{std::chrono::nanoseconds{now_ns_.load()}}; }
    void advance(std::chrono::nanoseconds d) { now_ns_ += d.count(); }
    std::int64_t now_ns() const { return now_ns_.load(); }

    result<registry::device_identity> create_device(std::string id) {
        return wait_for<registry::device_identity>(
            [&](auto h) { hub_->create_device(device_request(std::move(id)), h); });
    }
    result<registry::module_identity> create_module(std::string d, std::string m) {
        return wait_for<registry::module_identity>(
            [&](auto h) { hub_->create_module(module_request(std::move(d), std::move(m)), h); });
    }
    result<void> delete_device(std::string id) {
        return wait_for<void>([&](auto h) { hub_->delete_device(std::move(id), "*", h); });
    }
    result<void> delete_module(std::string d, std::string m) {
        return wait_for<void>([&](auto h) { hub_->delete_module(std::move(d), std::move(m), "*", h); });
    }

    result<std::uint64_t> send(const ts::identity_key& id, c2d_outgoing m) {
        return wait_for<std::uint64_t>([&](auto h) { c2d_->send(id, std::move(m), h); });
    }
    std::uint64_t send_ok(const ts::identity_key& id, c2d_outgoing m) {
        auto r = send(id, std::move(m));
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : 0;
    }
    std::optional<c2d_delivery> lock(const ts::identity_key& id,
                                     std::optional<std::chrono::milliseconds> d = std::nullopt) {
        auto r = c2d_->lock_next(id, d);
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : std::nullopt;
    }
    result<void> complete(const ts::identity_key& id, const std::string& token) {
        return wait_for<void>([&](auto h) { c2d_->complete(id, token, h); });
    }
    result<void> abandon(const ts::identity_key& id, const std::string& token) {
        return wait_for<void>([&](auto h) { c2d_->abandon(id, token, h); });
    }
    result<void> reject(const ts::identity_key& id, const std::string& token) {
        return wait_for<void>([&](auto h) { c2d_->reject(id, token, h); });
    }
    result<std::size_t> purge(const ts::identity_key& id) {
        return wait_for<std::size_t>([&](auto h) { c2d_->purge(id, h); });
    }
    result<void> complete_feedback(const std::string& token) {
        return wait_for<void>([&](auto h) { c2d_->complete_feedback(token, h); });
    }
    // Every unlocked feedback record, removed from the queue.
    std::vector<ts::feedback_record> take_feedback() {
        std::vector<ts::feedback_record> out;
        while (auto b = c2d_->receive_feedback_batch(1min)) {
            out.insert(out.end(), b->records.begin(), b->records.end());
            EXPECT_TRUE(complete_feedback(b->lock_token));
        }
        return out;
    }
    // Sends one message, locks it and checks it is the one sent.
    c2d_delivery send_and_lock(const ts::identity_key& id, c2d_outgoing m,
                               std::optional<std::chrono::milliseconds> d = std::nullopt) {
        const auto seq = send_ok(id, std::move(m));
        auto l = lock(id, d);
        EXPECT_TRUE(l);
        if (!l) return {};
        EXPECT_EQ(l->message.sequence_number, seq);
        return *l;
    }

    std::atomic<std::int64_t> now_ns_{0};
    std::unique_ptr<gated_store> store_;
    std::unique_ptr<hub_service> hub_;
    std::unique_ptr<c2d_service> c2d_;
    std::string gen1_;
};

using c2d_send = c2d_fixture;
using c2d_settle = c2d_fixture;
using c2d_expiry = c2d_fixture;
using c2d_lock = c2d_fixture;
using c2d_purge = c2d_fixture;
using c2d_subscribe = c2d_fixture;
using c2d_feedback = c2d_fixture;
using c2d_feedback_batch = c2d_fixture;
using c2d_identity = c2d_fixture;

// ---- send ----

TEST_F(c2d_send, to_an_unknown_device_fails_with_device_not_found) {
    auto r = send({"nope", ""}, msg("x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_not_found);
    auto m = send({"nope", "m1"}, msg("x"));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, errc::device_not_found);
    EXPECT_EQ(c2d_->pending_count({"nope", ""}), 0u);
}

TEST_F(c2d_send, to_an_unknown_module_fails_with_module_not_found) {
    auto r = send({"dev1", "nope"}, msg("x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::module_not_found);
    EXPECT_EQ(c2d_->pending_count({"dev1", "nope"}), 0u);
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
}

TEST_F(c2d_send, a_sent_message_is_locked_with_its_properties_a_lock_token_and_delivery_count_0) {
    c2d_outgoing m = msg(std::string("hello \x01\x00 bytes", 14), "mid-1", ts::c2d_ack::full);  // binary body
    m.correlation_id = "cid-1";
    m.user_id = "uid-1";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.application_properties = {{"zeta", "1"}, {"alpha", "2"}, {"zeta", "3"}};
    const auto seq = send_ok(dev1, m);
    EXPECT_GT(seq, 0u);
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);

    auto l = lock(dev1);
    ASSERT_TRUE(l);
    const auto& got = l->message;
    EXPECT_EQ(got.sequence_number, seq);
    EXPECT_EQ(got.target, dev1);
    EXPECT_EQ(got.body, m.body);
    EXPECT_EQ(got.message_id, "mid-1");
    EXPECT_EQ(got.correlation_id, "cid-1");
    EXPECT_EQ(got.user_id, "uid-1");
    EXPECT_EQ(got.content_type, "application/json");
    EXPECT_EQ(got.content_encoding, "utf-8");
    EXPECT_EQ(got.ack, ts::c2d_ack::full);
    EXPECT_EQ(got.application_properties, m.application_properties);  // order and duplicates kept
    EXPECT_EQ(got.enqueued_time_ns, now_ns());
    EXPECT_EQ(got.expiry_time_ns, (now() + std::chrono::seconds(3600)).time_since_epoch().count());  // default_ttl
    EXPECT_EQ(got.delivery_count, 0u);
    EXPECT_TRUE(std::regex_match(l->lock_token,
                                 std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << l->lock_token;
    EXPECT_FALSE(l->lock_expiry);  // no lock duration: held until settled
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);  // locked messages still count
}

TEST_F(c2d_send, an_explicit_expiry_is_kept_and_a_lock_duration_sets_the_lock_expiry) {
    auto m = msg("x");
    m.expiry = now() + 10min;
    send_ok(dev1, m);
    auto l = lock(dev1, 30s);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.expiry_time_ns, (now() + 10min).time_since_epoch().count());
    ASSERT_TRUE(l->lock_expiry);
    EXPECT_EQ(*l->lock_expiry, now() + 30s);
}

TEST_F(c2d_send, sequence_numbers_increase_and_messages_are_delivered_oldest_first_never_twice_while_locked) {
    const auto a = send_ok(dev1, msg("a"));
    const auto b = send_ok(dev1, msg("b"));
    const auto c = send_ok(dev2, msg("c"));
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);

    auto la = lock(dev1);
    ASSERT_TRUE(la);
    EXPECT_EQ(la->message.body, "a");
    auto lb = lock(dev1);
    ASSERT_TRUE(lb);
    EXPECT_EQ(lb->message.body, "b");
    EXPECT_NE(la->lock_token, lb->lock_token);
    EXPECT_FALSE(lock(dev1));  // both locked: nothing is delivered twice
    EXPECT_FALSE(lock(dev1));
    EXPECT_EQ(c2d_->pending_count(dev1), 2u);
    auto lc = lock(dev2);
    ASSERT_TRUE(lc);
    EXPECT_EQ(lc->message.body, "c");
}

TEST_F(c2d_send, queues_are_per_identity_and_a_module_has_its_own) {
    send_ok(mod1, msg("for the module"));
    EXPECT_EQ(c2d_->pending_count(mod1), 1u);
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_FALSE(lock(dev1));
    EXPECT_FALSE(lock(dev2));
    auto l = lock(mod1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.target, mod1);
    EXPECT_EQ(l->message.body, "for the module");
}

class c2d_limits : public c2d_fixture {
protected:
    c2d_options options() override {
        auto o = c2d_fixture::options();
        o.max_queue_depth = 3;
        o.max_message_size = 100;
        o.default_ttl = 60s;
        o.max_ttl = 1h;
        return o;
    }
};

TEST_F(c2d_limits, a_full_queue_fails_with_device_queue_full_at_once_locked_messages_included) {
    for (int i = 0; i < 3; ++i) send_ok(dev1, msg("m" + std::to_string(i)));
    auto l = lock(dev1);
    ASSERT_TRUE(l);

    bool called = false;
    c2d_->send(dev1, msg("one too many"), [&](result<std::uint64_t> r) {
        called = true;
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, errc::device_queue_full);
    });
    EXPECT_TRUE(called);  // a failure found before the store is involved: on the calling thread
    EXPECT_EQ(c2d_->pending_count(dev1), 3u);

    send_ok(mod1, msg("other queues are not affected"));
    send_ok(dev2, msg("nor here"));

    ASSERT_TRUE(complete(dev1, l->lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 2u);
    send_ok(dev1, msg("room again"));
    auto again = send(dev1, msg("full again"));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::device_queue_full);
}

TEST_F(c2d_limits, sends_being_enqueued_count_toward_the_depth_and_are_not_delivered_before_they_are_durable) {
    store_->hold_enqueues();
    std::vector<std::shared_ptr<std::promise<result<std::uint64_t>>>> ps;
    for (int i = 0; i < 3; ++i) {
        auto p = std::make_shared<std::promise<result<std::uint64_t>>>();
        c2d_->send(dev1, msg("m" + std::to_string(i)), [p](result<std::uint64_t> r) { p->set_value(r); });
        ps.push_back(p);
    }
    EXPECT_EQ(store_->held(), 3u);
    auto full = send(dev1, msg("fourth"));
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, errc::device_queue_full);
    EXPECT_FALSE(lock(dev1));  // not durable yet: not delivered
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);

    store_->release();
    std::vector<std::uint64_t> seqs;
    for (auto& p : ps) {
        auto f = p->get_future();
        ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
        auto r = f.get();
        ASSERT_TRUE(r) << r.error().message;
        seqs.push_back(*r);
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 3u);
    for (int i = 0; i < 3; ++i) {
        auto l = lock(dev1);
        ASSERT_TRUE(l);
        EXPECT_EQ(l->message.sequence_number, seqs[i]);
        EXPECT_EQ(l->message.body, "m" + std::to_string(i));
    }
}

TEST_F(c2d_limits, a_message_over_max_message_size_fails_with_message_too_large) {
    send_ok(dev1, msg(std::string(100, 'x')));  // exactly the limit
    auto big = send(dev1, msg(std::string(101, 'x')));
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().code, errc::message_too_large);

    auto with_props = msg(std::string(95, 'x'));
    with_props.application_properties = {{"ab", "cde"}};  // 95 + 5 = 100: fits
    send_ok(dev1, with_props);
    with_props.application_properties = {{"ab", "cdef"}};  // 101: property names and values count
    auto r = send(dev1, with_props);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::message_too_large);
    EXPECT_EQ(c2d_->pending_count(dev1), 2u);
}

TEST_F(c2d_limits, an_expiry_not_in_the_future_or_beyond_max_ttl_fails_with_invalid_argument) {
    for (auto e : {now() - 1s, now(), now() + 1h + 1ns, now() + 100h}) {
        auto m = msg("x");
        m.expiry = e;
        auto r = send(dev1, m);
        ASSERT_FALSE(r) << format_time(e);
        EXPECT_EQ(r.error().code, errc::invalid_argument) << format_time(e);
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    auto m = msg("at max ttl");
    m.expiry = now() + 1h;
    send_ok(dev1, m);
    send_ok(dev1, msg("default ttl"));
    auto a = lock(dev1);
    auto b = lock(dev1);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->message.expiry_time_ns, (now() + 1h).time_since_epoch().count());
    EXPECT_EQ(b->message.expiry_time_ns, (now() + 60s).time_since_epoch().count());
}

TEST_F(c2d_limits, failures_found_before_the_store_is_involved_complete_on_the_calling_thread) {
    auto expired = msg("x");
    expired.expiry = now();
    const std::pair<ts::identity_key, c2d_outgoing> cases[] = {
        {{"nope", ""}, msg("x")},            // device_not_found
        {{"dev1", "nope"}, msg("x")},        // module_not_found
        {dev1, msg(std::string(101, 'x'))},  // message_too_large
        {dev1, expired},                     // invalid_argument
    };
    const errc codes[] = {errc::device_not_found, errc::module_not_found, errc::message_too_large,
                          errc::invalid_argument};
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        int calls = 0;
        c2d_->send(cases[i].first, cases[i].second, [&, i](result<std::uint64_t> r) {
            ++calls;
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, codes[i]);
        });
        EXPECT_EQ(calls, 1) << i;
    }
    int calls = 0;
    c2d_->purge({"nope", ""}, [&](result<std::size_t> r) {
        ++calls;
        EXPECT_FALSE(r);
    });
    EXPECT_EQ(calls, 1);
}

class c2d_sweeper : public c2d_fixture {
protected:
    c2d_options options() override {
        auto o = c2d_fixture::options();
        o.sweep_interval = 5ms;  // a real sweeper thread, on the fake clock
        return o;
    }
};

TEST_F(c2d_sweeper, the_sweeper_thread_expires_messages_and_locks_on_its_own) {
    auto m = msg("x", "m", ts::c2d_ack::negative);
    m.expiry = now() + 10s;
    send_ok(dev1, m);
    send_ok(dev2, msg("y"));
    auto l = lock(dev2, 1s);
    ASSERT_TRUE(l);
    advance(10s);
    ASSERT_TRUE(eventually([&] { return c2d_->pending_count(dev1) == 0 && c2d_->feedback_count() == 1; }));
    std::optional<c2d_delivery> again;
    ASSERT_TRUE(eventually([&] { return (again = lock(dev2)).has_value(); }));
    EXPECT_EQ(again->message.delivery_count, 1u);
}

// ---- settlement ----

TEST_F(c2d_settle, complete_removes_the_message_and_its_token_is_then_lost) {
    auto l = send_and_lock(dev1, msg("x"));
    ASSERT_TRUE(complete(dev1, l.lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_FALSE(lock(dev1));
    for (auto f : {&c2d_fixture::complete, &c2d_fixture::abandon, &c2d_fixture::reject}) {
        auto r = (this->*f)(dev1, l.lock_token);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, errc::message_lock_lost);
    }
}

TEST_F(c2d_settle, an_unknown_token_fails_with_message_lock_lost_at_once) {
    send_and_lock(dev1, msg("x"));
    bool called = false;
    c2d_->complete(dev1, "00000000-0000-4000-8000-000000000000", [&](result<void> r) {
        called = true;
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, errc::message_lock_lost);
    });
    EXPECT_TRUE(called);
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
}

TEST_F(c2d_settle, reject_removes_the_message) {
    auto l = send_and_lock(dev1, msg("x"));
    ASSERT_TRUE(reject(dev1, l.lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_FALSE(lock(dev1));
    auto again = reject(dev1, l.lock_token);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::message_lock_lost);
}

TEST_F(c2d_settle, abandon_makes_the_message_available_again_with_delivery_count_plus_one) {
    auto first = send_and_lock(dev1, msg("x"));
    send_ok(dev1, msg("later"));
    EXPECT_EQ(first.message.delivery_count, 0u);
    ASSERT_TRUE(abandon(dev1, first.lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 2u);

    auto second = lock(dev1);  // the abandoned message is still the oldest
    ASSERT_TRUE(second);
    EXPECT_EQ(second->message.sequence_number, first.message.sequence_number);
    EXPECT_EQ(second->message.body, "x");
    EXPECT_EQ(second->message.delivery_count, 1u);
    EXPECT_NE(second->lock_token, first.lock_token);
    auto stale = complete(dev1, first.lock_token);
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::message_lock_lost);

    ASSERT_TRUE(abandon(dev1, second->lock_token));
    auto third = lock(dev1);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->message.delivery_count, 2u);
    ASSERT_TRUE(complete(dev1, third->lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
}

TEST_F(c2d_settle, the_default_max_delivery_count_of_10_dead_letters_after_10_deliveries) {
    send_ok(dev1, msg("x", "m", ts::c2d_ack::negative));
    for (std::uint32_t i = 0; i < 10; ++i) {
        auto l = lock(dev1);
        ASSERT_TRUE(l) << "delivery " << i + 1;
        EXPECT_EQ(l->message.delivery_count, i);
        ASSERT_TRUE(abandon(dev1, l->lock_token));
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_FALSE(lock(dev1));
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].status_code, "DeliveryCountExceeded");
}

class c2d_dead_letter : public c2d_fixture {
protected:
    c2d_options options() override {
        auto o = c2d_fixture::options();
        o.max_delivery_count = 3;
        return o;
    }
};

TEST_F(c2d_dead_letter, after_max_delivery_count_deliveries_a_message_is_dead_lettered) {
    for (auto ack : {ts::c2d_ack::full, ts::c2d_ack::negative, ts::c2d_ack::positive, ts::c2d_ack::none}) {
        const std::string mid = to_string(ack);
        send_ok(dev1, msg("x", mid, ack));
        for (std::uint32_t i = 0; i < 3; ++i) {
            auto l = lock(dev1);
            ASSERT_TRUE(l) << mid << " delivery " << i + 1;
            EXPECT_EQ(l->message.message_id, mid);
            EXPECT_EQ(l->message.delivery_count, i);
            ASSERT_TRUE(abandon(dev1, l->lock_token));
        }
        EXPECT_EQ(c2d_->pending_count(dev1), 0u) << mid;
        EXPECT_FALSE(lock(dev1)) << mid;
    }
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 2u);  // negative and full only
    EXPECT_EQ(fb[0].original_message_id, "full");
    EXPECT_EQ(fb[1].original_message_id, "negative");
    for (auto& f : fb) {
        EXPECT_EQ(f.status_code, "DeliveryCountExceeded");
        EXPECT_EQ(f.description, "Message delivery count exceeded");
        EXPECT_EQ(f.device_id, "dev1");
        EXPECT_EQ(f.device_generation_id, gen1_);
    }
}

TEST_F(c2d_dead_letter, lock_expiries_count_as_deliveries) {
    send_ok(dev1, msg("x", "m", ts::c2d_ack::full));
    for (std::uint32_t i = 0; i < 3; ++i) {
        auto l = lock(dev1, 10s);
        ASSERT_TRUE(l) << "delivery " << i + 1;
        EXPECT_EQ(l->message.delivery_count, i);
        advance(10s);
        c2d_->sweep();
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    ASSERT_TRUE(eventually([&] { return c2d_->feedback_count() == 1; }));
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].status_code, "DeliveryCountExceeded");
}

// ---- expiry ----

TEST_F(c2d_expiry, sweep_removes_an_expired_message_with_expired_feedback_if_asked_for) {
    auto neg = msg("x", "neg", ts::c2d_ack::negative);
    neg.expiry = now() + 10s;
    auto pos = msg("y", "pos", ts::c2d_ack::positive);
    pos.expiry = now() + 10s;
    auto later = msg("z", "later", ts::c2d_ack::full);
    later.expiry = now() + 20s;
    send_ok(dev1, neg);
    send_ok(dev1, pos);
    send_ok(dev1, later);

    advance(9s);
    c2d_->sweep();
    EXPECT_EQ(c2d_->pending_count(dev1), 3u);
    advance(1s);  // expiry is inclusive: a message whose expiry is now has expired
    c2d_->sweep();
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    ASSERT_TRUE(eventually([&] { return c2d_->feedback_count() == 1; }));
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);  // the positive-only message gets none
    EXPECT_EQ(fb[0].original_message_id, "neg");
    EXPECT_EQ(fb[0].status_code, "Expired");
    EXPECT_EQ(fb[0].description, "Message expired");
    EXPECT_EQ(fb[0].enqueued_time_ns, now_ns());
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.message_id, "later");
}

TEST_F(c2d_expiry, lock_next_never_delivers_an_expired_message_and_removes_it) {
    auto old = msg("old", "old", ts::c2d_ack::full);
    old.expiry = now() + 5s;
    send_ok(dev1, old);
    send_ok(dev1, msg("fresh", "fresh"));
    advance(5s);
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.message_id, "fresh");
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    ASSERT_TRUE(eventually([&] { return c2d_->feedback_count() == 1; }));
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].original_message_id, "old");
    EXPECT_EQ(fb[0].status_code, "Expired");

    auto only = msg("only");
    only.expiry = now() + 1s;
    send_ok(dev2, only);
    advance(1s);
    EXPECT_FALSE(lock(dev2));
    EXPECT_EQ(c2d_->pending_count(dev2), 0u);
}

TEST_F(c2d_expiry, a_locked_message_is_not_expired_by_sweep_and_may_be_completed_after_its_expiry) {
    auto m = msg("x", "m", ts::c2d_ack::full);
    m.expiry = now() + 5s;
    auto l = send_and_lock(dev1, m);
    advance(1min);
    c2d_->sweep();
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    ASSERT_TRUE(complete(dev1, l.lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].status_code, "Success");
}

TEST_F(c2d_expiry, abandoning_an_expired_message_removes_it_as_expired) {
    auto m = msg("x", "m", ts::c2d_ack::negative);
    m.expiry = now() + 5s;
    auto l = send_and_lock(dev1, m);
    advance(5s);
    ASSERT_TRUE(abandon(dev1, l.lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].status_code, "Expired");
}

TEST_F(c2d_expiry, a_lock_ending_after_the_expiry_removes_the_message_as_expired) {
    auto m = msg("x", "m", ts::c2d_ack::full);
    m.expiry = now() + 5s;
    send_ok(dev1, m);
    ASSERT_TRUE(lock(dev1, 10s));
    advance(10s);
    c2d_->sweep();
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    ASSERT_TRUE(eventually([&] { return c2d_->feedback_count() == 1; }));
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].status_code, "Expired");
}

// ---- locks ----

TEST_F(c2d_lock, a_lock_with_a_duration_expires_at_sweep_and_the_message_is_available_again) {
    auto l = send_and_lock(dev1, msg("x"), 30s);
    advance(29s);
    c2d_->sweep();
    EXPECT_FALSE(lock(dev1));  // still locked
    advance(1s);
    c2d_->sweep();
    auto again = lock(dev1);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->message.sequence_number, l.message.sequence_number);
    EXPECT_EQ(again->message.delivery_count, 1u);  // the expired lock was a delivery
    auto stale = complete(dev1, l.lock_token);
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::message_lock_lost);
    ASSERT_TRUE(complete(dev1, again->lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
}

TEST_F(c2d_lock, a_lock_without_a_duration_never_expires) {
    auto l = send_and_lock(dev1, msg("x"));
    advance(24h);
    c2d_->sweep();
    EXPECT_FALSE(lock(dev1));
    ASSERT_TRUE(complete(dev1, l.lock_token));
}

TEST_F(c2d_lock, a_token_settles_only_a_message_of_the_identity_it_was_issued_for) {
    auto l = send_and_lock(dev1, msg("x", "m", ts::c2d_ack::full));
    send_ok(dev2, msg("y"));
    send_ok(mod1, msg("z"));
    for (auto& other : {dev2, mod1, ts::identity_key{"nope", ""}}) {
        for (auto f : {&c2d_fixture::complete, &c2d_fixture::abandon, &c2d_fixture::reject}) {
            auto r = (this->*f)(other, l.lock_token);
            ASSERT_FALSE(r) << other.device_id << "/" << other.module_id;
            EXPECT_EQ(r.error().code, errc::message_lock_lost);
        }
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    EXPECT_EQ(c2d_->pending_count(dev2), 1u);
    EXPECT_EQ(c2d_->pending_count(mod1), 1u);
    EXPECT_EQ(c2d_->feedback_count(), 0u);
    EXPECT_FALSE(lock(dev1));  // still locked for dev1, delivery count untouched
    ASSERT_TRUE(complete(dev1, l.lock_token));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].status_code, "Success");
}

// ---- purge ----

TEST_F(c2d_purge, removes_every_message_locked_ones_too_and_gives_no_feedback) {
    std::vector<c2d_delivery> locked;
    for (int i = 0; i < 3; ++i) send_ok(dev1, msg("m" + std::to_string(i), "m", ts::c2d_ack::full));
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    send_ok(mod1, msg("module's"));

    auto n = purge(dev1);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 3u);
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_FALSE(lock(dev1));
    EXPECT_EQ(c2d_->pending_count(mod1), 1u);  // the module's queue is its own
    for (auto f : {&c2d_fixture::complete, &c2d_fixture::abandon, &c2d_fixture::reject}) {
        auto r = (this->*f)(dev1, l->lock_token);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, errc::message_lock_lost);
    }
    EXPECT_EQ(c2d_->feedback_count(), 0u);
    EXPECT_FALSE(c2d_->receive_feedback_batch(1min));

    auto empty = purge(dev1);
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, 0u);
    send_ok(dev1, msg("after purge"));
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
}

TEST_F(c2d_purge, an_unknown_identity_fails_with_device_or_module_not_found) {
    auto d = purge({"nope", ""});
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, errc::device_not_found);
    auto m = purge({"dev1", "nope"});
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, errc::module_not_found);
}

// ---- subscriptions ----

TEST_F(c2d_subscribe, notified_on_enqueue_and_abandon_and_once_at_subscribe_when_a_message_is_available) {
    std::atomic<int> n{0}, other{0};
    scoped_subscription s{*c2d_, c2d_->subscribe(dev1, [&] { ++n; })};
    scoped_subscription s2{*c2d_, c2d_->subscribe(dev2, [&] { ++other; })};
    EXPECT_EQ(n.load(), 0);  // nothing available

    send_ok(dev1, msg("x"));
    ASSERT_TRUE(eventually([&] { return n.load() == 1; }));
    auto l = lock(dev1);
    ASSERT_TRUE(l);

    std::atomic<int> late{0};
    scoped_subscription s3{*c2d_, c2d_->subscribe(dev1, [&] { ++late; })};  // the only message is locked: not told
    EXPECT_EQ(late.load(), 0);

    ASSERT_TRUE(abandon(dev1, l->lock_token));
    ASSERT_TRUE(eventually([&] { return n.load() == 2 && late.load() == 1; }));

    std::atomic<int> now_available{0};
    scoped_subscription s4{*c2d_, c2d_->subscribe(dev1, [&] { ++now_available; })};
    EXPECT_EQ(now_available.load(), 1);  // once, right away

    // A lock that expires at sweep makes the message available again.
    auto l2 = lock(dev1, 5s);
    ASSERT_TRUE(l2);
    advance(5s);
    c2d_->sweep();
    ASSERT_TRUE(eventually([&] { return n.load() == 3; }));

    // Complete and reject make nothing available.
    auto l3 = lock(dev1);
    ASSERT_TRUE(l3);
    ASSERT_TRUE(complete(dev1, l3->lock_token));
    EXPECT_EQ(n.load(), 3);
    EXPECT_EQ(now_available.load(), 2);  // at subscribe, then of the lock expiry
    EXPECT_EQ(other.load(), 0);          // another identity's messages are not its business
}

TEST_F(c2d_subscribe, unsubscribe_stops_notifications) {
    std::atomic<int> n{0}, control{0};
    scoped_subscription s{*c2d_, c2d_->subscribe(dev1, [&] { ++n; })};
    scoped_subscription c{*c2d_, c2d_->subscribe(dev1, [&] { ++control; })};
    send_ok(dev1, msg("x"));
    ASSERT_TRUE(eventually([&] { return n.load() == 1 && control.load() == 1; }));
    c2d_->unsubscribe(s.s);
    send_ok(dev1, msg("y"));
    ASSERT_TRUE(eventually([&] { return control.load() == 2; }));
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    ASSERT_TRUE(abandon(dev1, l->lock_token));
    ASSERT_TRUE(eventually([&] { return control.load() == 3; }));
    EXPECT_EQ(n.load(), 1);
}

TEST_F(c2d_subscribe, a_notification_may_call_back_into_the_service) {
    std::mutex m;
    std::vector<c2d_delivery> got;
    scoped_subscription s{*c2d_, c2d_->subscribe(dev1, [&] {
        auto r = c2d_->lock_next(dev1, std::nullopt);
        ASSERT_TRUE(r);
        if (!*r) return;
        std::lock_guard g(m);
        got.push_back(**r);
    })};
    send_ok(dev1, msg("x"));
    ASSERT_TRUE(eventually([&] {
        std::lock_guard g(m);
        return got.size() == 1;
    }));
    c2d_->unsubscribe(s.s);
    std::lock_guard g(m);
    EXPECT_EQ(got[0].message.body, "x");
    EXPECT_TRUE(complete(dev1, got[0].lock_token));
}

// ---- feedback from settlements ----

TEST_F(c2d_feedback, complete_gives_a_success_record_only_for_ack_positive_and_full) {
    for (auto ack : {ts::c2d_ack::none, ts::c2d_ack::positive, ts::c2d_ack::negative, ts::c2d_ack::full}) {
        auto l = send_and_lock(dev1, msg("x", to_string(ack), ack));
        ASSERT_TRUE(complete(dev1, l.lock_token));
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_EQ(c2d_->feedback_count(), 2u);  // in the queue when complete's handler runs
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 2u);
    EXPECT_EQ(fb[0].original_message_id, "positive");
    EXPECT_EQ(fb[1].original_message_id, "full");
    EXPECT_LT(fb[0].sequence_number, fb[1].sequence_number);
    for (auto& f : fb) {
        EXPECT_EQ(f.status_code, "Success");
        EXPECT_EQ(f.description, "Success");
        EXPECT_EQ(f.device_id, "dev1");
        EXPECT_EQ(f.module_id, "");
        EXPECT_EQ(f.device_generation_id, gen1_);
        EXPECT_EQ(f.enqueued_time_ns, now_ns());
    }
    EXPECT_EQ(c2d_->feedback_count(), 0u);
}

TEST_F(c2d_feedback, reject_gives_a_rejected_record_only_for_ack_negative_and_full) {
    advance(1h);
    for (auto ack : {ts::c2d_ack::none, ts::c2d_ack::positive, ts::c2d_ack::negative, ts::c2d_ack::full}) {
        auto l = send_and_lock(dev1, msg("x", to_string(ack), ack));
        ASSERT_TRUE(reject(dev1, l.lock_token));
    }
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_EQ(c2d_->feedback_count(), 2u);
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 2u);
    EXPECT_EQ(fb[0].original_message_id, "negative");
    EXPECT_EQ(fb[1].original_message_id, "full");
    for (auto& f : fb) {
        EXPECT_EQ(f.status_code, "Rejected");
        EXPECT_EQ(f.description, "Message rejected");
        EXPECT_EQ(f.device_id, "dev1");
        EXPECT_EQ(f.device_generation_id, gen1_);
        EXPECT_EQ(f.enqueued_time_ns, now_ns());  // when the outcome happened
    }
}

TEST_F(c2d_feedback, a_module_message_names_the_module_and_its_device_generation_id) {
    auto l = send_and_lock(mod1, msg("x", "mm", ts::c2d_ack::positive));
    ASSERT_TRUE(complete(mod1, l.lock_token));
    auto fb = take_feedback();
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].device_id, "dev1");
    EXPECT_EQ(fb[0].module_id, "m1");
    EXPECT_EQ(fb[0].device_generation_id, gen1_);
    auto j = boost::json::parse(feedback_batch_json(fb));
    EXPECT_EQ(j.at(0).at("moduleId"), "m1");
}

// ---- feedback batches ----

TEST_F(c2d_feedback_batch, receive_locks_the_records_and_a_second_call_does_not_return_them) {
    EXPECT_FALSE(c2d_->receive_feedback_batch(1min));  // empty queue
    for (int i = 0; i < 3; ++i) {
        auto l = send_and_lock(dev1, msg("x", "m" + std::to_string(i), ts::c2d_ack::positive));
        ASSERT_TRUE(complete(dev1, l.lock_token));
    }
    auto b = c2d_->receive_feedback_batch(1min, 2);
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->lock_token.empty());
    ASSERT_EQ(b->records.size(), 2u);
    EXPECT_EQ(b->records[0].original_message_id, "m0");  // oldest first
    EXPECT_EQ(b->records[1].original_message_id, "m1");
    auto rest = c2d_->receive_feedback_batch(1min);
    ASSERT_TRUE(rest);
    ASSERT_EQ(rest->records.size(), 1u);
    EXPECT_EQ(rest->records[0].original_message_id, "m2");
    EXPECT_NE(rest->lock_token, b->lock_token);
    EXPECT_FALSE(c2d_->receive_feedback_batch(1min));  // all locked
    EXPECT_EQ(c2d_->feedback_count(), 3u);             // locked records still count
}

TEST_F(c2d_feedback_batch, abandon_makes_the_records_available_again) {
    for (int i = 0; i < 2; ++i) {
        auto l = send_and_lock(dev1, msg("x", "m" + std::to_string(i), ts::c2d_ack::full));
        ASSERT_TRUE(reject(dev1, l.lock_token));
    }
    auto b = c2d_->receive_feedback_batch(1min);
    ASSERT_TRUE(b);
    ASSERT_EQ(b->records.size(), 2u);
    EXPECT_FALSE(c2d_->receive_feedback_batch(1min));
    ASSERT_TRUE(c2d_->abandon_feedback(b->lock_token));
    auto again_token = c2d_->abandon_feedback(b->lock_token);  // the batch is gone
    ASSERT_FALSE(again_token);
    EXPECT_EQ(again_token.error().code, errc::message_lock_lost);
    auto c = complete_feedback(b->lock_token);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, errc::message_lock_lost);

    auto again = c2d_->receive_feedback_batch(1min);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->records, b->records);
    EXPECT_EQ(c2d_->feedback_count(), 2u);
}

TEST_F(c2d_feedback_batch, complete_removes_the_records) {
    for (int i = 0; i < 3; ++i) {
        auto l = send_and_lock(dev1, msg("x", "m" + std::to_string(i), ts::c2d_ack::positive));
        ASSERT_TRUE(complete(dev1, l.lock_token));
    }
    auto b = c2d_->receive_feedback_batch(1min, 2);
    ASSERT_TRUE(b);
    ASSERT_TRUE(complete_feedback(b->lock_token));
    EXPECT_EQ(c2d_->feedback_count(), 1u);
    auto twice = complete_feedback(b->lock_token);
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().code, errc::message_lock_lost);
    auto ab = c2d_->abandon_feedback(b->lock_token);
    ASSERT_FALSE(ab);
    EXPECT_EQ(ab.error().code, errc::message_lock_lost);
    auto rest = c2d_->receive_feedback_batch(1min);
    ASSERT_TRUE(rest);
    ASSERT_EQ(rest->records.size(), 1u);
    EXPECT_EQ(rest->records[0].original_message_id, "m2");
    ASSERT_TRUE(complete_feedback(rest->lock_token));
    EXPECT_EQ(c2d_->feedback_count(), 0u);
    EXPECT_FALSE(c2d_->receive_feedback_batch(1min));

    auto unknown = complete_feedback("not-a-token");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, errc::message_lock_lost);
}

TEST_F(c2d_feedback_batch, an_expired_batch_lock_releases_the_records_at_sweep) {
    auto l = send_and_lock(dev1, msg("x", "m", ts::c2d_ack::positive));
    ASSERT_TRUE(complete(dev1, l.lock_token));
    auto b = c2d_->receive_feedback_batch(10s);
    ASSERT_TRUE(b);
    advance(9s);
    c2d_->sweep();
    EXPECT_FALSE(c2d_->receive_feedback_batch(10s));
    advance(1s);
    c2d_->sweep();
    auto again = c2d_->receive_feedback_batch(10s);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->records, b->records);
    auto stale = complete_feedback(b->lock_token);
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::message_lock_lost);
    EXPECT_EQ(c2d_->feedback_count(), 1u);
    ASSERT_TRUE(complete_feedback(again->lock_token));
    EXPECT_EQ(c2d_->feedback_count(), 0u);
}

class c2d_feedback_small_batch : public c2d_fixture {
protected:
    c2d_options options() override {
        auto o = c2d_fixture::options();
        o.max_feedback_batch = 2;
        return o;
    }
};

TEST_F(c2d_feedback_small_batch, a_batch_holds_at_most_max_feedback_batch_records) {
    for (int i = 0; i < 3; ++i) {
        auto l = send_and_lock(dev1, msg("x", "m" + std::to_string(i), ts::c2d_ack::positive));
        ASSERT_TRUE(complete(dev1, l.lock_token));
    }
    auto b = c2d_->receive_feedback_batch(1min);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->records.size(), 2u);
    auto b2 = c2d_->receive_feedback_batch(1min, 1);
    ASSERT_TRUE(b2);
    EXPECT_EQ(b2->records.size(), 1u);
}

TEST_F(c2d_feedback_batch, subscribe_feedback_is_told_of_new_abandoned_and_released_records) {
    std::atomic<int> n{0};
    scoped_subscription s{*c2d_, c2d_->subscribe_feedback([&] { ++n; })};
    EXPECT_EQ(n.load(), 0);
    auto l = send_and_lock(dev1, msg("x", "m", ts::c2d_ack::positive));
    ASSERT_TRUE(complete(dev1, l.lock_token));
    ASSERT_TRUE(eventually([&] { return n.load() == 1; }));

    std::atomic<int> at_once{0};
    scoped_subscription s2{*c2d_, c2d_->subscribe_feedback([&] { ++at_once; })};
    EXPECT_EQ(at_once.load(), 1);

    auto b = c2d_->receive_feedback_batch(10s);
    ASSERT_TRUE(b);
    std::atomic<int> locked_only{0};
    scoped_subscription s3{*c2d_, c2d_->subscribe_feedback([&] { ++locked_only; })};
    EXPECT_EQ(locked_only.load(), 0);  // every record is locked

    ASSERT_TRUE(c2d_->abandon_feedback(b->lock_token));
    ASSERT_TRUE(eventually([&] { return n.load() == 2 && locked_only.load() == 1; }));

    ASSERT_TRUE(c2d_->receive_feedback_batch(10s));
    advance(10s);
    c2d_->sweep();
    ASSERT_TRUE(eventually([&] { return n.load() == 3; }));

    c2d_->unsubscribe(s.s);
    auto l2 = send_and_lock(dev1, msg("y", "m2", ts::c2d_ack::positive));
    ASSERT_TRUE(complete(dev1, l2.lock_token));
    ASSERT_TRUE(eventually([&] { return locked_only.load() == 3; }));
    EXPECT_EQ(n.load(), 3);
}

TEST(c2d_feedback_json, a_batch_is_an_array_of_records_with_the_iot_hub_fields) {
    ts::feedback_record a;
    a.sequence_number = 7;
    a.original_message_id = "mid-1";
    a.description = "Success";
    a.device_generation_id = "638000000000000001";
    a.device_id = "dev1";
    a.enqueued_time_ns = t0().time_since_epoch().count() + 123456700;  // .1234567 s
    a.status_code = "Success";
    ts::feedback_record b = a;
    b.original_message_id = "mid-2";
    b.description = "Message expired";
    b.status_code = "Expired";
    b.module_id = "m1";

    auto v = boost::json::parse(feedback_batch_json({a, b}));
    ASSERT_TRUE(v.is_array());
    auto& arr = v.as_array();
    ASSERT_EQ(arr.size(), 2u);
    auto keys = [](const boost::json::object& o) {
        std::set<std::string> k;
        for (auto& kv : o) k.insert(std::string(kv.key()));
        return k;
    };
    const std::set<std::string> base{"originalMessageId", "description", "deviceGenerationId",
                                     "deviceId",          "enqueuedTimeUtc", "statusCode"};
    auto& o0 = arr[0].as_object();
    EXPECT_EQ(keys(o0), base);  // no moduleId for a device's message
    EXPECT_EQ(o0.at("originalMessageId"), "mid-1");
    EXPECT_EQ(o0.at("description"), "Success");
    EXPECT_EQ(o0.at("deviceGenerationId"), "638000000000000001");
    EXPECT_EQ(o0.at("deviceId"), "dev1");
    EXPECT_EQ(o0.at("enqueuedTimeUtc"), "2024-05-01T12:00:00.1234567Z");
    EXPECT_EQ(o0.at("statusCode"), "Success");
    auto& o1 = arr[1].as_object();
    auto with_module = base;
    with_module.insert("moduleId");
    EXPECT_EQ(keys(o1), with_module);
    EXPECT_EQ(o1.at("originalMessageId"), "mid-2");
    EXPECT_EQ(o1.at("statusCode"), "Expired");
    EXPECT_EQ(o1.at("description"), "Message expired");
    EXPECT_EQ(o1.at("moduleId"), "m1");

    EXPECT_EQ(boost::json::parse(feedback_batch_json({})), boost::json::array{});
}

// ---- iothub-ack ----

TEST(c2d_ack, parse_accepts_the_four_values_case_insensitively_and_rejects_others) {
    const std::pair<const char*, ts::c2d_ack> ok[] = {
        {"none", ts::c2d_ack::none},         {"positive", ts::c2d_ack::positive},
        {"negative", ts::c2d_ack::negative}, {"full", ts::c2d_ack::full},
        {"NONE", ts::c2d_ack::none},         {"Positive", ts::c2d_ack::positive},
        {"nEgAtIvE", ts::c2d_ack::negative}, {"FULL", ts::c2d_ack::full},
    };
    for (auto& [s, a] : ok) {
        auto r = parse_c2d_ack(s);
        ASSERT_TRUE(r) << s;
        EXPECT_EQ(*r, a) << s;
    }
    for (const char* s : {"", "nonee", "non", "full ", " full", "yes", "true", "1", "positiv", "negatives", "ful"}) {
        auto r = parse_c2d_ack(s);
        ASSERT_FALSE(r) << "'" << s << "'";
        EXPECT_EQ(r.error().code, errc::invalid_argument) << "'" << s << "'";
    }
    for (auto a : {ts::c2d_ack::none, ts::c2d_ack::positive, ts::c2d_ack::negative, ts::c2d_ack::full}) {
        auto r = parse_c2d_ack(to_string(a));
        ASSERT_TRUE(r);
        EXPECT_EQ(*r, a);
    }
    EXPECT_STREQ(to_string(ts::c2d_ack::full), "full");
}

// ---- identity lifecycle ----

TEST_F(c2d_identity, deleting_a_device_drops_its_queue_and_its_modules_queues) {
    send_ok(dev1, msg("a"));
    send_ok(dev1, msg("b", "b", ts::c2d_ack::full));
    send_ok(mod1, msg("c"));
    send_ok(dev2, msg("d"));
    auto l = lock(dev1);
    ASSERT_TRUE(l);

    ASSERT_TRUE(delete_device("dev1"));
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_EQ(c2d_->pending_count(mod1), 0u);
    EXPECT_EQ(c2d_->pending_count(dev2), 1u);
    EXPECT_FALSE(lock(dev1));
    auto lost = complete(dev1, l->lock_token);
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error().code, errc::message_lock_lost);
    EXPECT_EQ(c2d_->feedback_count(), 0u);
    auto gone = send(dev1, msg("x"));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, errc::device_not_found);

    ASSERT_TRUE(create_device("dev1"));
    const auto seq = send_ok(dev1, msg("new"));
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    auto n = lock(dev1);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->message.sequence_number, seq);
    EXPECT_EQ(n->message.body, "new");
    EXPECT_FALSE(lock(dev1));
}

TEST_F(c2d_identity, deleting_a_module_drops_only_its_queue) {
    send_ok(dev1, msg("a"));
    send_ok(mod1, msg("b"));
    ASSERT_TRUE(delete_module("dev1", "m1"));
    EXPECT_EQ(c2d_->pending_count(mod1), 0u);
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    ASSERT_TRUE(create_module("dev1", "m1"));
    EXPECT_FALSE(lock(mod1));
    send_ok(mod1, msg("c"));
    auto l = lock(mod1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.body, "c");
}

TEST_F(c2d_identity, disabling_a_device_keeps_its_queue) {
    send_ok(dev1, msg("a"));
    auto d = hub_->get_device("dev1");
    ASSERT_TRUE(d);
    auto u = *d;
    u.status = registry::device_status::disabled;
    auto r = wait_for<registry::device_identity>([&](auto h) { hub_->update_device(u, "*", h); });
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.body, "a");
}

// A send whose enqueue reaches the store after the device's delete (it passed the identity check
// first) fails with device_not_found; the device's queue must not be left inconsistent by it.
TEST_F(c2d_identity, a_send_in_flight_when_its_device_is_deleted_does_not_wedge_the_recreated_queue) {
    store_->hold_enqueues();
    auto p = std::make_shared<std::promise<result<std::uint64_t>>>();
    c2d_->send(dev1, msg("late"), [p](result<std::uint64_t> r) { p->set_value(r); });
    ASSERT_EQ(store_->held(), 1u);
    ASSERT_TRUE(delete_device("dev1"));  // not an enqueue: goes through, drops the queue
    store_->release();
    auto f = p->get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    auto r = f.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_not_found);
    EXPECT_EQ(c2d_->pending_count(dev1), 0u);

    ASSERT_TRUE(create_device("dev1"));
    auto s = send(dev1, msg("after recreate"));
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(c2d_->pending_count(dev1), 1u);
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.body, "after recreate");
}

// A delete and a re-create of the same device applied in one store group: the hub reports the
// revocation after both, when the device exists again. The old device's messages are gone from the
// store (cascade) and must not be delivered to the new device.
TEST_F(c2d_identity, a_device_deleted_and_recreated_in_one_commit_group_loses_its_old_messages) {
    auto locked = send_and_lock(dev1, msg("old, locked"));
    send_ok(dev1, msg("old"));
    send_ok(mod1, msg("old, module's"));
    store_->block_writer();
    auto del = std::make_shared<std::promise<result<void>>>();
    auto cre = std::make_shared<std::promise<result<registry::device_identity>>>();
    hub_->delete_device("dev1", "*", [del](result<void> r) { del->set_value(r); });
    hub_->create_device(device_request("dev1"), [cre](result<registry::device_identity> r) { cre->set_value(r); });
    store_->unblock_writer();
    auto fd = del->get_future();
    auto fc = cre->get_future();
    ASSERT_EQ(fd.wait_for(10s), std::future_status::ready);
    ASSERT_EQ(fc.wait_for(10s), std::future_status::ready);
    auto d = fd.get();
    ASSERT_TRUE(d) << d.error().message;
    auto c = fc.get();
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_NE(c->generation_id, gen1_);

    EXPECT_EQ(c2d_->pending_count(dev1), 0u);
    EXPECT_EQ(c2d_->pending_count(mod1), 0u);
    EXPECT_FALSE(lock(dev1));
    auto lost = complete(dev1, locked.lock_token);
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error().code, errc::message_lock_lost);
    auto st = store_->load_c2d();
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->messages.empty());
    const auto seq = send_ok(dev1, msg("new"));  // the new device's queue works
    auto l = lock(dev1);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->message.sequence_number, seq);
}

// ---- durability (SQLite) ----

class temp_dir {
public:
    temp_dir() {
        std::string t = (std::filesystem::temp_directory_path() / "twinhub-c2d-XXXXXX").string();
        if (!::mkdtemp(t.data())) std::abort();
        path_ = t;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const char* name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

struct sqlite_hub {
    std::unique_ptr<ts::store> st;
    std::unique_ptr<hub_service> hub;
    std::unique_ptr<c2d_service> c2d;
    ~sqlite_hub() {
        c2d.reset();  // before the store and the hub
        if (st) st->close();
        hub.reset();
        st.reset();
    }
};

class c2d_sqlite : public ::testing::Test {
protected:
    void SetUp() override { log::set_level(log::level::warn); }

    void open(sqlite_hub& o) {
        auto st = ts::open_sqlite_store(db_);
        ASSERT_TRUE(st) << st.error().message;
        o.st = std::move(*st);
        auto hub = hub_service::open(*o.st, {});
        ASSERT_TRUE(hub) << hub.error().message;
        o.hub = std::move(*hub);
        c2d_options opts;
        opts.sweep_interval = 0ms;
        opts.clock = [] { return t0(); };
        auto c = c2d_service::open(*o.st, *o.hub, opts);
        ASSERT_TRUE(c) << c.error().message;
        o.c2d = std::move(*c);
    }

    static result<std::uint64_t> send(c2d_service& c, const ts::identity_key& id, c2d_outgoing m) {
        return wait_for<std::uint64_t>([&](auto h) { c.send(id, std::move(m), h); });
    }
    static result<void> settle(c2d_service& c, void (c2d_service::*f)(const ts::identity_key&, std::string_view,
                                                                       handler<void>),
                               const ts::identity_key& id, const std::string& token) {
        return wait_for<void>([&](auto h) { (c.*f)(id, token, h); });
    }

    temp_dir dir_;
    std::string db_ = dir_.file("hub.db");
};

TEST_F(c2d_sqlite, messages_and_feedback_survive_a_reopen_and_a_message_locked_at_close_is_available_again) {
    ts::c2d_message a_stored, d_stored;
    std::vector<ts::feedback_record> feedback;
    std::uint64_t max_seq = 0;
    {
        sqlite_hub o;
        ASSERT_NO_FATAL_FAILURE(open(o));
        auto& c = *o.c2d;
        ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { o.hub->create_device(device_request("dev1"), h); }));
        ASSERT_TRUE(wait_for<registry::module_identity>(
            [&](auto h) { o.hub->create_module(module_request("dev1", "m1"), h); }));

        auto a = msg(std::string("body\0A", 6), "A", ts::c2d_ack::full);
        a.correlation_id = "cid";
        a.user_id = "uid";
        a.content_type = "text/plain";
        a.content_encoding = "utf-8";
        a.expiry = t0() + 2h;
        a.application_properties = {{"k2", "v2"}, {"k1", ""}};
        for (auto [id, m] : {std::pair{dev1, a}, std::pair{dev1, msg("b", "B", ts::c2d_ack::positive)},
                             std::pair{mod1, msg("c", "C", ts::c2d_ack::negative)}, std::pair{dev1, msg("d", "D")}}) {
            auto r = send(c, id, m);
            ASSERT_TRUE(r) << r.error().message;
            max_seq = std::max(max_seq, *r);
        }

        auto l = c.lock_next(dev1, std::nullopt);
        ASSERT_TRUE(l && *l);
        EXPECT_EQ((*l)->message.message_id, "A");
        ASSERT_TRUE(settle(c, &c2d_service::abandon, dev1, (*l)->lock_token));
        l = c.lock_next(dev1, std::nullopt);  // A again, delivery count 1, left locked at close
        ASSERT_TRUE(l && *l);
        EXPECT_EQ((*l)->message.message_id, "A");
        EXPECT_EQ((*l)->message.delivery_count, 1u);
        a_stored = (*l)->message;
        l = c.lock_next(dev1, std::nullopt);
        ASSERT_TRUE(l && *l);
        EXPECT_EQ((*l)->message.message_id, "B");
        ASSERT_TRUE(settle(c, &c2d_service::complete, dev1, (*l)->lock_token));  // Success feedback
        l = c.lock_next(mod1, std::nullopt);
        ASSERT_TRUE(l && *l);
        ASSERT_TRUE(settle(c, &c2d_service::reject, mod1, (*l)->lock_token));  // Rejected feedback
        l = c.lock_next(dev1, 10s);  // D: locked at close too, with a lock duration, never abandoned
        ASSERT_TRUE(l && *l);
        EXPECT_EQ((*l)->message.message_id, "D");
        d_stored = (*l)->message;

        auto b = c.receive_feedback_batch(1min);  // a batch locked at close
        ASSERT_TRUE(b);
        ASSERT_EQ(b->records.size(), 2u);
        feedback = b->records;
        EXPECT_EQ(c.pending_count(dev1), 2u);
    }
    sqlite_hub o;
    ASSERT_NO_FATAL_FAILURE(open(o));
    auto& c = *o.c2d;
    EXPECT_EQ(c.pending_count(dev1), 2u);
    EXPECT_EQ(c.pending_count(mod1), 0u);
    auto l = c.lock_next(dev1, std::nullopt);
    ASSERT_TRUE(l && *l);
    EXPECT_EQ((*l)->message, a_stored);  // every property, and the delivery count of its last abandon
    EXPECT_EQ((*l)->message.delivery_count, 1u);
    auto l2 = c.lock_next(dev1, std::nullopt);
    ASSERT_TRUE(l2 && *l2);
    EXPECT_EQ((*l2)->message, d_stored);
    EXPECT_EQ((*l2)->message.delivery_count, 0u);  // a delivery in progress at close is not counted
    EXPECT_FALSE(*c.lock_next(dev1, std::nullopt));

    EXPECT_EQ(c.feedback_count(), 2u);
    auto b = c.receive_feedback_batch(1min);  // batch locks are not durable
    ASSERT_TRUE(b);
    EXPECT_EQ(b->records, feedback);
    ASSERT_EQ(b->records.size(), 2u);
    EXPECT_EQ(b->records[0].status_code, "Success");
    EXPECT_EQ(b->records[0].original_message_id, "B");
    EXPECT_EQ(b->records[1].status_code, "Rejected");
    EXPECT_EQ(b->records[1].module_id, "m1");

    // Settling after the reopen works, and new messages continue the sequence.
    ASSERT_TRUE(settle(c, &c2d_service::complete, dev1, (*l)->lock_token));
    auto e = send(c, dev1, msg("e"));
    ASSERT_TRUE(e);
    EXPECT_GT(*e, max_seq);
}

TEST_F(c2d_sqlite, sequence_numbers_are_not_reused_after_a_reopen) {
    std::uint64_t last_msg = 0, last_fb = 0;
    {
        sqlite_hub o;
        ASSERT_NO_FATAL_FAILURE(open(o));
        auto& c = *o.c2d;
        ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { o.hub->create_device(device_request("dev1"), h); }));
        for (int i = 0; i < 3; ++i) {
            auto s = send(c, dev1, msg("x", "m" + std::to_string(i), ts::c2d_ack::positive));
            ASSERT_TRUE(s);
            last_msg = std::max(last_msg, *s);
            auto l = c.lock_next(dev1, std::nullopt);
            ASSERT_TRUE(l && *l);
            ASSERT_TRUE(settle(c, &c2d_service::complete, dev1, (*l)->lock_token));
        }
        auto b = c.receive_feedback_batch(1min);
        ASSERT_TRUE(b);
        ASSERT_EQ(b->records.size(), 3u);
        for (auto& r : b->records) last_fb = std::max(last_fb, r.sequence_number);
        ASSERT_TRUE(wait_for<void>([&](auto h) { c.complete_feedback(b->lock_token, h); }));
        EXPECT_EQ(c.pending_count(dev1), 0u);
        EXPECT_EQ(c.feedback_count(), 0u);
    }
    sqlite_hub o;
    ASSERT_NO_FATAL_FAILURE(open(o));
    auto& c = *o.c2d;
    EXPECT_EQ(c.pending_count(dev1), 0u);
    EXPECT_EQ(c.feedback_count(), 0u);
    auto s = send(c, dev1, msg("y", "y", ts::c2d_ack::positive));
    ASSERT_TRUE(s);
    EXPECT_GT(*s, last_msg);  // every earlier message was deleted: the store still remembers
    auto l = c.lock_next(dev1, std::nullopt);
    ASSERT_TRUE(l && *l);
    EXPECT_EQ((*l)->message.sequence_number, *s);
    ASSERT_TRUE(settle(c, &c2d_service::complete, dev1, (*l)->lock_token));
    auto b = c.receive_feedback_batch(1min);
    ASSERT_TRUE(b);
    ASSERT_EQ(b->records.size(), 1u);
    EXPECT_GT(b->records[0].sequence_number, last_fb);
}

TEST_F(c2d_sqlite, purge_completion_and_device_deletion_are_durable) {
    {
        sqlite_hub o;
        ASSERT_NO_FATAL_FAILURE(open(o));
        auto& c = *o.c2d;
        for (const char* d : {"dev1", "dev2", "dev3"})
            ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { o.hub->create_device(device_request(d), h); }));
        for (int i = 0; i < 2; ++i) {
            ASSERT_TRUE(send(c, dev1, msg("x")));
            ASSERT_TRUE(send(c, dev2, msg("y")));
            ASSERT_TRUE(send(c, {"dev3", ""}, msg("z")));
        }
        auto n = wait_for<std::size_t>([&](auto h) { c.purge(dev2, h); });
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 2u);
        ASSERT_TRUE(wait_for<void>([&](auto h) { o.hub->delete_device("dev3", "*", h); }));
        auto l = c.lock_next(dev1, std::nullopt);
        ASSERT_TRUE(l && *l);
        ASSERT_TRUE(settle(c, &c2d_service::complete, dev1, (*l)->lock_token));
    }
    sqlite_hub o;
    ASSERT_NO_FATAL_FAILURE(open(o));
    EXPECT_EQ(o.c2d->pending_count(dev1), 1u);
    EXPECT_EQ(o.c2d->pending_count(dev2), 0u);
    EXPECT_EQ(o.c2d->pending_count({"dev3", ""}), 0u);
    EXPECT_EQ(o.c2d->feedback_count(), 0u);
}

TEST_F(c2d_sqlite, after_a_reopen_disabling_a_device_keeps_its_messages_and_deleting_it_drops_them) {
    {
        sqlite_hub o;
        ASSERT_NO_FATAL_FAILURE(open(o));
        ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { o.hub->create_device(device_request("dev1"), h); }));
        ASSERT_TRUE(wait_for<registry::module_identity>(
            [&](auto h) { o.hub->create_module(module_request("dev1", "m1"), h); }));
        ASSERT_TRUE(send(*o.c2d, dev1, msg("a")));
        ASSERT_TRUE(send(*o.c2d, mod1, msg("b")));
    }
    sqlite_hub o;
    ASSERT_NO_FATAL_FAILURE(open(o));
    auto d = o.hub->get_device("dev1");
    ASSERT_TRUE(d);
    auto u = *d;
    u.status = registry::device_status::disabled;
    ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { o.hub->update_device(u, "*", h); }));
    EXPECT_EQ(o.c2d->pending_count(dev1), 1u);  // revoked (disabled), not deleted
    EXPECT_EQ(o.c2d->pending_count(mod1), 1u);
    ASSERT_TRUE(wait_for<void>([&](auto h) { o.hub->delete_device("dev1", "*", h); }));
    EXPECT_EQ(o.c2d->pending_count(dev1), 0u);
    EXPECT_EQ(o.c2d->pending_count(mod1), 0u);
}

}  // namespace
}  // namespace twinhub::service
