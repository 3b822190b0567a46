// The SQLite backend, the embedded default: one database file in WAL mode with synchronous=FULL,
// so a batch is on disk (fsynced) before its completion reports success. One writer thread
// group-commits: it takes every queued batch (up to a cap), applies each inside its own SAVEPOINT
// within one transaction (a failed condition rolls back only that batch), COMMITs once, then runs
// the change listener and the completions in commit order. Documents are serialized to JSON on
// the committing thread, not the writer. Reads (load, read_events) use a second connection.
//
// The schema carries a schema_version table and is upgraded by forward-only numbered migrations
// at open; a database newer than this binary is refused. The database and its -wal and -shm files
// are created with mode 0600 (they hold keys).
//
// Thread safety: as store.hpp (every member function from any thread).
#pragma once

#include "store/store.hpp"

#include <memory>
#include <string>

namespace twinhub::store {

// The schema version that open_sqlite_store migrates to.
inline constexpr int sqlite_schema_version = 3;

struct sqlite_open_options {
    // Open an existing store for reading only (CLI, tools, backups beside a running twinhubd): no
    // creation, no migration (the schema must be this binary's), no change to file modes; every
    // commit fails with storage_error. Safe while another process writes the store.
    bool read_only = false;
    // WAL pages after which a background checkpoint runs; at four times as many the writer
    // checkpoints between commits itself, so that the WAL restarts. SQLite's default threshold;
    // the power-loss tests lower it so that checkpoints and WAL restarts happen every few commits.
    int checkpoint_pages = 1000;
};

// Opens or creates the store at `path` (a file; its directory must exist) and migrates it; with
// `read_only`, opens an existing one as it is. The database is touched only through SQLite (never
// a plain open/close, which would drop SQLite's POSIX locks). Fails with storage_error (cannot
// open or create, schema newer than this binary, I/O) or corrupt_data (not a database, damaged).
result<std::unique_ptr<store>> open_sqlite_store(const std::string& path, sqlite_open_options opts = {});

}  // namespace twinhub::store
