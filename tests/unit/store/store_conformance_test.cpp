// One conformance suite for every store backend: the contract of src/store/store.hpp.
#include "store/memory_store.hpp"
#include "store/sqlite_store.hpp"
#include "test_dir.hpp"
#ifdef TWINHUB_CONFORMANCE_POSTGRES
#include "pg_cluster.hpp"
#include "store/postgres_store.hpp"

#include <map>
#endif

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

namespace twinhub::store {
namespace {

using testing::test_dir;

struct backend {
    std::string name;
    bool persistent;
    // Opens (or reopens) the backend's store in `dir`.
    std::function<std::unique_ptr<store>(const std::filesystem::path& dir)> open;
};

std::ostream& operator<<(std::ostream& os, const backend& b) { return os << b.name; }

backend memory_backend() {
    return {"memory", false, [](const std::filesystem::path&) { return make_memory_store(); }};
}

backend sqlite_backend() {
    return {"sqlite", true, [](const std::filesystem::path& dir) {
                auto s = open_sqlite_store((dir / "store.db").string());
                if (!s) ADD_FAILURE() << s.error().message;
                return s ? std::move(*s) : nullptr;
            }};
}

#ifdef TWINHUB_CONFORMANCE_POSTGRES
// One PostgreSQL cluster for the whole run (this binary runs as one ctest): each test directory
// gets its own database, the same one again when the test reopens the store.
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

backend postgres_backend() {
    return {"postgresql", true, [](const std::filesystem::path& dir) -> std::unique_ptr<store> {
                static std::map<std::string, std::string> dbs;
                if (!cluster) {
                    ADD_FAILURE() << "no PostgreSQL cluster";
                    return nullptr;
                }
                auto [it, fresh] = dbs.emplace(dir.string(), "t" + std::to_string(dbs.size()));
                if (fresh) cluster->create_database(it->second);
                auto s = open_postgres_store(cluster->url(it->second) + "?pool=2");
                if (!s) ADD_FAILURE() << s.error().message;
                return s ? std::move(*s) : nullptr;
            }};
}
#endif

registry::device_identity device(std::string id, std::uint64_t etag = 1) {
    registry::device_identity d;
    d.device_id = std::move(id);
    d.generation_id = "638000000000000001";
    d.etag = etag;
    d.authentication.symmetric_key.primary_key = "cHJpbWFyeWtleXByaW1hcnlrZXk=";
    d.authentication.symmetric_key.secondary_key = "c2Vjb25kYXJ5a2V5c2Vjb25kYXI=";
    d.status_reason = "testing";
    d.cloud_to_device_message_count = 3;
    return d;
}

registry::module_identity module(std::string dev, std::string id, std::uint64_t etag = 1) {
    registry::module_identity m;
    m.device_id = std::move(dev);
    m.module_id = std::move(id);
    m.generation_id = "638000000000000002";
    m.etag = etag;
    m.managed_by = "IotEdge";
    m.authentication.symmetric_key.primary_key = "cHJpbWFyeWtleXByaW1hcnlrZXk=";
    m.authentication.symmetric_key.secondary_key = "c2Vjb25kYXJ5a2V5c2Vjb25kYXI=";
    return m;
}

twin::twin_document twin_with(std::int64_t version, std::string_view color = "red") {
    auto t = twin::new_twin(now());
    t.version = version;
    t.tags["color"] = color;
    t.desired["interval"] = 30;
    t.reported["firmware"] = "1.0.0";
    return t;
}

std::string json_of(const twin::twin_document& t) { return boost::json::serialize(twin::to_storage_json(t)); }

class store_conformance : public ::testing::TestWithParam<backend> {
protected:
    void SetUp() override { s_ = GetParam().open(dir_.path()); ASSERT_TRUE(s_); }

    void reopen() {
        s_.reset();
        s_ = GetParam().open(dir_.path());
        ASSERT_TRUE(s_);
    }

    snapshot load() {
        auto r = s_->load();
        EXPECT_TRUE(r) << (r ? "" : r.error().message);
        return r ? std::move(*r) : snapshot{};
    }

    result<void> commit(write_batch b) { return s_->commit_sync(std::move(b)); }

    void commit_ok(write_batch b) {
        auto r = commit(std::move(b));
        ASSERT_TRUE(r) << r.error().message;
    }

    // A device with its twin, a module with its twin.
    void seed(const std::string& dev, const std::vector<std::string>& modules = {}) {
        write_batch b;
        b.put_device(device(dev), expect::absent());
        b.put_twin({dev, ""}, twin_with(2));
        for (auto& m : modules) {
            b.put_module(module(dev, m), expect::absent());
            b.put_twin({dev, m}, twin_with(2));
        }
        commit_ok(std::move(b));
    }

    const device_record* find_device(const snapshot& s, std::string_view id) {
        for (auto& d : s.devices)
            if (d.identity.device_id == id) return &d;
        return nullptr;
    }

    const module_record* find_module(const snapshot& s, std::string_view dev, std::string_view id) {
        for (auto& m : s.modules)
            if (m.identity.device_id == dev && m.identity.module_id == id) return &m;
        return nullptr;
    }

    // The whole durable state as text, to assert that a failed batch changed nothing.
    std::string dump() {
        auto s = load();
        std::string out;
        for (auto& p : s.policies) out += "p:" + p.key_name + "=" + p.primary_key + "\n";
        for (auto& d : s.devices)
            out += "d:" + boost::json::serialize(registry::to_storage_json(d.identity)) + json_of(d.twin) + "\n";
        for (auto& m : s.modules)
            out += "m:" + boost::json::serialize(registry::to_storage_json(m.identity)) + json_of(m.twin) + "\n";
        for (auto& x : s.sessions) out += "s:" + x.client_id + "=" + std::to_string(x.subscriptions.size()) + "\n";
        for (auto& [k, v] : s.settings) out += "k:" + k + "=" + v + "\n";
        for (std::uint32_t p = 0; p < default_event_partitions; ++p) {
            auto ev = s_->read_events(p, 0, 1000);
            out += "e" + std::to_string(p) + ":" + std::to_string(ev ? ev->size() : 9999) + "\n";
        }
        return out;
    }

