// The in-memory backend: the store contract of store.hpp with nothing on disk. First-class for
// tests and for running the hub without a data directory: same conditions, cascades, per-batch
// atomicity, group commit on a store-owned thread, completion order and per-partition event
// sequence numbers as the SQLite backend; "durable" here means applied.
// Thread safety: as store.hpp (every member function from any thread).
#pragma once

#include "store/store.hpp"

#include <memory>

namespace twinhub::store {

std::unique_ptr<store> make_memory_store();

}  // namespace twinhub::store
