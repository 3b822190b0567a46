// PostgreSQL-specific behaviour beyond the conformance suite: the pipelined group commit falling
// back to one savepoint per batch when a pipelined statement fails, the schema version check, and
// the store URL's pool parameter. Runs against a throwaway cluster (tests/pgtest) it starts itself.
#include "pg_cluster.hpp"
#include "store/postgres_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <future>
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
    EXPECT_EQ(std::string(PQgetvalue(r, 0, 0)), "2");  // the writer and the one reader
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

}  // namespace
}  // namespace twinhub::store
