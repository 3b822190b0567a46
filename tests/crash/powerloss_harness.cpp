// The power-loss harness: the model of what the store must hold, the checker, the writers and the
// rounds (see powerloss_harness.hpp).
#include "powerloss_harness.hpp"

#include "store/sqlite_store.hpp"

#include <boost/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace twinhub::store::testing {

// Content derived from (tag, n), so that the checker can tell a stored value is exactly the one
// written, without keeping it.
std::string pad(const std::string& tag, std::uint64_t n, std::size_t len) {
    std::uint64_t x = std::hash<std::string>{}(tag) ^ (n * 0x9E3779B97F4A7C15ull);
    std::string out(len, 'a');
    for (auto& c : out) {
        x += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        c = static_cast<char>('a' + (z ^ (z >> 31)) % 26);
    }
    return out;
}

std::string integrity_check(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return "cannot open";
    }
    std::string out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK)
        while (sqlite3_step(s) == SQLITE_ROW) out += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    else
        out = sqlite3_errmsg(db);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

namespace {

// ---- what the store must hold ------------------------------------------------------------------
// Each worker owns one part of the store and has at most one write in flight. `acked` is what it
// holds the store to: every write acknowledged as durable, on top of what was read back after the
// last recovery (which was on disk, so a later power cut must not lose it either). `pending` is the
// write whose completion had not come when the power went: it may or may not be stored.

struct twin_part {
    std::string device;
    twin::twin_document doc;  // the acknowledged document
    std::optional<std::int64_t> pending;  // the version of the write in flight
};

struct registry_part {
    std::string prefix;
    std::map<std::string, std::uint64_t> etags;  // device -> etag; absent: not stored
    std::optional<std::pair<std::string, std::uint64_t>> pending;  // device, etag (0: deleted)
};

struct telemetry_part {
    std::string prefix;
    std::uint64_t next = 0;                            // next event number
    std::vector<std::string> pending;                  // the bodies of the batch in flight
};

struct c2d_part {
    std::string device;
    std::map<std::uint64_t, std::uint32_t> queued;  // seq -> delivery count
    std::uint64_t next_seq = 1;
    std::uint64_t acked_seq = 0;  // the highest acknowledged enqueue: the store's next sequence is above it
    std::optional<std::map<std::uint64_t, std::uint32_t>> pending;  // the queue if the write in flight lands
};

struct model {
    std::vector<twin_part> twins;
    std::vector<registry_part> registries;
    std::vector<telemetry_part> telemetry;
    std::vector<c2d_part> c2d;
    // The telemetry log: partition -> seq -> body, every acknowledged event and all read back.
    std::array<std::map<std::uint64_t, std::string>, default_event_partitions> events;
    std::set<std::string> submitted;  // every event body ever committed, acknowledged or not

