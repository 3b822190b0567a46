// Power loss under the hub's own write paths (issue 12): hub_service, as twinhubd's heads use it,
// over the SQLite store over powerloss_vfs. Reported twin patches, identity create/update/delete
// and telemetry appends run until the power is cut (at a random moment or inside a chosen I/O);
// after the files are power-cycled the hub reopens, and every write whose handler reported success
// is there: the twin's reported counter and version, each identity's existence and etag, each
// acknowledged event in the log (sequence numbers contiguous per partition).
#include "powerloss_harness.hpp"
#include "service/hub_service.hpp"
#include "store/sqlite_store.hpp"
#include "../unit/store/test_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

namespace twinhub::service {
namespace {

using store::testing::cut;
using store::testing::powerloss_vfs;

template <class T, class Start>
result<T> wait(Start&& start) {
    auto p = std::make_shared<std::promise<result<T>>>();
    auto f = p->get_future();
    start([p](result<T> r) { p->set_value(std::move(r)); });
    return f.get();
}

// What the hub must hold: acknowledged state (plus what was read back after the last recovery) and
// the one write per writer whose handler had not reported when the power went.
struct hub_model {
    std::int64_t counter = 0;  // the twin's acknowledged reported counter
    std::optional<std::int64_t> counter_pending;
    std::map<std::string, std::uint64_t> etags;  // identity -> etag (absent: not stored)
    // id, etag (nullopt: deleted; any_etag: created, the hub picks the etag)
    std::optional<std::pair<std::string, std::optional<std::uint64_t>>> identity_pending;
    std::set<std::string> events;  // acknowledged (or read back) event bodies
    std::set<std::string> events_pending;
    std::set<std::string> submitted;
};

constexpr const char* twin_id = "hub-twin";
constexpr std::uint64_t any_etag = UINT64_MAX;  // a create: the hub picks the etag

std::vector<std::string> check(hub_service& hub, const std::string& db, hub_model& m) {
    std::vector<std::string> bad;
    // The twin.
    if (auto t = hub.get_twin({twin_id, ""}); !t) {
        bad.push_back(std::string("twin: ") + t.error().message);
    } else {
        const auto& reported = t->at("properties").at("reported").as_object();
        std::int64_t got = reported.contains("counter") ? reported.at("counter").as_int64() : 0;
        if (got != m.counter && !(m.counter_pending && got == *m.counter_pending))
            bad.push_back("twin: acknowledged reported counter " + std::to_string(m.counter) + " lost, stored " +
                          std::to_string(got));
        else if (got && reported.at("pad").as_string() != store::testing::pad(twin_id, static_cast<std::uint64_t>(got), 200))
            bad.push_back("twin: counter " + std::to_string(got) + " has the wrong content");
        m.counter = got;
        m.counter_pending.reset();
    }
    // The registry.
    std::map<std::string, std::uint64_t> now;
    auto show = [](std::optional<std::uint64_t> e) { return e ? "etag " + std::to_string(*e) : std::string("nothing"); };
    for (int i = 0; i < 6; ++i) {
        const std::string id = "hub-reg-" + std::to_string(i);
        auto d = hub.get_device(id);
        const std::optional<std::uint64_t> got = d ? std::optional(d->etag) : std::nullopt;
        const auto it = m.etags.find(id);
        const std::optional<std::uint64_t> want = it == m.etags.end() ? std::nullopt : std::optional(it->second);
        bool ok = got == want;
        if (!ok && m.identity_pending && m.identity_pending->first == id) {
            const auto& p = m.identity_pending->second;  // nullopt: a delete
            ok = p == got || (p == any_etag && got);
        }
        if (!ok) bad.push_back("identity " + id + ": acknowledged " + show(want) + " lost, stored " + show(got));
        if (got) now[id] = *got;
    }
    m.etags = std::move(now);
    m.identity_pending.reset();
    // The telemetry log.
    std::set<std::string> present;
    for (std::uint32_t p = 0; p < store::default_event_partitions; ++p) {
        auto ev = hub.read_events(p, 0, 1u << 30);
        if (!ev) {
            bad.push_back("reading partition " + std::to_string(p) + ": " + ev.error().message);
            continue;
        }
        for (std::size_t i = 1; i < ev->size(); ++i)
            if ((*ev)[i].sequence_number != (*ev)[i - 1].sequence_number + 1)
                bad.push_back("partition " + std::to_string(p) + ": sequence numbers jump");
        for (auto& e : *ev) {
            if (!m.submitted.count(e.body)) bad.push_back("partition " + std::to_string(p) + ": an event never written");
            present.insert(e.body);
        }
    }
    for (auto& b : m.events)
        if (!present.count(b)) bad.push_back("telemetry: acknowledged event " + b.substr(0, b.find(':')) + " lost");
    m.events = std::move(present);
    m.events_pending.clear();
    if (auto ic = store::testing::integrity_check(db); ic != "ok") bad.push_back("integrity_check: " + ic);
    return bad;
}

struct hub_run {
    std::atomic<std::uint64_t> acks{0};
    std::mutex m;
    std::vector<std::string> bad;
    void fail(const std::string& what, const error& e) {
        if (powerloss_vfs::instance().crashed()) return;
        std::lock_guard l(m);
        bad.push_back(what + " failed with the power on: " + e.message);
    }
};

void twin_writer(hub_service& hub, hub_model& m, hub_run& run) {
    for (;;) {
        const auto n = m.counter + 1;
        boost::json::object patch{{"counter", n}, {"pad", store::testing::pad(twin_id, static_cast<std::uint64_t>(n), 200)}};
        m.counter_pending = n;
        auto r = wait<std::int64_t>([&](auto h) { hub.patch_reported({twin_id, ""}, patch, h); });
        if (!r) return run.fail("a reported patch", r.error());
        m.counter = n;
        m.counter_pending.reset();
        ++run.acks;
    }
}

void registry_writer(hub_service& hub, hub_model& m, std::mt19937_64& rng, hub_run& run) {
    for (;;) {
        const std::string id = "hub-reg-" + std::to_string(rng() % 6);
        const auto it = m.etags.find(id);
        result<registry::device_identity> r = error{errc::internal, ""};
        if (it == m.etags.end()) {
            registry::device_identity d;
            d.device_id = id;
            m.identity_pending = {id, any_etag};
            r = wait<registry::device_identity>([&](auto h) { hub.create_device(d, h); });
        } else if (rng() % 3 != 0) {
            auto d = hub.get_device(id);
            if (!d) return run.fail("reading " + id, d.error());
            d->status = d->status == registry::device_status::enabled ? registry::device_status::disabled
                                                                        : registry::device_status::enabled;
            m.identity_pending = {id, it->second + 1};
            r = wait<registry::device_identity>(
                [&](auto h) { hub.update_device(*d, registry::etag_to_string(it->second), h); });
        } else {
            m.identity_pending = {id, std::nullopt};
            auto del = wait<void>([&](auto h) { hub.delete_device(id, registry::etag_to_string(it->second), h); });
            if (!del) return run.fail("deleting " + id, del.error());
            m.etags.erase(id);
            m.identity_pending.reset();
            ++run.acks;
            continue;
        }
        if (!r) return run.fail("writing " + id, r.error());
        if (m.identity_pending->second != any_etag && r->etag != m.identity_pending->second) {
            std::lock_guard l(run.m);
            run.bad.push_back(id + ": the hub acknowledged etag " + std::to_string(r->etag) + ", expected " +
                              std::to_string(*m.identity_pending->second));
        }
        m.etags[id] = r->etag;
        m.identity_pending.reset();
        ++run.acks;
    }
}

void telemetry_writer(hub_service& hub, hub_model& m, std::uint64_t& next, std::mt19937_64& rng, hub_run& run) {
    for (;;) {
        store::event_record e;
        e.source = {"hub-tel-" + std::to_string(rng() % 4), ""};
        e.body = "e" + std::to_string(next) + ":" + store::testing::pad("hub-tel", next, 200);
        ++next;
        {
            std::lock_guard l(run.m);
            m.submitted.insert(e.body);
        }
        m.events_pending = {e.body};
        const auto body = e.body;
        auto r = wait<void>([&](auto h) { hub.append_event(std::move(e), h); });
        if (!r) return run.fail("a telemetry append", r.error());
        m.events.insert(body);
        m.events_pending.clear();
        ++run.acks;
    }
}

struct opened_hub {
    std::unique_ptr<store::store> st;
    std::unique_ptr<hub_service> hub;
    ~opened_hub() {
        hub.reset();  // waits for its writes
        if (st) st->close();
    }
};

std::string open_hub(const std::string& db, opened_hub& o) {
    store::sqlite_open_options opts;
    opts.checkpoint_pages = 8;
    auto st = store::open_sqlite_store(db, opts);
    if (!st) return st.error().message;
    o.st = std::move(*st);
    auto hub = hub_service::open(*o.st, {});
    if (!hub) return hub.error().message;
    o.hub = std::move(*hub);
    return {};
}

TEST(hub_service_powerloss, every_acknowledged_hub_write_survives_power_cuts) {
    const char* env = std::getenv("TWINHUB_POWERLOSS_SEED");
    const std::uint64_t seed = env && *env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    SCOPED_TRACE("TWINHUB_POWERLOSS_SEED=" + std::to_string(seed));
    auto& vfs = powerloss_vfs::instance();
    ASSERT_TRUE(vfs.forget_all());
    vfs.make_default(true);
    store::testing::test_dir dir;
    const std::string db = (dir.path() / "hub.db").string();
    std::mt19937_64 rng(seed);
    hub_model m;
    std::uint64_t next_event = 0, acks = 0;
    {
        opened_hub o;  // first start: default policies, the twin's device; power on throughout
        ASSERT_EQ(open_hub(db, o), "");
        registry::device_identity d;
        d.device_id = twin_id;
        ASSERT_TRUE(wait<registry::device_identity>([&](auto h) { o.hub->create_device(d, h); }));
    }
    constexpr int rounds = 60;
    for (int round = 0; round <= rounds; ++round) {
        opened_hub o;
        ASSERT_EQ(open_hub(db, o), "") << "round " << round << ": reopen after the power cut";
        for (auto& p : check(*o.hub, db, m)) ADD_FAILURE() << "round " << round << ": " << p;
        if (::testing::Test::HasFailure() || round == rounds) {
            if (!::testing::Test::HasFailure()) {
                // The hub takes writes after the last recovery.
                auto r = wait<std::int64_t>(
                    [&](auto h) { o.hub->patch_reported({twin_id, ""}, boost::json::object{{"after", true}}, h); });
                EXPECT_TRUE(r) << r.error().message;
            }
            break;
        }
        const auto c = static_cast<cut>(rng() % static_cast<int>(cut::at_wal_truncate));  // no outside checkpointer here
        const std::uint64_t after = 1 + rng() % 100;
        std::mt19937_64 reg_rng(rng()), tel_rng(rng());
        store::testing::arm_cut(c, rng);
        hub_run run;
        std::vector<std::thread> writers;
        writers.emplace_back([&] { twin_writer(*o.hub, m, run); });
        writers.emplace_back([&] { registry_writer(*o.hub, m, reg_rng, run); });
        writers.emplace_back([&] { telemetry_writer(*o.hub, m, next_event, tel_rng, run); });
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!vfs.crashed()) {
            if ((c == cut::after_acks && run.acks >= after) || run.acks >= 400) vfs.crash();
            if (std::chrono::steady_clock::now() > deadline) {
                ADD_FAILURE() << "round " << round << ": the writes stalled with the power on";
                vfs.crash();
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        for (auto& w : writers) w.join();
        acks += run.acks;
        for (auto& b : run.bad) ADD_FAILURE() << "round " << round << ": " << b;
        o.hub.reset();
        o.st->close();
        o.st.reset();
        ASSERT_EQ(vfs.power_cycle(rng()), "") << "round " << round;
    }
    std::printf("seed %llu: %d power cuts under hub_service, %llu acknowledged hub writes, problems %s\n",
                static_cast<unsigned long long>(seed), rounds, static_cast<unsigned long long>(acks),
                ::testing::Test::HasFailure() ? "yes" : "0");
    EXPECT_GT(acks, static_cast<std::uint64_t>(rounds));
    vfs.make_default(false);
}

}  // namespace
}  // namespace twinhub::service