    void expect_fails_and_changes_nothing(write_batch b, errc code) {
        auto before = dump();
        auto r = commit(std::move(b));
        ASSERT_FALSE(r) << "expected " << to_string(code);
        EXPECT_EQ(r.error().code, code) << r.error().message;
        EXPECT_FALSE(r.error().message.empty());
        EXPECT_EQ(dump(), before);
    }

    test_dir dir_;
    std::unique_ptr<store> s_;
};

// ---- round trips ------------------------------------------------------------------------------

// ---- completion groups ------------------------------------------------------------------------

TEST_P(store_conformance, completions_run_in_a_group_and_deferred_work_runs_after_the_group_in_order) {
    EXPECT_EQ(completion_group::current(), nullptr);
    constexpr int n = 400;
    std::mutex m;
    std::vector<std::string> trace;  // "c<i>" per completion, "end" per deferred group end
    std::atomic<int> outside_group{0};
    completion_group* open_group = nullptr;  // store thread only
    bool last_seen = false;
    std::promise<void> last_group_done;
    for (int i = 0; i < n; ++i) {
        write_batch b;
        b.put_session(session_record{"c" + std::to_string(i), {}});
        s_->commit(std::move(b), [&, i](result<void> r) {
            EXPECT_TRUE(r);
            auto* g = completion_group::current();
            if (!g) {
                ++outside_group;
                return;
            }
            std::lock_guard l(m);
            trace.push_back("c" + std::to_string(i));
            if (i == n - 1) last_seen = true;
            if (g != open_group) {
                open_group = g;
                g->defer([&, g] {
                    EXPECT_NE(completion_group::current(), g);  // the group is closed
                    std::lock_guard l2(m);
                    trace.push_back("end");
                    open_group = nullptr;
                });
                g->defer([&] {
                    std::lock_guard l2(m);
                    trace.push_back("end2");  // deferred functions run in order
                    if (last_seen) last_group_done.set_value();
                });
            }
        });
    }
    ASSERT_EQ(last_group_done.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(outside_group.load(), 0);
    std::lock_guard l(m);
    // Completions in commit order; each group ends with "end", "end2" before the next completion.
    int next = 0;
    bool in_group = false;
    for (std::size_t k = 0; k < trace.size(); ++k) {
        if (trace[k] == "end") {
            ASSERT_TRUE(in_group) << k;
            ASSERT_LT(k + 1, trace.size());
            ASSERT_EQ(trace[k + 1], "end2");
            ++k;
            in_group = false;
        } else {
            ASSERT_EQ(trace[k], "c" + std::to_string(next)) << k;
            ++next;
            in_group = true;
        }
    }
    EXPECT_EQ(next, n);
    EXPECT_FALSE(in_group);
}

TEST_P(store_conformance, new_store_loads_empty) {
    auto s = load();
    EXPECT_TRUE(s.policies.empty());
    EXPECT_TRUE(s.devices.empty());
    EXPECT_TRUE(s.modules.empty());
    EXPECT_TRUE(s.sessions.empty());
}

TEST_P(store_conformance, load_policies_returns_only_the_policies) {
    auto policies = auth::default_policies();
    write_batch b;
    for (auto& p : policies) b.put_policy(p);
    b.put_device(device("dev1", 1), expect::absent());
    ASSERT_TRUE(commit(std::move(b)));
    auto loaded = s_->load_policies();
    ASSERT_TRUE(loaded) << loaded.error().message;
    ASSERT_EQ(loaded->size(), policies.size());
    for (auto& p : policies) {
        auto it = std::find_if(loaded->begin(), loaded->end(), [&](auto& x) { return x.key_name == p.key_name; });
        ASSERT_NE(it, loaded->end()) << p.key_name;
        EXPECT_EQ(it->primary_key, p.primary_key);
        EXPECT_EQ(it->secondary_key, p.secondary_key);
        EXPECT_EQ(it->rights, p.rights);
    }
}

TEST_P(store_conformance, every_record_kind_round_trips) {
    auto policies = auth::default_policies();
    auto d = device("dev1", 7);
    d.iot_edge = true;
    d.parent_scopes = {"scope-a"};
    auto m = module("dev1", "mod1", 4);
    auto dt = twin_with(9, "blue");
    dt.model_id = "dtmi:com:example;1";
    auto mt = twin_with(3, "green");
    session_record sess{"dev1/mod1", {{"$iothub/methods/POST/#", 0}, {"devices/dev1/modules/mod1/messages/devicebound/#", 1}}};

    write_batch b;
    for (auto& p : policies) b.put_policy(p);
    b.put_device(d);
    b.put_twin({"dev1", ""}, dt);
    b.put_module(m);
    b.put_twin({"dev1", "mod1"}, mt);
    b.put_session(sess);
    commit_ok(std::move(b));

    auto s = load();
    ASSERT_EQ(s.policies.size(), policies.size());
    for (auto& p : policies) {
        auto it = std::find_if(s.policies.begin(), s.policies.end(), [&](auto& x) { return x.key_name == p.key_name; });
        ASSERT_NE(it, s.policies.end()) << p.key_name;
        EXPECT_EQ(it->primary_key, p.primary_key);
        EXPECT_EQ(it->secondary_key, p.secondary_key);
        EXPECT_EQ(it->rights, p.rights);
    }
    ASSERT_EQ(s.devices.size(), 1u);
    EXPECT_EQ(boost::json::serialize(registry::to_storage_json(s.devices[0].identity)),
              boost::json::serialize(registry::to_storage_json(d)));
    EXPECT_EQ(s.devices[0].identity.etag, 7u);
    EXPECT_EQ(json_of(s.devices[0].twin), json_of(dt));
    EXPECT_EQ(s.devices[0].twin.model_id, "dtmi:com:example;1");
    ASSERT_EQ(s.modules.size(), 1u);
    EXPECT_EQ(boost::json::serialize(registry::to_storage_json(s.modules[0].identity)),
              boost::json::serialize(registry::to_storage_json(m)));
    EXPECT_EQ(json_of(s.modules[0].twin), json_of(mt));
    ASSERT_EQ(s.sessions.size(), 1u);
    EXPECT_EQ(s.sessions[0].client_id, "dev1/mod1");
    EXPECT_EQ(s.sessions[0].subscriptions, sess.subscriptions);
}

TEST_P(store_conformance, identity_without_twin_loads_with_default_twin) {
    write_batch b;
    b.put_device(device("dev1"));
    commit_ok(std::move(b));
    auto s = load();
    ASSERT_EQ(s.devices.size(), 1u);
    EXPECT_EQ(json_of(s.devices[0].twin), json_of(twin::twin_document{}));
}

TEST_P(store_conformance, later_writes_replace_earlier_ones) {
    seed("dev1");
    write_batch b;
    b.put_device(device("dev1", 2), expect::revision(1));
    b.put_twin({"dev1", ""}, twin_with(3, "yellow"), expect::revision(2));
    b.put_session({"dev1", {{"a/#", 1}}});
    b.put_session({"dev1", {{"b/#", 0}}});
    commit_ok(std::move(b));
    auto s = load();
    ASSERT_EQ(s.devices.size(), 1u);
    EXPECT_EQ(s.devices[0].identity.etag, 2u);
    EXPECT_EQ(s.devices[0].twin.version, 3);
    EXPECT_EQ(s.devices[0].twin.tags.at("color").as_string(), "yellow");
    ASSERT_EQ(s.sessions.size(), 1u);
    EXPECT_EQ(s.sessions[0].subscriptions, (std::vector<std::pair<std::string, std::uint8_t>>{{"b/#", 0}}));
}

TEST_P(store_conformance, policies_and_sessions_can_be_deleted) {
    write_batch b;
    for (auto& p : auth::default_policies()) b.put_policy(p);
    b.put_session({"dev1", {}});
    commit_ok(std::move(b));
    write_batch d;
    d.delete_policy("service");
    d.delete_session("dev1");
    d.delete_session("never-existed");
    commit_ok(std::move(d));
    auto s = load();
    EXPECT_EQ(s.policies.size(), 4u);
    for (auto& p : s.policies) EXPECT_NE(p.key_name, "service");
    EXPECT_TRUE(s.sessions.empty());
}

// ---- conditions -------------------------------------------------------------------------------

TEST_P(store_conformance, create_of_existing_device_fails_with_device_already_exists) {
    seed("dev1");
    write_batch b;
    b.put_policy(auth::default_policies()[0]);  // must not land either
    b.put_device(device("dev1", 5), expect::absent());
    expect_fails_and_changes_nothing(std::move(b), errc::device_already_exists);
}

TEST_P(store_conformance, update_of_missing_device_fails_with_device_not_found) {
    write_batch b;
    b.put_policy(auth::default_policies()[0]);
    b.put_device(device("ghost"), expect::present());
    expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);
}

TEST_P(store_conformance, stale_device_etag_fails_with_precondition_failed) {
    seed("dev1");
    write_batch b;
    b.put_device(device("dev1", 2), expect::revision(0));
    expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    write_batch ok;
    ok.put_device(device("dev1", 2), expect::revision(1));
    commit_ok(std::move(ok));
    EXPECT_EQ(load().devices.at(0).identity.etag, 2u);
}

TEST_P(store_conformance, revision_of_missing_device_fails_with_device_not_found) {
    write_batch b;
    b.put_device(device("ghost"), expect::revision(1));
    expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);
}

TEST_P(store_conformance, module_of_missing_device_fails_with_device_not_found) {
    write_batch b;
    b.put_module(module("ghost", "m1"));
    expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);
}

