// Several nodes on one shared store (issue 18 item 2): applies the record changes other nodes
// committed (store::remote_change, from the store's change feed, in commit order) to this node's
// record cache and policies, and tells the observers as a local write would: on_twin_changed under
// the lock; desired patches (in $version order, each once), revocations and credential changes
// after it. The database is the source of truth; the feed only says what changed, with the
// record's state as of that commit.
//
// A record is replaced only when the change is newer than what the cache holds (twin version,
// identity etag): a change the snapshot already had, or one older than a local write that
// completed meanwhile, is skipped. Presence (connectionState, lastActivityTime, modelId) is
// node-local and kept. A local write in flight on a record that another node changed fails in the
// store with precondition_failed (every write is conditional on the revision it was built on).
//
// Thread safety: call from one thread at a time (the store's feed thread); takes cache.mu.
#pragma once

#include "service/change_notifier.hpp"
#include "service/policy_service.hpp"
#include "service/record_cache.hpp"
#include "store/store.hpp"

#include <vector>

namespace twinhub::service {

void apply_remote_changes(std::vector<store::remote_change>& changes, record_cache& cache, policy_service& policies,
                          store::store& s, const change_notifier& notifier);

}  // namespace twinhub::service
