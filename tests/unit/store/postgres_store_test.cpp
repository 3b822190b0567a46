// PostgreSQL-specific behaviour beyond the conformance suite: the pipelined group commit falling
// back to one savepoint per batch when a pipelined statement fails, the schema version check, and
// the store URL's pool parameter, and two stores on one database (two hub nodes, issue 18 item 2)
// numbering events, C2D messages and feedback records without collisions. Runs against a throwaway cluster (tests/pgtest) it starts itself.
#include "pg_cluster.hpp"
#include "store/postgres_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace twinhub::store {
namespace {

twinhub::testing::pg_cluster* cluster = nullptr;

class pg_environment : public ::testing::Environment {
public:
    void SetUp() override {
        owned_ = twinhub::testing::pg_cluster::start();
        cluster = owned_.get();
    }
    void TearDown() override {
        cluster = nullptr;
        owned_.reset();
    }

private:
    std::unique_ptr<twinhub::testing::pg_cluster> owned_;
};
const auto* const pg_env = ::testing::AddGlobalTestEnvironment(new pg_environment);

std::string fresh_db() {
    static int n = 0;
    std::string name = "p" + std::to_string(n++);
    cluster->create_database(name);
    return cluster->url(name);
}

void sql(const std::string& url, const char* statement) {
    PGconn* c = PQconnectdb(url.c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult* r = PQexec(c, statement);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
}

registry::device_identity device(const std::string& id) {
    registry::device_identity d;
    d.device_id = id;
    d.etag = 1;
    return d;
}

TEST(postgres_store, a_failing_pipelined_twin_write_fails_alone_and_the_rest_of_its_group_commits) {
    auto s = open_postgres_store(fresh_db());
    ASSERT_TRUE(s) << s.error().message;
    auto& st = **s;
    constexpr int n = 20;
    {
        write_batch b;
        for (int i = 0; i < n; ++i) {
            b.put_device(device("d" + std::to_string(i)), expect::absent());
            b.put_twin({"d" + std::to_string(i), ""}, twin::new_twin(now()));
        }
        ASSERT_TRUE(st.commit_sync(std::move(b)));
    }
    // Hold the writer thread in a completion, so that the next n batches form one group.
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> held;
    {
        write_batch b;
        b.put_setting("hold", "{}");
        st.commit(std::move(b), [&, released](result<void>) {
            held.set_value();
            released.wait();
        });
    }
    held.get_future().wait();
    std::vector<std::promise<result<void>>> done(n);
    for (int i = 0; i < n; ++i) {
        auto t = twin::new_twin(now());
        t.version = 5;
        // Not UTF-8: PostgreSQL refuses the text, which aborts the pipelined transaction.
        t.tags["x"] = i == 7 ? std::string("bad \xff\xfe bytes") : "ok " + std::to_string(i);
        write_batch b;
        b.put_twin({"d" + std::to_string(i), ""}, t, expect::present());
        st.commit(std::move(b), [&done, i](result<void> r) { done[i].set_value(std::move(r)); });
    }
    release.set_value();
    for (int i = 0; i < n; ++i) {
        auto r = done[i].get_future().get();
        if (i == 7) {
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, errc::storage_error);
        } else {
            EXPECT_TRUE(r) << i << ": " << r.error().message;
        }
    }
    auto snap = st.load();
    ASSERT_TRUE(snap) << snap.error().message;
    ASSERT_EQ(snap->devices.size(), static_cast<std::size_t>(n));
    for (auto& d : snap->devices) {
        const bool bad = d.identity.device_id == "d7";
        EXPECT_EQ(d.twin.version, bad ? twin::new_twin(now()).version : 5) << d.identity.device_id;
        EXPECT_EQ(d.twin.tags.contains("x"), !bad) << d.identity.device_id;
    }
}

TEST(postgres_store, a_database_with_a_newer_schema_is_refused) {
    auto url = fresh_db();
    {
        auto s = open_postgres_store(url);
        ASSERT_TRUE(s) << s.error().message;
    }
    sql(url, "UPDATE schema_version SET version = 99");
    auto s = open_postgres_store(url);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::storage_error);
    EXPECT_NE(s.error().message.find("99"), std::string::npos) << s.error().message;
}

TEST(postgres_store, pool_is_taken_from_the_url_and_checked) {
    auto url = fresh_db();
    auto one = open_postgres_store(url + "?pool=1&connect_timeout=5");
    ASSERT_TRUE(one) << one.error().message;
    // One reader connection serves concurrent readers one after another.
    auto a = std::async(std::launch::async, [&] { return (*one)->load(); });
    auto b = std::async(std::launch::async, [&] { return (*one)->load_c2d(); });
    EXPECT_TRUE(a.get());
    EXPECT_TRUE(b.get());
    for (auto bad : {"?pool=0", "?pool=65", "?pool=x"}) {
        auto s = open_postgres_store(url + bad);
        ASSERT_FALSE(s) << bad;
        EXPECT_EQ(s.error().code, errc::invalid_argument);
    }
}