TEST_P(store_conformance, module_conditions_fail_with_module_codes) {
    seed("dev1", {"m1"});
    {
        write_batch b;
        b.put_module(module("dev1", "m1", 9), expect::absent());
        expect_fails_and_changes_nothing(std::move(b), errc::module_already_exists);
    }
    {
        write_batch b;
        b.put_module(module("dev1", "m2"), expect::present());
        expect_fails_and_changes_nothing(std::move(b), errc::module_not_found);
    }
    {
        write_batch b;
        b.put_module(module("dev1", "m1", 9), expect::revision(8));
        expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    }
    {
        write_batch b;
        b.delete_module("dev1", "m2");
        expect_fails_and_changes_nothing(std::move(b), errc::module_not_found);
    }
    {
        write_batch b;
        b.delete_module("dev1", "m1", expect::revision(3));
        expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    }
    write_batch ok;
    ok.put_module(module("dev1", "m1", 2), expect::revision(1));
    commit_ok(std::move(ok));
    EXPECT_EQ(load().modules.at(0).identity.etag, 2u);
}

TEST_P(store_conformance, stale_twin_version_fails_with_precondition_failed) {
    seed("dev1", {"m1"});
    {
        write_batch b;
        b.put_twin({"dev1", ""}, twin_with(3, "stale"), expect::revision(1));
        expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    }
    {
        write_batch b;
        b.put_twin({"dev1", "m1"}, twin_with(3, "stale"), expect::revision(7));
        expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    }
    {
        write_batch b;
        b.put_twin({"dev1", ""}, twin_with(3, "again"), expect::absent());
        expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    }
    write_batch ok;
    ok.put_twin({"dev1", ""}, twin_with(3, "fresh"), expect::revision(2));
    ok.put_twin({"dev1", "m1"}, twin_with(3, "fresh"), expect::revision(2));
    commit_ok(std::move(ok));
    auto s = load();
    EXPECT_EQ(s.devices.at(0).twin.version, 3);
    EXPECT_EQ(s.devices.at(0).twin.tags.at("color").as_string(), "fresh");
    EXPECT_EQ(s.modules.at(0).twin.version, 3);
}

