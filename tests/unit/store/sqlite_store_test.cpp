// What only the SQLite backend promises: private files, the schema version table, refusal of a
// newer schema or of a file that is not a database.
#include "store/sqlite_store.hpp"
#include "test_dir.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace twinhub::store {
namespace {

using testing::test_dir;

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
}

// Runs one SQL statement on the file directly and returns the first column of the first row.
std::string query(const std::filesystem::path& db, const char* sql) {
    sqlite3* h = nullptr;
    EXPECT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    std::string out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(h, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(h);
    return out;
}

TEST(sqlite_store, files_are_created_with_mode_0600) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    ::umask(022);  // the usual umask would give 0644
    auto s = open_sqlite_store(path.string());
    ASSERT_TRUE(s) << s.error().message;
    write_batch b;
    b.put_session({"dev1", {}});
    ASSERT_TRUE((*s)->commit_sync(std::move(b)));
    for (auto suffix : {"", "-wal", "-shm"}) {
        auto p = dir.path() / ("store.db" + std::string(suffix));
        ASSERT_TRUE(std::filesystem::exists(p)) << p;
        EXPECT_EQ(mode_of(p), 0600u) << p;
    }
}

TEST(sqlite_store, existing_files_are_narrowed_to_0600) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    {
        auto s = open_sqlite_store(path.string());
        ASSERT_TRUE(s);
    }
    ::chmod(path.c_str(), 0644);
    auto s = open_sqlite_store(path.string());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(mode_of(path), 0600u);
}

TEST(sqlite_store, schema_version_table_holds_the_current_version) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    {
        auto s = open_sqlite_store(path.string());
        ASSERT_TRUE(s) << s.error().message;
    }
    EXPECT_EQ(query(path, "SELECT version FROM schema_version"), std::to_string(sqlite_schema_version));
    EXPECT_EQ(query(path, "SELECT count(*) FROM schema_version"), "1");
    EXPECT_EQ(query(path, "PRAGMA journal_mode"), "wal");
    // Reopening does not migrate again.
    auto s = open_sqlite_store(path.string());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(query(path, "SELECT count(*) FROM schema_version"), "1");
}

TEST(sqlite_store, version_1_store_is_migrated_to_version_2_keeping_its_data) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    {
        auto s = open_sqlite_store(path.string());
        ASSERT_TRUE(s);
        write_batch b;
        b.put_session({"dev1", {{"#", 1}}});
        ASSERT_TRUE((*s)->commit_sync(std::move(b)));
    }
    // Turn it back into a version 1 store, as twinhub releases before the C2D queue wrote it.
    query(path, "DROP TABLE c2d");
    query(path, "DROP TABLE feedback");
    query(path, "DROP TABLE settings");
    query(path, "DELETE FROM sqlite_sequence");
    query(path, "UPDATE schema_version SET version = 1");
    ASSERT_EQ(query(path, "SELECT count(*) FROM sqlite_master WHERE name = 'c2d'"), "0");
    auto s = open_sqlite_store(path.string());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(query(path, "SELECT version FROM schema_version"), std::to_string(sqlite_schema_version));
    auto snap = (*s)->load();
    ASSERT_TRUE(snap);
    ASSERT_EQ(snap->sessions.size(), 1u);
    auto c2d = (*s)->load_c2d();
    ASSERT_TRUE(c2d) << c2d.error().message;
    EXPECT_TRUE(c2d->messages.empty());
    EXPECT_EQ(c2d->next_message_sequence, 1u);
}

TEST(sqlite_store, newer_schema_is_refused_with_a_clear_message) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    {
        auto s = open_sqlite_store(path.string());
        ASSERT_TRUE(s);
    }
    query(path, "UPDATE schema_version SET version = 999");
    auto s = open_sqlite_store(path.string());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::storage_error);
    EXPECT_NE(s.error().message.find("999"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
}

TEST(sqlite_store, checkpoint_pages_below_one_is_refused) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    sqlite_open_options o;
    o.checkpoint_pages = 0;
    auto s = open_sqlite_store(path.string(), o);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::invalid_argument);
    EXPECT_NE(s.error().message.find("checkpoint_pages"), std::string::npos) << s.error().message;
    EXPECT_FALSE(std::filesystem::exists(path)) << "refused before anything was created";
}

TEST(sqlite_store, file_that_is_not_a_database_is_refused_as_corrupt) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    std::ofstream(path) << std::string(8192, 'x');
    auto s = open_sqlite_store(path.string());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::corrupt_data) << s.error().message;
}

TEST(sqlite_store, missing_directory_fails_with_storage_error) {
    test_dir dir;
    auto s = open_sqlite_store((dir.path() / "no" / "such" / "store.db").string());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::storage_error);
    EXPECT_NE(s.error().message.find("store.db"), std::string::npos);
}

TEST(sqlite_store, damaged_document_loads_as_corrupt_data) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    {
        auto s = open_sqlite_store(path.string());
        ASSERT_TRUE(s);
        write_batch b;
        registry::device_identity d;
        d.device_id = "dev1";
        b.put_device(d);
        ASSERT_TRUE((*s)->commit_sync(std::move(b)));
    }
    query(path, "UPDATE devices SET doc = '{not json'");
    auto s = open_sqlite_store(path.string());
    ASSERT_TRUE(s);
    auto snap = (*s)->load();
    ASSERT_FALSE(snap);
    EXPECT_EQ(snap.error().code, errc::corrupt_data);
}

// Checkpoints run on their own thread (not inside the writer's COMMIT): pages reach the database
// file while the store is open, and the WAL does not hold everything ever written.
TEST(sqlite_store, background_checkpoints_move_pages_to_the_database_and_bound_the_wal) {
    test_dir dir;
    auto path = dir.path() / "store.db";
    auto s = open_sqlite_store(path.string());
    ASSERT_TRUE(s);
    const std::string body(4000, 'x');
    constexpr int commits = 100, per_commit = 100;  // ~40 MB of event bodies in all
    for (int c = 0; c < commits; ++c) {
        write_batch b;
        for (int i = 0; i < per_commit; ++i) {
            event_record e;
            e.source = {"dev1", ""};
            e.partition = partition_of(e.source, default_event_partitions);
            e.body = body;
            b.append_event(std::move(e));
        }
        ASSERT_TRUE((*s)->commit_sync(std::move(b)));
    }
    const auto written = static_cast<std::uintmax_t>(commits) * per_commit * body.size();
    // The checkpointer catches up shortly after the last commit.
    std::uintmax_t db_size = 0;
    for (int i = 0; i < 100 && db_size < written; ++i) {
        db_size = std::filesystem::file_size(path);
        if (db_size < written) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GE(db_size, written);
    EXPECT_LT(std::filesystem::file_size(dir.path() / "store.db-wal"), written / 2);
    auto events = (*s)->read_events(partition_of({"dev1", ""}, default_event_partitions), 0, commits * per_commit + 1);
    ASSERT_TRUE(events);
    EXPECT_EQ(events->size(), static_cast<std::size_t>(commits * per_commit));
}

}  // namespace
}  // namespace twinhub::store