TEST(postgres_store, an_unreachable_server_is_a_storage_error_without_the_password) {
    auto s = open_postgres_store("postgresql://twinhub:s3cret-pw@127.0.0.1:1/nothing?connect_timeout=2");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::storage_error);
    EXPECT_EQ(s.error().message.find("s3cret-pw"), std::string::npos) << s.error().message;
}

TEST(postgres_store, connections_cut_by_the_server_are_reconnected_for_the_next_write_and_read) {
    auto url = fresh_db();
    auto s = open_postgres_store(url + "?pool=1");
    ASSERT_TRUE(s) << s.error().message;
    auto& st = **s;
    {
        write_batch b;
        b.put_setting("before", "{}");
        ASSERT_TRUE(st.commit_sync(std::move(b)));
        ASSERT_TRUE(st.load());
    }
    // What a server restart or an idle timeout does to the store's writer and reader connections.
    PGconn* c = PQconnectdb(url.c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK);
    PGresult* r = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    EXPECT_EQ(std::string(PQgetvalue(r, 0, 0)), "3");  // the writer, the one reader, the change feed
    PQclear(r);
    // pg_terminate_backend only signals: wait until both are gone, so that the next write meets a
    // closed connection rather than racing its end.
    for (int i = 0;; ++i) {
        r = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND pid <> pg_backend_pid()");
        const std::string left = PQgetvalue(r, 0, 0);
        PQclear(r);
        if (left == "0") break;
        ASSERT_LT(i, 1000) << "the store's backends did not end";
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling the server's state
    }
    PQfinish(c);
    {
        write_batch b;
        b.put_setting("after", "{\"n\":1}");
        auto w = st.commit_sync(std::move(b));
        EXPECT_TRUE(w) << w.error().message;
    }
    auto snap = st.load();
    ASSERT_TRUE(snap) << snap.error().message;
    ASSERT_EQ(snap->settings.size(), 2u);
    EXPECT_EQ(snap->settings[0].first, "after");
    EXPECT_EQ(snap->settings[1].first, "before");
}

event_record event_of(const std::string& body, std::uint32_t partition) {
    event_record e;
    e.source = {"d0", ""};
    e.body = body;
    e.enqueued_time_ns = 1;
    e.partition = partition;
    return e;
}

// Two nodes on one database: each store numbers what it writes in the database, inside its
// commit, so concurrent writers through both never collide, and each partition's events stay
// contiguous and in commit order.
TEST(postgres_store, two_stores_on_one_database_number_events_c2d_and_feedback_without_collisions) {
    auto url = fresh_db();
    auto a = open_postgres_store(url);
    auto b = open_postgres_store(url);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE((*a)->allocates_sequence_numbers());
    {
        write_batch w;
        w.put_device(device("d0"), expect::absent());
        ASSERT_TRUE((*a)->commit_sync(std::move(w)));
    }
    constexpr int per_thread = 150;
    std::vector<store*> nodes{a->get(), b->get()};
    std::mutex m;
    std::vector<std::uint64_t> c2d_seqs, fb_seqs;
    std::atomic<int> failures{0};
    auto writer = [&](int node, int t) {
        std::vector<std::future<result<void>>> pending;
        for (int i = 0; i < per_thread; ++i) {
            const std::string tag = std::to_string(node) + "." + std::to_string(t) + "." + std::to_string(i);
            write_batch w;
            w.append_event(event_of(tag, static_cast<std::uint32_t>(i % 2)));
            if (i % 3 == 0) w.append_event(event_of(tag + "b", 1));
            auto c = std::make_shared<std::uint64_t>(0), f = std::make_shared<std::uint64_t>(0);
            c2d_message msg;
            msg.target = {"d0", ""};
            msg.body = tag;
            w.enqueue_c2d(msg, c);
            feedback_record fr;
            fr.original_message_id = tag;
            fr.status_code = "Success";
            w.append_feedback(fr, f);
            auto pr = std::make_shared<std::promise<result<void>>>();
            pending.push_back(pr->get_future());
            nodes[node]->commit(std::move(w), [&, pr, c, f](result<void> r) {
                if (r) {
                    std::lock_guard l(m);
                    c2d_seqs.push_back(*c);
                    fb_seqs.push_back(*f);
                }
                pr->set_value(std::move(r));
            });
            if (i % 16 == 15)
                for (auto& p : pending) failures += p.get() ? 0 : 1;
            if (i % 16 == 15) pending.clear();
        }
        for (auto& p : pending) failures += p.get() ? 0 : 1;
    };
    std::vector<std::thread> threads;
    for (int node = 0; node < 2; ++node)
        for (int t = 0; t < 2; ++t) threads.emplace_back(writer, node, t);
    for (auto& t : threads) t.join();
    ASSERT_EQ(failures.load(), 0);
    constexpr std::size_t batches = 4 * per_thread;
    ASSERT_EQ(c2d_seqs.size(), batches);
    EXPECT_EQ(std::set<std::uint64_t>(c2d_seqs.begin(), c2d_seqs.end()).size(), batches);
    EXPECT_EQ(std::set<std::uint64_t>(fb_seqs.begin(), fb_seqs.end()).size(), batches);
    // Every acknowledged message is stored under the number its completion reported.
    auto st = (*b)->load_c2d();
    ASSERT_TRUE(st) << st.error().message;
    ASSERT_EQ(st->messages.size(), batches);
    std::set<std::uint64_t> stored;
    for (auto& msg : st->messages) stored.insert(msg.sequence_number);
    EXPECT_EQ(stored, std::set<std::uint64_t>(c2d_seqs.begin(), c2d_seqs.end()));
    EXPECT_EQ(st->feedback.size(), batches);
    EXPECT_GT(st->next_message_sequence, *stored.rbegin());
    // Both partitions: contiguous from 0, every body exactly once.
    std::size_t total = 0;
    for (std::uint32_t part = 0; part < 2; ++part) {
        auto ev = (*a)->read_events(part, 0, 10000);
        ASSERT_TRUE(ev) << ev.error().message;
        std::set<std::string> bodies;
        for (std::size_t i = 0; i < ev->size(); ++i) {
            EXPECT_EQ((*ev)[i].sequence_number, i) << "partition " << part;
            bodies.insert((*ev)[i].body);
        }
        EXPECT_EQ(bodies.size(), ev->size());
        total += ev->size();
    }
    EXPECT_EQ(total, batches + 4 * ((per_thread + 2) / 3));
}