TEST_P(store_conformance, twin_of_missing_identity_fails_with_not_found_codes) {
    seed("dev1");
    {
        write_batch b;
        b.put_twin({"ghost", ""}, twin_with(2));
        expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);
    }
    {
        write_batch b;
        b.put_twin({"dev1", "ghost"}, twin_with(2));
        expect_fails_and_changes_nothing(std::move(b), errc::module_not_found);
    }
    {
        write_batch b;
        b.put_twin({"ghost", "m"}, twin_with(2), expect::revision(2));
        expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);
    }
}

TEST_P(store_conformance, revision_of_never_written_twin_fails_with_not_found) {
    write_batch b;
    b.put_device(device("dev1"));
    commit_ok(std::move(b));
    write_batch t;
    t.put_twin({"dev1", ""}, twin_with(2), expect::revision(2));
    expect_fails_and_changes_nothing(std::move(t), errc::not_found);
    write_batch ok;
    ok.put_twin({"dev1", ""}, twin_with(2), expect::absent());
    commit_ok(std::move(ok));
}

TEST_P(store_conformance, delete_conditions_fail_and_change_nothing) {
    seed("dev1");
    {
        write_batch b;
        b.delete_device("ghost");  // present() by default
        expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);
    }
    {
        write_batch b;
        b.delete_device("dev1", expect::revision(5));
        expect_fails_and_changes_nothing(std::move(b), errc::precondition_failed);
    }
    write_batch any;
    any.delete_device("ghost", expect::any());
    commit_ok(std::move(any));
    write_batch ok;
    ok.delete_device("dev1", expect::revision(1));
    commit_ok(std::move(ok));
    EXPECT_TRUE(load().devices.empty());
}

// ---- cascades ---------------------------------------------------------------------------------

TEST_P(store_conformance, deleting_a_device_deletes_its_modules_twins_and_sessions) {
    seed("dev", {"m1", "m2"});
    seed("dev2", {"m1"});
    seed("dev-x");  // shares a prefix: must survive
    write_batch sessions;
    for (auto c : {"dev", "dev/m1", "dev/m2", "dev2", "dev2/m1", "dev-x"}) sessions.put_session({c, {{"#", 1}}});
    commit_ok(std::move(sessions));

    write_batch b;
    b.delete_device("dev");
    commit_ok(std::move(b));

    auto s = load();
    EXPECT_EQ(find_device(s, "dev"), nullptr);
    EXPECT_NE(find_device(s, "dev2"), nullptr);
    EXPECT_NE(find_device(s, "dev-x"), nullptr);
    EXPECT_EQ(find_module(s, "dev", "m1"), nullptr);
    EXPECT_EQ(find_module(s, "dev", "m2"), nullptr);
    EXPECT_NE(find_module(s, "dev2", "m1"), nullptr);
    std::vector<std::string> clients;
    for (auto& x : s.sessions) clients.push_back(x.client_id);
    std::sort(clients.begin(), clients.end());
    EXPECT_EQ(clients, (std::vector<std::string>{"dev-x", "dev2", "dev2/m1"}));

    // Re-created, the device starts without modules and without the old twin.
    write_batch again;
    again.put_device(device("dev"), expect::absent());
    again.put_module(module("dev", "m1"), expect::absent());
    commit_ok(std::move(again));
    s = load();
    EXPECT_EQ(json_of(find_device(s, "dev")->twin), json_of(twin::twin_document{}));
    EXPECT_EQ(json_of(find_module(s, "dev", "m1")->twin), json_of(twin::twin_document{}));
    EXPECT_EQ(find_module(s, "dev", "m2"), nullptr);
}

TEST_P(store_conformance, deleting_a_module_deletes_its_twin_and_session_only) {
    seed("dev", {"m1", "m2"});
    write_batch sessions;
    for (auto c : {"dev", "dev/m1", "dev/m2"}) sessions.put_session({c, {}});
    commit_ok(std::move(sessions));
    write_batch b;
    b.delete_module("dev", "m1", expect::revision(1));
    commit_ok(std::move(b));
    auto s = load();
    EXPECT_NE(find_device(s, "dev"), nullptr);
    EXPECT_EQ(find_module(s, "dev", "m1"), nullptr);
    EXPECT_NE(find_module(s, "dev", "m2"), nullptr);
    ASSERT_EQ(s.sessions.size(), 2u);
    write_batch again;
    again.put_module(module("dev", "m1"), expect::absent());
    commit_ok(std::move(again));
    EXPECT_EQ(json_of(find_module(load(), "dev", "m1")->twin), json_of(twin::twin_document{}));
}