    // Sequence numbers the store assigned, from the change listener (before the completion).
    std::mutex assigned_m;
    std::map<std::string, std::pair<std::uint32_t, std::uint64_t>> assigned;
};

std::string event_body(const std::string& prefix, std::uint64_t n) {
    return prefix + "#" + std::to_string(n) + ":" + pad(prefix, n, 200);
}

std::string c2d_body(const std::string& device, std::uint64_t seq) { return pad(device, seq, 300); }

// ---- the checker -------------------------------------------------------------------------------
// Compares the reopened store with the model; returns one line per problem (empty: all is well),
// and on success makes what it read the new baseline.

void check_twins(const snapshot& snap, model& m, std::vector<std::string>& bad) {
    for (auto& t : m.twins) {
        auto it = std::find_if(snap.devices.begin(), snap.devices.end(),
                               [&](auto& d) { return d.identity.device_id == t.device; });
        if (it == snap.devices.end()) {
            bad.push_back("twin " + t.device + ": the device is lost");
            continue;
        }
        const auto v = it->twin.version;
        if (v != t.doc.version && !(t.pending && v == *t.pending)) {
            bad.push_back("twin " + t.device + ": acknowledged version " + std::to_string(t.doc.version) +
                          (v < t.doc.version ? " lost" : " overtaken") + ", stored version " + std::to_string(v));
            continue;
        }
        if (v > 2) {
            auto* c = it->twin.reported.if_contains("counter");
            auto* p = it->twin.reported.if_contains("pad");
            if (!c || !p || c->as_int64() != v || p->as_string() != pad(t.device, static_cast<std::uint64_t>(v), 300))
                bad.push_back("twin " + t.device + ": version " + std::to_string(v) + " has the wrong content");
        }
        t.doc = it->twin;
        t.pending.reset();
    }
}

void check_registry(const snapshot& snap, model& m, std::vector<std::string>& bad) {
    std::map<std::string, const device_record*> stored;
    for (auto& d : snap.devices) stored[d.identity.device_id] = &d;
    for (auto& r : m.registries) {
        std::set<std::string> names;
        for (auto& [id, _] : r.etags) names.insert(id);
        if (r.pending) names.insert(r.pending->first);
        for (auto& [id, d] : stored)
            if (id.rfind(r.prefix, 0) == 0) names.insert(id);
        std::map<std::string, std::uint64_t> now_stored;
        for (auto& id : names) {
            auto it = stored.find(id);
            std::uint64_t got = it == stored.end() ? 0 : it->second->identity.etag;
            auto e = r.etags.find(id);
            std::uint64_t want = e == r.etags.end() ? 0 : e->second;
            bool ok = got == want || (r.pending && r.pending->first == id && r.pending->second == got);
            if (!ok) {
                bad.push_back("identity " + id + ": acknowledged " +
                              (want ? "etag " + std::to_string(want) : std::string("delete")) + " lost, stored " +
                              (got ? "etag " + std::to_string(got) : std::string("nothing")));
                continue;
            }
            if (got > 1 && it->second->identity.status_reason != pad(id, got, 120))
                bad.push_back("identity " + id + ": etag " + std::to_string(got) + " has the wrong content");
            if (got) now_stored[id] = got;
        }
        r.etags = std::move(now_stored);
        r.pending.reset();
    }
}

void check_telemetry(store& s, model& m, std::vector<std::string>& bad) {
    std::set<std::string> present;
    std::array<std::map<std::uint64_t, std::string>, default_event_partitions> read;
    for (std::uint32_t p = 0; p < default_event_partitions; ++p) {
        auto ev = s.read_events(p, 0, 1u << 30);
        if (!ev) {
            bad.push_back("reading partition " + std::to_string(p) + ": " + ev.error().message);
            return;
        }
        std::optional<std::uint64_t> prev;
        for (auto& e : *ev) {
            if (prev && e.sequence_number != *prev + 1)
                bad.push_back("partition " + std::to_string(p) + ": sequence numbers jump from " +
                              std::to_string(*prev) + " to " + std::to_string(e.sequence_number));
            prev = e.sequence_number;
            if (!m.submitted.count(e.body))
                bad.push_back("partition " + std::to_string(p) + ": event " + std::to_string(e.sequence_number) +
                              " holds a body that was never written");
            if (partition_of(e.source, default_event_partitions) != p)
                bad.push_back("event " + std::to_string(e.sequence_number) + " is in the wrong partition");
            present.insert(e.body);
            read[p][e.sequence_number] = e.body;
        }
        for (auto& [seq, body] : m.events[p]) {
            auto it = read[p].find(seq);
            if (it == read[p].end())
                bad.push_back("partition " + std::to_string(p) + ": acknowledged event " + std::to_string(seq) +
                              " lost");
            else if (it->second != body)
                bad.push_back("partition " + std::to_string(p) + ": acknowledged event " + std::to_string(seq) +
                              " holds another body");
        }
    }
    for (auto& t : m.telemetry) {
        // A batch is all or nothing.
        std::size_t landed = 0;
        for (auto& b : t.pending) landed += present.count(b);
        if (landed != 0 && landed != t.pending.size())
            bad.push_back(t.prefix + ": " + std::to_string(landed) + " of the " + std::to_string(t.pending.size()) +
                          " events of one batch are stored");
        t.pending.clear();
    }
    m.events = std::move(read);
}

void check_c2d(store& s, model& m, std::vector<std::string>& bad) {
    auto st = s.load_c2d();
    if (!st) {
        bad.push_back("loading C2D: " + st.error().message);
        return;
    }
    for (auto& c : m.c2d) {
        std::map<std::uint64_t, std::uint32_t> got;
        for (auto& msg : st->messages) {
            if (msg.target.device_id != c.device) continue;
            got[msg.sequence_number] = msg.delivery_count;
            if (msg.body != c2d_body(c.device, msg.sequence_number) || msg.message_id != std::to_string(msg.sequence_number))
                bad.push_back("C2D " + c.device + ": message " + std::to_string(msg.sequence_number) +
                              " has the wrong content");
        }
        if (got != c.queued && !(c.pending && got == *c.pending)) {
            std::ostringstream o;
            o << "C2D " << c.device << ": acknowledged queue";
            for (auto& [q, n] : c.queued) o << ' ' << q << '/' << n;
            o << " lost, stored";
            for (auto& [q, n] : got) o << ' ' << q << '/' << n;
            bad.push_back(o.str());
        }
        if (st->next_message_sequence <= c.acked_seq)
            bad.push_back("C2D " + c.device + ": acknowledged enqueue " + std::to_string(c.acked_seq) +
                          " lost, the next sequence number is " + std::to_string(st->next_message_sequence));
        c.queued = std::move(got);
        c.pending.reset();
        c.next_seq = std::max(c.next_seq, st->next_message_sequence);
    }
}

std::vector<std::string> check(store& s, model& m, const std::string& db) {
    std::vector<std::string> bad;
    auto snap = s.load();
    if (!snap) return {"load: " + snap.error().message};
    check_twins(*snap, m, bad);
    check_registry(*snap, m, bad);
    check_telemetry(s, m, bad);
    check_c2d(s, m, bad);
    if (auto ic = integrity_check(db); ic != "ok") bad.push_back("integrity_check: " + ic);
    return bad;
}

// ---- the workers -------------------------------------------------------------------------------
// Each runs until a commit fails (the power is off) or `stop`; a failure with the power on is a
// problem. Every success counts in `acks`.

struct run_state {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> acks{0};
    enum part { twins, registry, telemetry, c2d, parts };
    std::array<std::atomic<std::uint64_t>, parts> part_acks{};