// Conditional twin writes from two nodes with the same base version: exactly one wins each round,
// the other gets precondition_failed (no lost update whatever either node has in memory).
TEST(postgres_store, two_stores_writing_one_twin_at_the_same_version_let_exactly_one_win) {
    auto url = fresh_db();
    auto a = open_postgres_store(url);
    auto b = open_postgres_store(url);
    ASSERT_TRUE(a && b);
    {
        write_batch w;
        w.put_device(device("d0"), expect::absent());
        auto t = twin::new_twin(now());
        t.version = 1;
        w.put_twin({"d0", ""}, t);
        ASSERT_TRUE((*a)->commit_sync(std::move(w)));
    }
    for (std::uint64_t v = 1; v <= 30; ++v) {
        std::vector<std::future<result<void>>> r;
        for (auto* s : {a->get(), b->get()}) {
            auto t = twin::new_twin(now());
            t.version = v + 1;
            t.tags["by"] = s == a->get() ? "a" : "b";
            write_batch w;
            w.put_twin({"d0", ""}, t, expect::revision(v));
            auto pr = std::make_shared<std::promise<result<void>>>();
            r.push_back(pr->get_future());
            s->commit(std::move(w), [pr](result<void> x) { pr->set_value(std::move(x)); });
        }
        auto ra = r[0].get(), rb = r[1].get();
        ASSERT_NE(static_cast<bool>(ra), static_cast<bool>(rb)) << "round " << v;
        EXPECT_EQ((ra ? rb : ra).error().code, errc::precondition_failed);
    }
    auto snap = (*b)->load();
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->devices.at(0).twin.version, 31u);
}

// A database written by schema 1 (event numbers only in the events table) keeps numbering after
// the migration to schema 2's counter rows.
TEST(postgres_store, the_event_counter_migration_continues_after_the_stored_events) {
    auto url = fresh_db();
    {
        auto s = open_postgres_store(url);
        ASSERT_TRUE(s);
        write_batch w;
        for (int i = 0; i < 3; ++i) w.append_event(event_of("old" + std::to_string(i), 2));
        ASSERT_TRUE((*s)->commit_sync(std::move(w)));
    }
    sql(url, "DROP TABLE event_counters, changes, nodes, presence, method_calls, method_results; "
             "DELETE FROM counters WHERE name = 'change'; "
             "UPDATE schema_version SET version = 1");
    auto s = open_postgres_store(url);
    ASSERT_TRUE(s) << s.error().message;
    write_batch w;
    w.append_event(event_of("new", 2));
    ASSERT_TRUE((*s)->commit_sync(std::move(w)));
    auto ev = (*s)->read_events(2, 0, 10);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->size(), 4u);
    EXPECT_EQ((*ev)[3].sequence_number, 3u);
    EXPECT_EQ((*ev)[3].body, "new");
}

}  // namespace
}  // namespace twinhub::store