TEST_P(store_conformance, create_and_delete_in_one_batch_cascades_within_the_batch) {
    write_batch b;
    b.put_device(device("dev"), expect::absent());
    b.put_module(module("dev", "m1"), expect::absent());
    b.put_twin({"dev", "m1"}, twin_with(2));
    b.delete_device("dev");
    b.put_device(device("dev"), expect::absent());
    commit_ok(std::move(b));
    auto s = load();
    EXPECT_EQ(s.devices.size(), 1u);
    EXPECT_TRUE(s.modules.empty());
}

// ---- atomicity, groups, order -------------------------------------------------------------------

TEST_P(store_conformance, failed_batch_changes_nothing_at_all) {
    seed("dev1", {"m1"});
    write_batch b;
    b.put_policy(auth::default_policies()[0]);
    b.put_device(device("dev2"), expect::absent());
    b.put_twin({"dev2", ""}, twin_with(2));
    b.put_twin({"dev1", ""}, twin_with(3, "changed"), expect::revision(2));
    b.put_session({"dev1", {{"#", 1}}});
    b.append_event({{"dev1", ""}, "hello", {}, {}, 1, 0, partition_of({"dev1", ""}, default_event_partitions)});
    b.delete_device("dev1", expect::revision(1));  // would cascade, and does not either
    b.put_module(module("dev3", "m"));  // fails: no dev3
    expect_fails_and_changes_nothing(std::move(b), errc::device_not_found);

    // The failed append did not consume a sequence number.
    write_batch e;
    e.append_event({{"dev1", ""}, "first", {}, {}, 1, 0, partition_of({"dev1", ""}, default_event_partitions)});
    commit_ok(std::move(e));
    auto ev = s_->read_events(partition_of({"dev1", ""}, default_event_partitions), 0, 10);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->size(), 1u);
    EXPECT_EQ(ev->at(0).sequence_number, 0u);
    EXPECT_EQ(ev->at(0).body, "first");
}

TEST_P(store_conformance, batches_of_one_group_succeed_or_fail_on_their_own) {
    seed("dev1");
    // Queue many batches at once so that backends group them; every third one fails.
    constexpr int n = 300;
    std::vector<std::promise<result<void>>> done(n);
    for (int i = 0; i < n; ++i) {
        write_batch b;
        if (i % 3 == 2) {
            b.put_device(device("dup"), expect::present());  // never exists
        } else {
            b.put_device(device("d" + std::to_string(i)), expect::absent());
            b.put_twin({"d" + std::to_string(i), ""}, twin_with(2));
        }
        s_->commit(std::move(b), [&done, i](result<void> r) { done[i].set_value(std::move(r)); });
    }
    for (int i = 0; i < n; ++i) {
        auto r = done[i].get_future().get();
        if (i % 3 == 2) {
            ASSERT_FALSE(r) << i;
            EXPECT_EQ(r.error().code, errc::device_not_found);
        } else {
            EXPECT_TRUE(r) << i << ": " << r.error().message;
        }
    }
    auto s = load();
    EXPECT_EQ(s.devices.size(), 1u + 200u);
    EXPECT_EQ(find_device(s, "dup"), nullptr);
}

TEST_P(store_conformance, completions_run_in_commit_order_after_the_listener) {
    std::mutex m;
    std::vector<std::string> seen;
    s_->set_change_listener([&](const write_batch& b) {
        std::lock_guard lock(m);
        auto& op = std::get<write_batch::put_session_op>(b.ops().at(0));
        seen.push_back("listener " + op.s.client_id);
    });
    constexpr int n = 200;
    std::promise<void> all;
    for (int i = 0; i < n; ++i) {
        write_batch b;
        if (i % 10 == 9) b.put_device(device("ghost"), expect::present());  // fails: no listener call
        else b.put_session({"c" + std::to_string(i), {}});
        s_->commit(std::move(b), [&, i](result<void> r) {
            std::lock_guard lock(m);
            seen.push_back("done " + std::to_string(i) + (r ? "" : " failed"));
            if (i == n - 1) all.set_value();
        });
    }
    all.get_future().wait();
    std::vector<std::string> want;
    for (int i = 0; i < n; ++i) {
        if (i % 10 == 9) {
            want.push_back("done " + std::to_string(i) + " failed");
        } else {
            want.push_back("listener c" + std::to_string(i));
            want.push_back("done " + std::to_string(i));
        }
    }
    std::lock_guard lock(m);
    EXPECT_EQ(seen, want);
}

TEST_P(store_conformance, concurrent_committers_all_complete_and_state_is_consistent) {
    constexpr int threads = 8, per_thread = 150;
    for (int t = 0; t < threads; ++t) seed("t" + std::to_string(t));
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            std::string id = "t" + std::to_string(t);
            std::int64_t version = 2;
            for (int i = 0; i < per_thread; ++i) {
                write_batch b;
                b.put_twin({id, ""}, twin_with(version + 1, std::to_string(i)),
                           expect::revision(static_cast<std::uint64_t>(version)));
                b.append_event({{id, ""}, id + ":" + std::to_string(i), {}, {}, 0, 0, partition_of({id, ""}, default_event_partitions)});
                if (auto r = s_->commit_sync(std::move(b)); !r) ++failures;
                else ++version;
            }
        });
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(failures.load(), 0);
    auto s = load();
    for (int t = 0; t < threads; ++t) {
        auto* d = find_device(s, "t" + std::to_string(t));
        ASSERT_NE(d, nullptr);
        EXPECT_EQ(d->twin.version, 2 + per_thread);
        EXPECT_EQ(d->twin.tags.at("color").as_string(), std::to_string(per_thread - 1));
    }
    // Every event is there once, numbered densely per partition, in each source's order.
    std::size_t total = 0;
    for (std::uint32_t p = 0; p < default_event_partitions; ++p) {
        auto ev = s_->read_events(p, 0, 100000);
        ASSERT_TRUE(ev);
        std::map<std::string, int> next;
        for (std::size_t i = 0; i < ev->size(); ++i) {
            auto& e = (*ev)[i];
            EXPECT_EQ(e.sequence_number, i);
            EXPECT_EQ(e.partition, p);
            EXPECT_EQ(partition_of(e.source, default_event_partitions), p);
            EXPECT_EQ(e.body, e.source.device_id + ":" + std::to_string(next[e.source.device_id]++));
        }
        total += ev->size();
    }
    EXPECT_EQ(total, static_cast<std::size_t>(threads * per_thread));
}