    void ack(part p) {
        ++part_acks[p];
        ++acks;
    }
    std::uint64_t fewest_part_acks() const {
        std::uint64_t n = UINT64_MAX;
        for (auto& a : part_acks) n = std::min(n, a.load());
        return n;
    }
    std::mutex bad_m;
    std::vector<std::string> bad;

    void fail(const std::string& what, const error& e) {
        if (powerloss_vfs::instance().crashed()) return;
        std::lock_guard l(bad_m);
        bad.push_back(what + " failed with the power on: " + e.message);
    }
};

void twin_worker(store& s, twin_part& t, run_state& rs) {
    while (!rs.stop) {
        auto next = t.doc;
        const auto v = next.version + 1;
        boost::json::object patch{{"counter", v}, {"pad", pad(t.device, static_cast<std::uint64_t>(v), 300)}};
        if (!twin::apply_reported_patch(next, patch, now()) || next.version != v) {
            std::lock_guard l(rs.bad_m);
            rs.bad.push_back("the reported patch of " + t.device + " did not add one version");
            return;
        }
        write_batch b;
        b.put_twin({t.device, ""}, next, expect::revision(static_cast<std::uint64_t>(t.doc.version)));
        t.pending = v;
        if (auto r = s.commit_sync(std::move(b)); !r) return rs.fail("twin write " + t.device, r.error());
        t.doc = std::move(next);
        t.pending.reset();
        rs.ack(run_state::twins);
    }
}

void registry_worker(store& s, registry_part& r, std::mt19937_64& rng, run_state& rs) {
    while (!rs.stop) {
        std::string id = r.prefix + std::to_string(rng() % 6);
        auto it = r.etags.find(id);
        write_batch b;
        std::uint64_t etag = 0;
        if (it == r.etags.end()) {
            registry::device_identity d;
            d.device_id = id;
            d.etag = etag = 1;
            b.put_device(d, expect::absent());
            b.put_twin({id, ""}, twin::new_twin(now()), expect::absent());
        } else if (rng() % 3 != 0) {
            registry::device_identity d;
            d.device_id = id;
            d.etag = etag = it->second + 1;
            d.status_reason = pad(id, etag, 120);
            b.put_device(d, expect::revision(it->second));
        } else {
            b.delete_device(id, expect::present());
        }
        r.pending = {id, etag};
        if (auto res = s.commit_sync(std::move(b)); !res) return rs.fail("identity write " + id, res.error());
        if (etag) r.etags[id] = etag;
        else r.etags.erase(id);
        r.pending.reset();
        rs.ack(run_state::registry);
    }
}

void telemetry_worker(store& s, telemetry_part& t, model& m, std::mt19937_64& rng, run_state& rs) {
    while (!rs.stop) {
        write_batch b;
        const std::size_t n = 1 + rng() % 4;
        std::vector<std::string> bodies;
        for (std::size_t i = 0; i < n; ++i) {
            event_record e;
            e.source = {t.prefix + std::to_string(rng() % 4), ""};
            e.body = event_body(t.prefix, t.next++);
            e.enqueued_time_ns = now().time_since_epoch().count();
            e.application_properties = {{"n", std::to_string(t.next - 1)}};
            bodies.push_back(e.body);
            e.partition = partition_of(e.source, default_event_partitions);
            b.append_event(std::move(e));
        }
        {
            std::lock_guard l(m.assigned_m);
            m.submitted.insert(bodies.begin(), bodies.end());
        }
        t.pending = bodies;
        if (auto r = s.commit_sync(std::move(b)); !r) return rs.fail("telemetry append " + t.prefix, r.error());
        {
            std::lock_guard l(m.assigned_m);
            for (auto& body : bodies) {
                auto a = m.assigned.find(body);
                if (a == m.assigned.end()) {
                    std::lock_guard bl(rs.bad_m);
                    rs.bad.push_back("the change listener never saw an acknowledged event");
                    continue;
                }
                m.events[a->second.first][a->second.second] = body;
                m.assigned.erase(a);
            }
        }
        t.pending.clear();
        rs.ack(run_state::telemetry);
    }
}

void c2d_worker(store& s, c2d_part& c, std::mt19937_64& rng, run_state& rs) {
    while (!rs.stop) {
        write_batch b;
        auto next = c.queued;
        const auto roll = rng() % 10;
        if (c.queued.size() < 3 || roll < 5) {
            c2d_message msg;
            msg.sequence_number = c.next_seq;
            msg.target = {c.device, ""};
            msg.body = c2d_body(c.device, msg.sequence_number);
            msg.message_id = std::to_string(msg.sequence_number);
            msg.enqueued_time_ns = now().time_since_epoch().count();
            msg.expiry_time_ns = msg.enqueued_time_ns + 3'600'000'000'000;
            b.enqueue_c2d(std::move(msg));
            next[c.next_seq] = 0;
        } else if (roll < 8) {
            b.delete_c2d(c.queued.begin()->first);  // completed
            next.erase(next.begin());
        } else {
            auto& [seq, count] = *next.begin();  // abandoned
            b.update_c2d_delivery_count(seq, ++count);
        }
        c.pending = next;
        const bool enqueue = next.size() > c.queued.size();
        if (enqueue) ++c.next_seq;  // never reused, even if this write is lost
        if (auto r = s.commit_sync(std::move(b)); !r) return rs.fail("C2D write " + c.device, r.error());
        if (enqueue) c.acked_seq = c.next_seq - 1;
        c.queued = std::move(next);
        c.pending.reset();
        rs.ack(run_state::c2d);
    }
}

void outside_checkpointer(const std::string& db, run_state& rs) {
    sqlite3* h = nullptr;
    if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
        sqlite3_close(h);
        return rs.fail("opening a second connection", error{errc::storage_error, "cannot open"});
    }
    sqlite3_busy_timeout(h, 10000);
    // A connection opens the WAL at its first statement; until then a checkpoint does nothing.
    if (sqlite3_exec(h, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK) {
        rs.fail("reading through a second connection", error{errc::storage_error, sqlite3_errmsg(h)});
        sqlite3_close(h);
        return;
    }
    while (!rs.stop && !powerloss_vfs::instance().crashed()) {
        int rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && !powerloss_vfs::instance().crashed())
            rs.fail("a TRUNCATE checkpoint", error{errc::storage_error, sqlite3_errmsg(h)});
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    sqlite3_close(h);
}

}  // namespace

