// The PostgreSQL backend (issue 18): the same contract as the SQLite backend (store.hpp), in a
// PostgreSQL database reached with libpq. One writer connection group-commits: it takes every
// queued batch (up to a cap), applies each inside its own SAVEPOINT within one transaction (a
// failed condition or statement rolls back only that batch), COMMITs once (one WAL flush on the
// server, synchronous_commit = on), then runs the change listener and the completions in commit
// order on the writer thread. Reads (load, read_events, load_c2d) use a pool of connections.
// Statements are prepared once per connection; parameters and results travel in binary.
//
// The schema carries a schema_version table and is upgraded by forward-only numbered migrations
// at open (in one transaction, the version row locked FOR UPDATE); a database newer than this
// binary is refused. SQL used: BIGINT, TEXT, BYTEA, primary keys, secondary indexes,
// INSERT ... ON CONFLICT DO UPDATE, GREATEST, SAVEPOINT, SELECT ... FOR UPDATE (see
// docs/architecture.md on CockroachDB and YugabyteDB).
//
// Thread safety: as store.hpp (every member function from any thread).
#pragma once

#include "store/store.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace twinhub::store {

inline constexpr int postgres_schema_version = 2;
inline constexpr int default_postgres_pool = 4;

// "postgresql://..." or "postgres://...": a store URL rather than a path.
bool is_postgres_url(std::string_view s) noexcept;

// Opens the store in the database that `url` names (libpq's URL syntax:
// postgresql://user:password@host:port/database?sslmode=...), creating and migrating its tables.
// The query parameter pool=N (1-64, default 4; twinhub's own, not passed to libpq) sets the number
// of reader connections. Fails with invalid_argument (malformed pool), storage_error (cannot
// connect, schema newer than this binary, SQL failure) or corrupt_data.
result<std::unique_ptr<store>> open_postgres_store(const std::string& url);

}  // namespace twinhub::store