// ---- events -----------------------------------------------------------------------------------

TEST_P(store_conformance, events_get_per_partition_sequence_numbers_and_read_back) {
    std::vector<event_record> seen;
    s_->set_change_listener([&](const write_batch& b) {
        for (auto& o : b.ops())
            if (auto* e = std::get_if<write_batch::append_event_op>(&o)) seen.push_back(e->e);
    });
    write_batch b;
    for (int i = 0; i < 20; ++i) {
        event_record e;
        e.source = {"dev" + std::to_string(i % 5), i % 2 ? "mod" : ""};
        e.body = std::string("bin\0ary", 7) + std::to_string(i);
        e.system_properties = {{"message-id", "m" + std::to_string(i)}, {"content-type", "application/json"}};
        e.application_properties = {{"k", std::string("v\0\xff", 3)}};
        e.enqueued_time_ns = 1000 + i;
        e.partition = partition_of(e.source, default_event_partitions);
        b.append_event(e);
    }
    commit_ok(std::move(b));
    ASSERT_EQ(seen.size(), 20u);
    std::array<std::uint64_t, default_event_partitions> next{};
    for (auto& e : seen) {
        EXPECT_EQ(e.partition, partition_of(e.source, default_event_partitions));
        EXPECT_EQ(e.sequence_number, next[e.partition]++);
    }
    for (std::uint32_t p = 0; p < default_event_partitions; ++p) {
        auto all = s_->read_events(p, 0, 1000);
        ASSERT_TRUE(all);
        ASSERT_EQ(all->size(), next[p]);
        for (auto& e : *all) {
            auto it = std::find_if(seen.begin(), seen.end(), [&](auto& x) {
                return x.partition == p && x.sequence_number == e.sequence_number;
            });
            ASSERT_NE(it, seen.end());
            EXPECT_EQ(e.body, it->body);
            EXPECT_EQ(e.source, it->source);
            EXPECT_EQ(e.system_properties, it->system_properties);
            EXPECT_EQ(e.application_properties, it->application_properties);
            EXPECT_EQ(e.enqueued_time_ns, it->enqueued_time_ns);
        }
        if (next[p] >= 3) {
            auto some = s_->read_events(p, 1, 2);
            ASSERT_TRUE(some);
            ASSERT_EQ(some->size(), 2u);
            EXPECT_EQ(some->at(0).sequence_number, 1u);
            EXPECT_EQ(some->at(1).sequence_number, 2u);
        }
        auto none = s_->read_events(p, next[p], 10);
        ASSERT_TRUE(none);
        EXPECT_TRUE(none->empty());
    }
    auto bad = s_->read_events(max_event_streams, 0, 10);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
}

TEST_P(store_conformance, trim_events_deletes_the_oldest_before_a_time_and_keeps_the_last) {
    write_batch b;
    for (int i = 0; i < 10; ++i) b.append_event({{"dev1", ""}, "e" + std::to_string(i), {}, {}, 100 + i, 0, 3});
    b.append_event({{"dev2", ""}, "other", {}, {}, 1, 0, 2});
    commit_ok(std::move(b));
    // At most max_rows per op, only those before the time.
    write_batch t;
    t.trim_events(3, 105, 3);
    commit_ok(std::move(t));
    auto info = s_->event_partition_info(3);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->begin_sequence_number, 3u);
    EXPECT_EQ(info->last_sequence_number, 9);
    write_batch t2;
    t2.trim_events(3, 105, 100);
    commit_ok(std::move(t2));
    auto ev = s_->read_events(3, 0, 100);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->size(), 5u);
    EXPECT_EQ(ev->front().sequence_number, 5u);
    EXPECT_EQ(ev->front().body, "e5");
    // Everything expired: the last event stays, so its sequence number is never handed out again.
    write_batch t3;
    t3.trim_events(3, 1'000'000, 100);
    commit_ok(std::move(t3));
    ev = s_->read_events(3, 0, 100);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->size(), 1u);
    EXPECT_EQ(ev->front().sequence_number, 9u);
    write_batch more;
    more.append_event({{"dev1", ""}, "after", {}, {}, 2'000'000, 0, 3});
    commit_ok(std::move(more));
    ev = s_->read_events(3, 0, 100);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->size(), 2u);
    EXPECT_EQ(ev->back().sequence_number, 10u);
    // Other partitions untouched; unknown partitions are no-ops.
    write_batch t4;
    t4.trim_events(7, 1'000'000, 100);
    commit_ok(std::move(t4));
    auto other = s_->read_events(2, 0, 10);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->size(), 1u);
}

TEST_P(store_conformance, settings_are_put_replaced_deleted_and_loaded) {
    write_batch b;
    b.put_setting("consumerGroups/a", "{}");
    b.put_setting("eventHub", R"({"partitions":8})");
    commit_ok(std::move(b));
    write_batch c;
    c.put_setting("eventHub", R"({"partitions":16})");
    c.delete_setting("consumerGroups/a");
    c.delete_setting("never-there");
    commit_ok(std::move(c));
    auto s = load();
    ASSERT_EQ(s.settings.size(), 1u);
    EXPECT_EQ(s.settings[0].first, "eventHub");
    EXPECT_EQ(s.settings[0].second, R"({"partitions":16})");
}