void arm_cut(cut c, std::mt19937_64& rng) {
    using ev = powerloss_vfs::io_event;
    auto k = [&](std::uint64_t lo, std::uint64_t hi) { return lo + rng() % (hi - lo + 1); };
    powerloss_vfs::trigger t;
    switch (c) {
    case cut::after_acks: break;
    case cut::at_write:
        t = [n = k(1, 400)](const ev& e) mutable { return e.what == ev::kind::write && --n == 0; };
        break;
    case cut::at_wal_sync:
        t = [n = k(1, 100)](const ev& e) mutable { return e.what == ev::kind::sync && e.wal && --n == 0; };
        break;
    case cut::in_checkpoint:
        t = [n = k(1, 60)](const ev& e) mutable { return e.what == ev::kind::write && e.main_db && --n == 0; };
        break;
    case cut::at_checkpoint_sync:
        t = [n = k(1, 4)](const ev& e) mutable { return e.what == ev::kind::sync && e.main_db && --n == 0; };
        break;
    case cut::at_wal_restart:
        t = [n = k(1, 3)](const ev& e) mutable {
            return e.what == ev::kind::write && e.wal && e.offset == 0 && --n == 0;
        };
        break;
    case cut::after_wal_restart:
        t = [n = k(1, 2), after = k(1, 30)](const ev& e) mutable {
            if (n > 0) {
                if (e.what == ev::kind::write && e.wal && e.offset == 0) --n;
                return false;
            }
            return --after == 0;
        };
        break;
    case cut::at_wal_truncate:
        t = [n = k(1, 3)](const ev& e) mutable { return e.what == ev::kind::truncate && e.wal && --n == 0; };
        break;
    case cut::count: break;
    }
    powerloss_vfs::instance().arm(std::move(t));
}