TEST_P(store_conformance, events_beyond_the_partition_limit_fail_the_batch) {
    write_batch b;
    b.put_setting("x", "1");
    b.append_event({{"dev1", ""}, "e", {}, {}, 1, 0, max_event_streams});
    expect_fails_and_changes_nothing(std::move(b), errc::invalid_argument);
}

TEST(store_partition, partition_of_is_stable_and_in_range) {
    EXPECT_EQ(partition_of({"dev1", ""}, default_event_partitions), partition_of({"dev1", ""}, default_event_partitions));
    std::set<std::uint32_t> used;
    for (int i = 0; i < 100; ++i) {
        auto p = partition_of({"device-" + std::to_string(i), ""}, default_event_partitions);
        EXPECT_LT(p, default_event_partitions);
        used.insert(p);
    }
    EXPECT_EQ(used.size(), default_event_partitions);
}

// ---- close and reopen ---------------------------------------------------------------------------

TEST_P(store_conformance, close_completes_pending_commits_then_rejects_with_shutting_down) {
    constexpr int n = 500;
    std::atomic<int> ok{0}, other{0};
    for (int i = 0; i < n; ++i) {
        write_batch b;
        b.put_session({"c" + std::to_string(i), {}});
        s_->commit(std::move(b), [&](result<void> r) { r ? ++ok : ++other; });
    }
    s_->close();
    EXPECT_EQ(ok.load(), n);  // all completed by the time close() returns
    EXPECT_EQ(other.load(), 0);
    EXPECT_EQ(load().sessions.size(), static_cast<std::size_t>(n));

    write_batch late;
    late.put_session({"late", {}});
    auto r = s_->commit_sync(std::move(late));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::shutting_down);
    s_->close();  // idempotent
}

// Backends that keep their data across instances (not the memory backend).
// ---- cloud-to-device queues ---------------------------------------------------------------------

c2d_message c2d(std::uint64_t seq, identity_key target, std::string body = "hello") {
    c2d_message m;
    m.sequence_number = seq;
    m.target = std::move(target);
    m.body = std::move(body);
    m.message_id = "mid-" + std::to_string(seq);
    m.correlation_id = "cid";
    m.user_id = "uid";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.enqueued_time_ns = 1000 + static_cast<std::int64_t>(seq);
    m.expiry_time_ns = 5000 + static_cast<std::int64_t>(seq);
    m.ack = c2d_ack::full;
    m.application_properties = {{"k", std::string("v\0\xff", 3)}, {"empty", ""}};
    return m;
}

feedback_record feedback(std::uint64_t seq, std::string status = "Success") {
    feedback_record f;
    f.sequence_number = seq;
    f.original_message_id = "mid-" + std::to_string(seq);
    f.description = "Success";
    f.device_generation_id = "638000000000000001";
    f.device_id = "dev1";
    f.module_id = seq % 2 ? "" : "m1";
    f.enqueued_time_ns = 77;
    f.status_code = std::move(status);
    return f;
}

TEST_P(store_conformance, c2d_messages_round_trip_with_every_field) {
    seed("dev1", {"m1"});
    write_batch b;
    b.enqueue_c2d(c2d(1, {"dev1", ""}, std::string("bin\0ary", 7)));
    b.enqueue_c2d(c2d(2, {"dev1", "m1"}));
    commit_ok(std::move(b));
    auto st = s_->load_c2d();
    ASSERT_TRUE(st) << st.error().message;
    ASSERT_EQ(st->messages.size(), 2u);
    EXPECT_EQ(st->messages[0], c2d(1, {"dev1", ""}, std::string("bin\0ary", 7)));
    EXPECT_EQ(st->messages[1], c2d(2, {"dev1", "m1"}));
    EXPECT_EQ(st->next_message_sequence, 3u);
}

TEST_P(store_conformance, c2d_enqueue_needs_the_target_identity) {
    seed("dev1");
    write_batch b;
    b.enqueue_c2d(c2d(1, {"ghost", ""}));
    EXPECT_EQ(commit(std::move(b)).error().code, errc::device_not_found);
    write_batch m;
    m.enqueue_c2d(c2d(1, {"dev1", "nomod"}));
    EXPECT_EQ(commit(std::move(m)).error().code, errc::module_not_found);
    // A failed enqueue in a batch undoes the whole batch.
    write_batch both;
    both.enqueue_c2d(c2d(1, {"dev1", ""}));
    both.enqueue_c2d(c2d(2, {"ghost", ""}));
    EXPECT_FALSE(commit(std::move(both)));
    auto st = s_->load_c2d();
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->messages.empty());
}

TEST_P(store_conformance, c2d_duplicate_sequence_number_fails_the_batch) {
    seed("dev1");
    write_batch b;
    b.enqueue_c2d(c2d(7, {"dev1", ""}));
    commit_ok(std::move(b));
    write_batch dup;
    dup.enqueue_c2d(c2d(7, {"dev1", ""}, "other"));
    EXPECT_EQ(commit(std::move(dup)).error().code, errc::storage_error);
    auto st = s_->load_c2d();
    ASSERT_TRUE(st);
    ASSERT_EQ(st->messages.size(), 1u);
    EXPECT_EQ(st->messages[0].body, "hello");
}

TEST_P(store_conformance, c2d_update_and_delete_by_sequence_number_and_missing_is_a_no_op) {
    seed("dev1");
    write_batch b;
    for (std::uint64_t i = 1; i <= 3; ++i) b.enqueue_c2d(c2d(i, {"dev1", ""}));
    commit_ok(std::move(b));
    write_batch u;
    u.update_c2d_delivery_count(2, 4);
    u.delete_c2d(1);
    u.delete_c2d(99);
    u.update_c2d_delivery_count(98, 1);
    commit_ok(std::move(u));
    auto st = s_->load_c2d();
    ASSERT_TRUE(st);
    ASSERT_EQ(st->messages.size(), 2u);
    EXPECT_EQ(st->messages[0].sequence_number, 2u);
    EXPECT_EQ(st->messages[0].delivery_count, 4u);
    EXPECT_EQ(st->messages[1].delivery_count, 0u);
    // Sequence numbers are never reused: deleting the newest keeps next_message_sequence.
    write_batch d;
    d.delete_c2d(3);
    d.delete_c2d(2);
    commit_ok(std::move(d));
    st = s_->load_c2d();
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->messages.empty());
    EXPECT_EQ(st->next_message_sequence, 4u);
}

TEST_P(store_conformance, c2d_messages_go_with_their_device_or_module) {
    seed("dev1", {"m1", "m2"});
    seed("dev2");
    write_batch b;
    b.enqueue_c2d(c2d(1, {"dev1", ""}));
    b.enqueue_c2d(c2d(2, {"dev1", "m1"}));
    b.enqueue_c2d(c2d(3, {"dev1", "m2"}));
    b.enqueue_c2d(c2d(4, {"dev2", ""}));
    commit_ok(std::move(b));
    write_batch dm;
    dm.delete_module("dev1", "m1");
    commit_ok(std::move(dm));
    auto st = s_->load_c2d();
    ASSERT_TRUE(st);
    ASSERT_EQ(st->messages.size(), 3u);
    EXPECT_EQ(st->messages[0].sequence_number, 1u);
    EXPECT_EQ(st->messages[1].sequence_number, 3u);
    write_batch dd;
    dd.delete_device("dev1");
    commit_ok(std::move(dd));
    st = s_->load_c2d();
    ASSERT_TRUE(st);
    ASSERT_EQ(st->messages.size(), 1u);
    EXPECT_EQ(st->messages[0].target.device_id, "dev2");
}

TEST_P(store_conformance, feedback_records_append_delete_and_round_trip) {
    write_batch b;
    for (std::uint64_t i = 1; i <= 3; ++i) b.append_feedback(feedback(i, i == 2 ? "Rejected" : "Success"));
    commit_ok(std::move(b));
    write_batch d;
    d.delete_feedback(1);
    d.delete_feedback(42);
    commit_ok(std::move(d));
    auto st = s_->load_c2d();
    ASSERT_TRUE(st);
    ASSERT_EQ(st->feedback.size(), 2u);
    EXPECT_EQ(st->feedback[0], feedback(2, "Rejected"));
    EXPECT_EQ(st->feedback[1], feedback(3));
    EXPECT_EQ(st->next_feedback_sequence, 4u);
}

class persistent_store_conformance : public store_conformance {};

TEST_P(persistent_store_conformance, reopen_after_close_keeps_everything) {
    ASSERT_TRUE(GetParam().persistent);
    seed("dev1", {"m1"});
    write_batch b;
    for (auto& p : auth::default_policies()) b.put_policy(p);
    b.put_session({"dev1/m1", {{"#", 1}}});
    b.append_event({{"dev1", ""}, "one", {{"a", "b"}}, {}, 5, 0, partition_of({"dev1", ""}, default_event_partitions)});
    commit_ok(std::move(b));
    auto before = dump();
    s_->close();
    reopen();
    EXPECT_EQ(dump(), before);
    // Sequence numbers continue after a reopen.
    write_batch e;
    e.append_event({{"dev1", ""}, "two", {}, {}, 6, 0, partition_of({"dev1", ""}, default_event_partitions)});
    commit_ok(std::move(e));
    auto ev = s_->read_events(partition_of({"dev1", ""}, default_event_partitions), 0, 10);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->size(), 2u);
    EXPECT_EQ(ev->at(1).sequence_number, 1u);
    EXPECT_EQ(ev->at(1).body, "two");
}

TEST_P(persistent_store_conformance, c2d_queues_and_sequence_numbers_survive_a_reopen) {
    seed("dev1");
    write_batch b;
    b.enqueue_c2d(c2d(1, {"dev1", ""}));
    b.enqueue_c2d(c2d(2, {"dev1", ""}));
    b.append_feedback(feedback(1));
    commit_ok(std::move(b));
    write_batch d;
    d.delete_c2d(2);
    d.update_c2d_delivery_count(1, 3);
    commit_ok(std::move(d));
    s_->close();
    reopen();
    auto st = s_->load_c2d();
    ASSERT_TRUE(st);
    ASSERT_EQ(st->messages.size(), 1u);
    EXPECT_EQ(st->messages[0].delivery_count, 3u);
    EXPECT_EQ(st->next_message_sequence, 3u);
    ASSERT_EQ(st->feedback.size(), 1u);
    EXPECT_EQ(st->next_feedback_sequence, 2u);
}

#ifdef TWINHUB_CONFORMANCE_POSTGRES
// tests/unit/store/CMakeLists.txt builds this file a second time as store_postgres_conformance_tests.
INSTANTIATE_TEST_SUITE_P(backends, store_conformance, ::testing::Values(postgres_backend()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(persistent_backends, persistent_store_conformance, ::testing::Values(postgres_backend()),
                         [](const auto& info) { return info.param.name; });
#else
INSTANTIATE_TEST_SUITE_P(backends, store_conformance, ::testing::Values(memory_backend(), sqlite_backend()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(persistent_backends, persistent_store_conformance, ::testing::Values(sqlite_backend()),
                         [](const auto& info) { return info.param.name; });
#endif

}  // namespace
}  // namespace twinhub::store