namespace {

std::uint64_t model_size(const model& m) {
    std::uint64_t n = 0;
    for (auto& t : m.twins) n += t.doc.version > 2;
    for (auto& r : m.registries) n += r.etags.size();
    for (auto& p : m.events) n += p.size();
    for (auto& c : m.c2d) n += c.queued.size();
    return n;
}

result<std::unique_ptr<store>> open_store(const std::string& db, model& m) {
    sqlite_open_options o;
    o.checkpoint_pages = 8;  // a checkpoint every few commits, a WAL restart every few dozen
    auto s = open_sqlite_store(db, o);
    if (!s) return s;
    (*s)->set_change_listener([&m](const write_batch& b) {
        std::lock_guard l(m.assigned_m);
        for (auto& op : b.ops())
            if (auto* e = std::get_if<write_batch::append_event_op>(&op))
                m.assigned[e->e.body] = {e->e.partition, e->e.sequence_number};
    });
    return s;
}

}  // namespace

run_report run_power_cuts(const std::string& dir, const run_options& opt) {
    auto& vfs = powerloss_vfs::instance();
    const std::string db = dir + "/store.db";
    std::mt19937_64 rng(opt.seed);
    run_report rep;
    model m;
    m.twins.push_back({"twin-0", {}, {}});
    m.twins.push_back({"twin-1", {}, {}});
    m.registries.push_back({"reg-", {}, {}});
    m.telemetry.push_back({"tel-", 0, {}});
    m.c2d.push_back({"c2d-0", {}, 1, 0, {}});

    // Set-up with the power on throughout: the identities the workers write to.
    {
        auto s = open_store(db, m);
        if (!s) {
            rep.problems.push_back("first open: " + s.error().message);
            return rep;
        }
        write_batch b;
        for (auto& t : m.twins) {
            registry::device_identity d;
            d.device_id = t.device;
            d.etag = 1;
            t.doc = twin::new_twin(now());
            b.put_device(d, expect::absent());
            b.put_twin({t.device, ""}, t.doc, expect::absent());
        }
        registry::device_identity d;
        d.device_id = m.c2d[0].device;
        d.etag = 1;
        b.put_device(d, expect::absent());
        if (auto r = (*s)->commit_sync(std::move(b)); !r) {
            rep.problems.push_back("set-up: " + r.error().message);
            return rep;
        }
    }
    if (opt.setup_on_disk && !vfs.forget_all()) rep.problems.push_back("set-up: a file is still open");
    vfs.reset_counters();

    for (int round = 0; round < opt.rounds; ++round) {
        const auto c = opt.only_after_acks ? cut::after_acks : static_cast<cut>(rng() % static_cast<int>(cut::count));
        const std::string where = "round " + std::to_string(round) + " (" + cut_names[static_cast<int>(c)] + "): ";
        auto s = open_store(db, m);
        if (!s) {
            rep.problems.push_back(where + "reopen after the power cut: " + s.error().message);
            break;
        }
        // What the last cut left: held to the model (nothing to hold it to before round 0).
        const auto checked = model_size(m);
        for (auto& p : check(**s, m, db)) rep.problems.push_back(where + p);
        if (!rep.problems.empty()) break;
        rep.checked += checked;

        // Writes until the power goes.
        run_state rs;
        const std::uint64_t after = opt.cut_after_acks ? opt.cut_after_acks : 1 + rng() % 150;
        std::vector<std::mt19937_64> rngs;
        for (int i = 0; i < 3; ++i) rngs.emplace_back(rng());
        arm_cut(c, rng);
        {
            std::vector<std::thread> workers;
            std::atomic<int> writing{0};  // store writers still running
            auto spawn = [&](auto f) {
                ++writing;
                workers.emplace_back([&writing, f] {
                    f();
                    --writing;
                });
            };
            for (auto& t : m.twins) spawn([&, &t = t] { twin_worker(**s, t, rs); });
            spawn([&] { registry_worker(**s, m.registries[0], rngs[0], rs); });
            spawn([&] { telemetry_worker(**s, m.telemetry[0], m, rngs[1], rs); });
            spawn([&] { c2d_worker(**s, m.c2d[0], rngs[2], rs); });
            // Some rounds also have another connection beside the store (a tool, a backup) run
            // TRUNCATE checkpoints, which reset the WAL to zero bytes.
            if (c == cut::at_wal_truncate || rng() % 4 == 0)
                workers.emplace_back([&] { outside_checkpointer(db, rs); });
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            for (;;) {
                // (writing first: a writer that stopped before the power went is a problem.)
                const bool idle = writing == 0, late = std::chrono::steady_clock::now() > deadline;
                if ((idle || late) && !vfs.crashed()) {
                    // Never with a sound store: every writer failed, or none got 400 writes
                    // acknowledged in a minute.
                    rs.stop = true;
                    vfs.crash();
                    std::lock_guard l(rs.bad_m);
                    rs.bad.push_back(idle ? "every writer stopped with the power on" : "the writes stalled");
                    break;
                }
                if (vfs.crashed()) {
                    ++rep.fired[static_cast<std::size_t>(c)];
                    break;
                }
                const auto acks = rs.acks.load();
                if (c == cut::after_acks && acks >= after && rs.fewest_part_acks() >= opt.each_part_acks) {
                    vfs.crash();
                    ++rep.fired[static_cast<std::size_t>(c)];
                    break;
                }
                if (acks >= opt.max_acks) {
                    vfs.crash();
                    ++rep.fallback;
                    break;
                }
                std::this_thread::sleep_for(std::chrono::microseconds(100));
            }
            for (auto& w : workers) w.join();
        }
        rep.acks += rs.acks;
        s->reset();  // every connection closes with the power off: no checkpoint, no WAL delete
        for (auto& b : rs.bad) rep.problems.push_back(where + b);
        powerloss_vfs::cycle_report cr;
        if (auto e = vfs.power_cycle(rng(), opt.how, &cr); !e.empty()) rep.problems.push_back(where + e);
        rep.lost.files += cr.files;
        rep.lost.kept += cr.kept;
        rep.lost.dropped += cr.dropped;
        rep.lost.torn += cr.torn;
        ++rep.rounds;
        if (!rep.problems.empty()) break;
    }
    if (rep.problems.empty()) {
        // The last cut, checked; then the store takes new writes.
        auto s = open_store(db, m);
        if (!s) {
            rep.problems.push_back("final reopen: " + s.error().message);
            return rep;
        }
        rep.checked += model_size(m);
        for (auto& p : check(**s, m, db)) rep.problems.push_back("after the last cut: " + p);
        run_state rs;
        rs.stop = false;
        std::thread w([&] {
            auto& t = m.twins[0];
            auto next = t.doc;
            boost::json::object patch{{"counter", next.version + 1},
                                      {"pad", pad(t.device, static_cast<std::uint64_t>(next.version + 1), 300)}};
            (void)twin::apply_reported_patch(next, patch, now());
            write_batch b;
            b.put_twin({t.device, ""}, next, expect::revision(static_cast<std::uint64_t>(t.doc.version)));
            if (auto r = (*s)->commit_sync(std::move(b)); !r)
                rs.bad.push_back("a write after the last recovery: " + r.error().message);
        });
        w.join();
        for (auto& b : rs.bad) rep.problems.push_back(b);
    }
    rep.io = vfs.stats();
    return rep;
}

std::string summary(const run_report& r) {
    std::ostringstream o;
    o << r.rounds << " power cuts, " << r.acks << " acknowledged writes, " << r.checked
      << " acknowledged records checked after recovery, problems " << r.problems.size() << "; cuts:";
    for (std::size_t i = 0; i < r.fired.size(); ++i) o << ' ' << cut_names[i] << '=' << r.fired[i];
    o << " fallback=" << r.fallback << "; unsynced writes kept " << r.lost.kept << ", dropped " << r.lost.dropped
      << ", torn " << r.lost.torn << "; I/O: " << r.io.writes << " writes, " << r.io.syncs << " syncs, "
      << r.io.db_writes << " checkpoint page writes, " << r.io.db_syncs << " checkpoint syncs, " << r.io.wal_starts
      << " WAL (re)starts, " << r.io.wal_truncates << " WAL truncations";
    return o.str();
}

// The self-tests' verdict: the checker reported acknowledged writes lost in each part of the store.
}  // namespace twinhub::store::testing
