// hub_service: devices, modules, bulk, statistics, presence, credentials, sessions and policies
// over the memory store.
#include "service_test_support.hpp"

#include "common/encoding.hpp"

#include <algorithm>

namespace twinhub::service {
namespace {

using testing::device_request;
using testing::hub_fixture;
using testing::module_request;
using testing::wait_for;

using hub_service_devices = hub_fixture;
using hub_service_modules = hub_fixture;
using hub_service_bulk = hub_fixture;
using hub_service_presence = hub_fixture;
using hub_service_sessions = hub_fixture;
using hub_service_credentials = hub_fixture;
using hub_service_policies = hub_fixture;

TEST(hub_service_open, creates_the_five_default_policies_once) {
    auto st = store::make_memory_store();
    std::vector<auth::shared_access_policy> first;
    {
        auto hub = hub_service::open(*st, {});
        ASSERT_TRUE(hub);
        first = (*hub)->policies();
    }
    ASSERT_EQ(first.size(), 5u);
    std::vector<std::string> names;
    for (auto& p : first) names.push_back(p.key_name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"device", "iothubowner", "registryRead", "registryReadWrite", "service"}));

    auto again = hub_service::open(*st, {});  // keys are kept, not regenerated
    ASSERT_TRUE(again);
    auto second = (*again)->policies();
    ASSERT_EQ(second.size(), 5u);
    for (auto& p : first) {
        auto it = std::find_if(second.begin(), second.end(), [&](auto& q) { return q.key_name == p.key_name; });
        ASSERT_NE(it, second.end());
        EXPECT_EQ(it->primary_key, p.primary_key);
    }
    st->close();
}

TEST_F(hub_service_devices, create_generates_keys_generation_id_and_initial_state) {
    auto d = create("dev1");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->device_id, "dev1");
    EXPECT_FALSE(d->generation_id.empty());
    EXPECT_EQ(d->etag, 0u);
    EXPECT_EQ(d->status, registry::device_status::enabled);
    EXPECT_EQ(d->connection_state, registry::connection_state::disconnected);
    EXPECT_EQ(d->authentication.type, registry::auth_type::sas);
    EXPECT_EQ(d->authentication.symmetric_key.primary_key.size(), 44u);
    EXPECT_EQ(d->authentication.symmetric_key.secondary_key.size(), 44u);
    EXPECT_NE(d->authentication.symmetric_key.primary_key, d->authentication.symmetric_key.secondary_key);

    auto got = hub_->get_device("dev1");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->generation_id, d->generation_id);
    EXPECT_EQ(got->authentication.symmetric_key.primary_key, d->authentication.symmetric_key.primary_key);

    auto twin = hub_->get_twin({"dev1", {}});
    ASSERT_TRUE(twin);
    EXPECT_EQ(twin->at("etag"), "AAAAAAAAAAE=");
    EXPECT_EQ(twin->at("version"), 2);
    EXPECT_EQ(testing::str(twin->at("deviceEtag")), registry::etag_to_string(0));
}

TEST_F(hub_service_devices, create_keeps_supplied_keys) {
    auto req = device_request("dev1");
    req.authentication.symmetric_key.primary_key = base64_encode("0123456789abcdef");
    req.authentication.symmetric_key.secondary_key = base64_encode("fedcba9876543210");
    auto d = create(req);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->authentication.symmetric_key.primary_key, req.authentication.symmetric_key.primary_key);
    EXPECT_EQ(d->authentication.symmetric_key.secondary_key, req.authentication.symmetric_key.secondary_key);
}

TEST_F(hub_service_devices, create_existing_fails_with_device_already_exists) {
    ASSERT_TRUE(create("dev1"));
    auto again = create("dev1");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::device_already_exists);
}

TEST_F(hub_service_devices, create_with_invalid_id_fails_with_invalid_argument) {
    auto d = create("bad/id");
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, errc::invalid_argument);
    EXPECT_FALSE(hub_->get_device("bad/id"));
}

TEST_F(hub_service_devices, get_missing_fails_with_device_not_found) {
    auto d = hub_->get_device("nope");
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, errc::device_not_found);
}

TEST_F(hub_service_devices, update_with_matching_etag_changes_the_etag) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto req = *d;
    req.status_reason = "maintenance";
    auto u = update(req, testing::quoted(registry::etag_to_string(d->etag)));
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->etag, d->etag + 1);
    EXPECT_EQ(u->status_reason, "maintenance");
    EXPECT_EQ(u->generation_id, d->generation_id);
    EXPECT_EQ(hub_->get_device("dev1")->etag, d->etag + 1);
    EXPECT_EQ(testing::str(hub_->get_twin({"dev1", {}})->at("deviceEtag")), registry::etag_to_string(d->etag + 1));
}

TEST_F(hub_service_devices, update_with_stale_etag_fails_with_precondition_failed) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    ASSERT_TRUE(update(*d, "*"));
    auto stale = update(*d, testing::quoted(registry::etag_to_string(d->etag)));
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::precondition_failed);
    EXPECT_EQ(hub_->get_device("dev1")->etag, d->etag + 1);
}

TEST_F(hub_service_devices, update_missing_fails_with_device_not_found) {
    auto u = update(device_request("ghost"), "*");
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code, errc::device_not_found);
}

TEST_F(hub_service_devices, update_cannot_change_generation_id) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto req = *d;
    req.generation_id = "123";
    auto u = update(req, "*");
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code, errc::invalid_argument);
}

TEST_F(hub_service_devices, update_with_empty_keys_generates_new_keys_as_iot_hub_does) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto req = device_request("dev1");  // what Node's registry.update({deviceId, status}) sends
    req.status = registry::device_status::enabled;
    auto u = update(req, "*");
    ASSERT_TRUE(u);
    const auto& k = u->authentication.symmetric_key;
    EXPECT_EQ(k.primary_key.size(), 44u);
    EXPECT_EQ(k.secondary_key.size(), 44u);
    EXPECT_NE(k.primary_key, d->authentication.symmetric_key.primary_key);
    EXPECT_NE(k.secondary_key, d->authentication.symmetric_key.secondary_key);
    EXPECT_NE(k.primary_key, k.secondary_key);
    EXPECT_EQ(u->generation_id, d->generation_id);
    EXPECT_EQ(hub_->get_device("dev1")->authentication.symmetric_key.primary_key, k.primary_key);
}

TEST_F(hub_service_devices, update_with_one_empty_key_regenerates_only_that_key) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto req = *d;
    req.authentication.symmetric_key.secondary_key.clear();
    auto u = update(req, "*");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->authentication.symmetric_key.primary_key, d->authentication.symmetric_key.primary_key);
    EXPECT_EQ(u->authentication.symmetric_key.secondary_key.size(), 44u);
    EXPECT_NE(u->authentication.symmetric_key.secondary_key, d->authentication.symmetric_key.secondary_key);
}

TEST_F(hub_service_devices, update_with_the_current_keys_keeps_them) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto req = *d;
    req.status = registry::device_status::disabled;
    auto u = update(req, "*");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->authentication.symmetric_key.primary_key, d->authentication.symmetric_key.primary_key);
    EXPECT_EQ(u->authentication.symmetric_key.secondary_key, d->authentication.symmetric_key.secondary_key);
}

TEST(hub_service_options, update_with_empty_keys_keeps_the_stored_keys_when_configured) {
    auto st = store::make_memory_store();
    hub_options o;
    o.keep_keys_on_empty_update = true;
    auto hub = hub_service::open(*st, o);
    ASSERT_TRUE(hub);
    auto d = wait_for<registry::device_identity>([&](auto h) { (*hub)->create_device(device_request("d"), h); });
    ASSERT_TRUE(d);
    auto u = wait_for<registry::device_identity>([&](auto h) { (*hub)->update_device(device_request("d"), "*", h); });
    ASSERT_TRUE(u);
    EXPECT_EQ(u->authentication.symmetric_key.primary_key, d->authentication.symmetric_key.primary_key);
    EXPECT_EQ(u->authentication.symmetric_key.secondary_key, d->authentication.symmetric_key.secondary_key);
    st->close();
}

TEST_F(hub_service_devices, status_change_sets_status_updated_time) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->status_updated_time);
    auto req = *d;
    req.status_reason = "x";
    auto same = update(req, "*");
    ASSERT_TRUE(same);
    EXPECT_FALSE(same->status_updated_time);
    req.status = registry::device_status::disabled;
    auto changed = update(req, "*");
    ASSERT_TRUE(changed);
    ASSERT_TRUE(changed->status_updated_time);
    EXPECT_NE(testing::str(hub_->get_twin({"dev1", {}})->at("statusUpdateTime")), never_time);
}

TEST_F(hub_service_devices, disabling_revokes_the_device_and_its_modules_after_commit) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    ASSERT_TRUE(create_module("dev1", "m1"));
    ASSERT_TRUE(create_module("dev1", "m2"));
    EXPECT_TRUE(observer_.revoked().empty());
    auto req = *d;
    req.status = registry::device_status::disabled;
    ASSERT_TRUE(update(req, "*"));
    auto revoked = observer_.revoked();
    ASSERT_EQ(revoked.size(), 3u);
    EXPECT_EQ(revoked[0], (store::identity_key{"dev1", ""}));
    EXPECT_EQ(revoked[1], (store::identity_key{"dev1", "m1"}));
    EXPECT_EQ(revoked[2], (store::identity_key{"dev1", "m2"}));

    auto creds = hub_->credentials({"dev1", "m1"});
    ASSERT_TRUE(creds);
    EXPECT_FALSE(creds->enabled);

    ASSERT_TRUE(update(req, "*"));  // already disabled: no new revocation
    EXPECT_EQ(observer_.revoked().size(), 3u);
}

TEST_F(hub_service_devices, delete_cascades_to_modules_and_twins_and_revokes) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    ASSERT_TRUE(create("dev2"));
    auto r = remove("dev1");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(hub_->get_device("dev1").error().code, errc::device_not_found);
    EXPECT_EQ(hub_->get_module("dev1", "m1").error().code, errc::device_not_found);
    EXPECT_EQ(hub_->get_twin({"dev1", {}}).error().code, errc::device_not_found);
    EXPECT_EQ(hub_->get_twin({"dev1", "m1"}).error().code, errc::device_not_found);
    EXPECT_TRUE(hub_->get_device("dev2"));
    auto revoked = observer_.revoked();
    EXPECT_EQ(revoked, (std::vector<store::identity_key>{{"dev1", ""}, {"dev1", "m1"}}));

    auto again = remove("dev1");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::device_not_found);
}

TEST_F(hub_service_devices, delete_with_stale_etag_fails_and_keeps_the_device) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    ASSERT_TRUE(update(*d, "*"));
    auto r = remove("dev1", testing::quoted(registry::etag_to_string(d->etag)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::precondition_failed);
    EXPECT_TRUE(hub_->get_device("dev1"));
    EXPECT_TRUE(remove("dev1", testing::quoted(registry::etag_to_string(d->etag + 1))));
}

TEST_F(hub_service_devices, recreated_device_gets_a_new_generation_id_and_a_new_twin) {
    auto first = create("dev1");
    ASSERT_TRUE(first);
    ASSERT_TRUE(patch({"dev1", {}}, R"({"tags":{"a":1}})"));
    ASSERT_TRUE(remove("dev1"));
    auto second = create("dev1");
    ASSERT_TRUE(second);
    EXPECT_NE(second->generation_id, first->generation_id);
    auto twin = hub_->get_twin({"dev1", {}});
    ASSERT_TRUE(twin);
    EXPECT_TRUE(twin->at("tags").as_object().empty());
    EXPECT_EQ(twin->at("version"), 2);
}

TEST_F(hub_service_devices, edge_device_gets_a_device_scope_that_cannot_change) {
    auto req = device_request("edge1");
    req.iot_edge = true;
    auto d = create(req);
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->device_scope);
    EXPECT_EQ(*d->device_scope, "ms-azure-iot-edge://edge1-" + d->generation_id);
    auto change = *d;
    change.device_scope = "ms-azure-iot-edge://other-1";
    auto u = update(change, "*");
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code, errc::invalid_argument);
}

TEST_F(hub_service_devices, list_returns_devices_up_to_top) {
    for (auto id : {"c", "a", "b"}) ASSERT_TRUE(create(id));
    auto all = hub_->list_devices(0);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].device_id, "a");
    EXPECT_EQ(hub_->list_devices(2).size(), 2u);
}

TEST_F(hub_service_devices, statistics_count_enabled_and_disabled_devices) {
    ASSERT_TRUE(create("a"));
    ASSERT_TRUE(create("b"));
    auto c = create("c");
    ASSERT_TRUE(c);
    ASSERT_TRUE(create_module("a", "m"));  // modules are not devices
    auto req = *c;
    req.status = registry::device_status::disabled;
    ASSERT_TRUE(update(req, "*"));
    auto s = hub_->statistics();
    EXPECT_EQ(s.total_device_count, 3);
    EXPECT_EQ(s.enabled_device_count, 2);
    EXPECT_EQ(s.disabled_device_count, 1);
    ASSERT_TRUE(remove("a"));
    EXPECT_EQ(hub_->statistics().total_device_count, 2);
}

TEST_F(hub_service_devices, writes_after_the_store_closed_fail_with_shutting_down_and_change_nothing) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    store_->close();
    auto u = update(*d, "*");
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code, errc::shutting_down);
    auto c = create("dev2");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, errc::shutting_down);
    EXPECT_EQ(hub_->get_device("dev1")->etag, d->etag);
    EXPECT_FALSE(hub_->get_device("dev2"));
    EXPECT_EQ(hub_->statistics().total_device_count, 1);
}

// ---- modules ----

TEST_F(hub_service_modules, create_needs_the_device) {
    auto m = create_module("ghost", "m1");
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, errc::device_not_found);
}

TEST_F(hub_service_modules, create_generates_keys_and_twin) {
    ASSERT_TRUE(create("dev1"));
    auto m = create_module("dev1", "m1");
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->authentication.symmetric_key.primary_key.size(), 44u);
    EXPECT_FALSE(m->generation_id.empty());
    auto twin = hub_->get_twin({"dev1", "m1"});
    ASSERT_TRUE(twin);
    EXPECT_EQ(twin->at("moduleId"), "m1");
    EXPECT_EQ(twin->at("deviceId"), "dev1");
    EXPECT_EQ(twin->at("version"), 2);
    auto list = hub_->list_modules("dev1");
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].module_id, "m1");
}

TEST_F(hub_service_modules, create_existing_fails_with_module_already_exists) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    auto m = create_module("dev1", "m1");
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, errc::module_already_exists);
}

TEST_F(hub_service_modules, fifty_first_module_fails_with_too_many_modules) {
    ASSERT_TRUE(create("dev1"));
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(create_module("dev1", "m" + std::to_string(i))) << i;
    auto m = create_module("dev1", "m50");
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, errc::too_many_modules);
    ASSERT_TRUE(remove_module("dev1", "m0"));
    EXPECT_TRUE(create_module("dev1", "m50"));
}

TEST_F(hub_service_modules, update_checks_etag_and_keeps_the_keys_it_is_given) {
    ASSERT_TRUE(create("dev1"));
    auto m = create_module("dev1", "m1");
    ASSERT_TRUE(m);
    auto req = module_request("dev1", "m1");
    req.authentication = m->authentication;
    req.managed_by = "IotEdge";
    auto stale = update_module(req, testing::quoted(registry::etag_to_string(m->etag + 7)));
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::precondition_failed);
    auto u = update_module(req, testing::quoted(registry::etag_to_string(m->etag)));
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->etag, m->etag + 1);
    EXPECT_EQ(u->managed_by, "IotEdge");
    EXPECT_EQ(u->authentication.symmetric_key.primary_key, m->authentication.symmetric_key.primary_key);
    EXPECT_EQ(hub_->get_module("dev1", "m1")->managed_by, "IotEdge");
}

TEST_F(hub_service_modules, update_with_empty_keys_generates_new_keys_as_iot_hub_does) {
    ASSERT_TRUE(create("dev1"));
    auto m = create_module("dev1", "m1");
    ASSERT_TRUE(m);
    auto u = update_module(module_request("dev1", "m1"), "*");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->authentication.symmetric_key.primary_key.size(), 44u);
    EXPECT_NE(u->authentication.symmetric_key.primary_key, m->authentication.symmetric_key.primary_key);
    EXPECT_NE(u->authentication.symmetric_key.secondary_key, m->authentication.symmetric_key.secondary_key);
}

TEST_F(hub_service_modules, missing_module_fails_with_module_not_found) {
    ASSERT_TRUE(create("dev1"));
    EXPECT_EQ(hub_->get_module("dev1", "m9").error().code, errc::module_not_found);
    EXPECT_EQ(update_module(module_request("dev1", "m9"), "*").error().code, errc::module_not_found);
    EXPECT_EQ(remove_module("dev1", "m9").error().code, errc::module_not_found);
    EXPECT_EQ(hub_->get_twin({"dev1", "m9"}).error().code, errc::module_not_found);
    EXPECT_EQ(hub_->list_modules("ghost").error().code, errc::device_not_found);
}

TEST_F(hub_service_modules, delete_removes_module_and_twin_and_revokes_it) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    ASSERT_TRUE(remove_module("dev1", "m1"));
    EXPECT_EQ(hub_->get_module("dev1", "m1").error().code, errc::module_not_found);
    EXPECT_EQ(hub_->get_twin({"dev1", "m1"}).error().code, errc::module_not_found);
    EXPECT_EQ(observer_.revoked(), (std::vector<store::identity_key>{{"dev1", "m1"}}));
    EXPECT_TRUE(hub_->get_device("dev1"));
}

// ---- bulk ----

bulk_entry entry(std::string mode, std::string id, std::string etag = {}) {
    bulk_entry e;
    e.import_mode = std::move(mode);
    e.device = device_request(std::move(id));
    e.etag = std::move(etag);
    return e;
}

TEST_F(hub_service_bulk, creates_all_entries) {
    auto r = bulk({entry("create", "a"), entry("create", "b")});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->is_successful);
    EXPECT_TRUE(r->errors.empty());
    EXPECT_EQ(hub_->get_device("a")->authentication.symmetric_key.primary_key.size(), 44u);
    EXPECT_TRUE(hub_->get_device("b"));
}

TEST_F(hub_service_bulk, duplicate_ids_fail_the_whole_request) {
    auto r = bulk({entry("create", "a"), entry("create", "b"), entry("delete", "a")});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_defined_multiple_times);
    EXPECT_FALSE(hub_->get_device("a"));
    EXPECT_FALSE(hub_->get_device("b"));
}

TEST_F(hub_service_bulk, more_than_the_limit_fails_with_invalid_argument) {
    std::vector<bulk_entry> es;
    for (int i = 0; i < 101; ++i) es.push_back(entry("create", "d" + std::to_string(i)));
    auto r = bulk(std::move(es));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
}

TEST_F(hub_service_bulk, partial_failure_reports_each_failed_entry) {
    ASSERT_TRUE(create("exists"));
    auto r = bulk({entry("create", "new1"), entry("create", "exists"), entry("delete", "ghost"),
                   entry("updatetwin", "new2"), entry("create", "new3")});
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->is_successful);
    ASSERT_EQ(r->errors.size(), 3u);
    EXPECT_EQ(r->errors[0].device_id, "exists");
    EXPECT_EQ(r->errors[0].code, errc::device_already_exists);
    EXPECT_EQ(r->errors[0].operation, "create");
    EXPECT_EQ(r->errors[1].device_id, "ghost");
    EXPECT_EQ(r->errors[1].code, errc::device_not_found);
    EXPECT_EQ(r->errors[2].device_id, "new2");
    EXPECT_EQ(r->errors[2].code, errc::invalid_argument);
    EXPECT_TRUE(hub_->get_device("new1"));
    EXPECT_TRUE(hub_->get_device("new3"));
    EXPECT_FALSE(hub_->get_device("new2"));
}

TEST_F(hub_service_bulk, update_and_delete_modes_honour_etags) {
    auto a = create("a");
    auto b = create("b");
    ASSERT_TRUE(a && b);
    auto ua = entry("updateifmatchetag", "a", registry::etag_to_string(a->etag));
    ua.device.status = registry::device_status::disabled;
    auto r = bulk({ua, entry("deleteifmatchetag", "b", registry::etag_to_string(b->etag + 1)), entry("update", "c")});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->errors.size(), 2u);
    EXPECT_EQ(r->errors[0].device_id, "b");
    EXPECT_EQ(r->errors[0].code, errc::precondition_failed);
    EXPECT_EQ(r->errors[1].device_id, "c");
    EXPECT_EQ(r->errors[1].code, errc::device_not_found);
    EXPECT_EQ(hub_->get_device("a")->status, registry::device_status::disabled);
    EXPECT_TRUE(hub_->get_device("b"));

    r = bulk({entry("delete", "a"), entry("deleteifmatchetag", "b", registry::etag_to_string(b->etag)),
              entry("createorupdate", "c")});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->is_successful);
    EXPECT_FALSE(hub_->get_device("a"));
    EXPECT_FALSE(hub_->get_device("b"));
    EXPECT_TRUE(hub_->get_device("c"));
}

TEST_F(hub_service_bulk, empty_request_succeeds) {
    auto r = bulk({});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->is_successful);
}

// ---- presence and credentials ----

TEST_F(hub_service_presence, connection_state_and_activity_are_visible_at_once) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create("dev2"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    EXPECT_EQ(hub_->connected_device_count(), 0);
    hub_->set_connection_state({"dev1", {}}, true);
    hub_->set_connection_state({"dev1", "m1"}, true);
    EXPECT_EQ(hub_->connected_device_count(), 1);
    auto d = hub_->get_device("dev1");
    EXPECT_EQ(d->connection_state, registry::connection_state::connected);
    EXPECT_TRUE(d->connection_state_updated_time);
    EXPECT_TRUE(d->last_activity_time);
    EXPECT_EQ(hub_->get_twin({"dev1", {}})->at("connectionState"), "Connected");
    EXPECT_EQ(hub_->get_module("dev1", "m1")->connection_state, registry::connection_state::connected);

    auto before = hub_->get_device("dev2")->last_activity_time;
    hub_->touch_activity({"dev2", {}});
    EXPECT_NE(hub_->get_device("dev2")->last_activity_time, before);

    hub_->set_model_id({"dev1", {}}, "dtmi:com:example:Thermostat;1");
    EXPECT_EQ(hub_->get_twin({"dev1", {}})->at("modelId"), "dtmi:com:example:Thermostat;1");

    hub_->set_connection_state({"dev1", {}}, false);
    EXPECT_EQ(hub_->connected_device_count(), 0);
    // Unknown identities are ignored.
    hub_->set_connection_state({"ghost", {}}, true);
    hub_->touch_activity({"dev1", "ghost"});
}

TEST_F(hub_service_presence, identity_and_twin_writes_keep_presence) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    hub_->set_connection_state({"dev1", {}}, true);
    hub_->set_model_id({"dev1", {}}, "dtmi:x;1");
    ASSERT_TRUE(update(*d, "*"));  // the request says Disconnected: presence is not the client's to set
    EXPECT_EQ(hub_->get_device("dev1")->connection_state, registry::connection_state::connected);
    ASSERT_TRUE(patch({"dev1", {}}, R"({"tags":{"a":1}})"));
    EXPECT_EQ(hub_->get_twin({"dev1", {}})->at("modelId"), "dtmi:x;1");
    EXPECT_EQ(hub_->connected_device_count(), 1);
}

TEST_F(hub_service_presence, credentials_of_devices_and_modules) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto m = create_module("dev1", "m1");
    ASSERT_TRUE(m);
    auto c = hub_->credentials({"dev1", {}});
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->enabled);
    EXPECT_EQ(c->authentication.symmetric_key.primary_key, d->authentication.symmetric_key.primary_key);
    auto mc = hub_->credentials({"dev1", "m1"});
    ASSERT_TRUE(mc);
    EXPECT_EQ(mc->authentication.symmetric_key.primary_key, m->authentication.symmetric_key.primary_key);
    EXPECT_EQ(hub_->credentials({"ghost", {}}).error().code, errc::device_not_found);
    EXPECT_EQ(hub_->credentials({"dev1", "ghost"}).error().code, errc::module_not_found);
}

// ---- credential changes (issue 12: key and policy changes cut live sessions) ----

TEST_F(hub_service_credentials, device_key_change_is_told_after_commit_for_that_device_only) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    ASSERT_TRUE(create_module("dev1", "m1"));
    auto req = *d;
    req.authentication.symmetric_key.primary_key = generate_key();
    ASSERT_TRUE(update(req, "*"));
    EXPECT_EQ(observer_.credentials_changed(), (std::vector<store::identity_key>{{"dev1", ""}}));
    EXPECT_EQ(hub_->credentials({"dev1", {}})->authentication.symmetric_key.primary_key,
              req.authentication.symmetric_key.primary_key);

    req.authentication.symmetric_key.secondary_key = generate_key();
    ASSERT_TRUE(update(req, "*"));
    EXPECT_EQ(observer_.credentials_changed().size(), 2u);
    EXPECT_TRUE(observer_.revoked().empty());
}

TEST_F(hub_service_credentials, updates_that_keep_the_keys_are_not_told) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto same = *d;
    same.status_reason = "maintenance";
    ASSERT_TRUE(update(same, "*"));
    EXPECT_TRUE(observer_.credentials_changed().empty());
    // Empty keys regenerate both (as on IoT Hub): that is a key change.
    auto empty_keys = device_request("dev1");
    ASSERT_TRUE(update(empty_keys, "*"));
    EXPECT_EQ(observer_.credentials_changed(), (std::vector<store::identity_key>{{"dev1", ""}}));
}

TEST_F(hub_service_credentials, switching_a_device_to_x509_or_changing_its_thumbprint_is_told) {
    auto d = create("dev1");
    ASSERT_TRUE(d);
    auto req = *d;
    req.authentication.type = registry::auth_type::self_signed;
    req.authentication.symmetric_key = {};
    req.authentication.x509_thumbprint.primary_thumbprint = std::string(40, 'a');
    ASSERT_TRUE(update(req, "*"));
    req.authentication.x509_thumbprint.primary_thumbprint = std::string(40, 'b');
    ASSERT_TRUE(update(req, "*"));
    EXPECT_EQ(observer_.credentials_changed(), (std::vector<store::identity_key>{{"dev1", ""}, {"dev1", ""}}));
}

TEST_F(hub_service_credentials, module_key_change_is_told_for_that_module_only) {
    ASSERT_TRUE(create("dev1"));
    auto m = create_module("dev1", "m1");
    ASSERT_TRUE(m);
    ASSERT_TRUE(create_module("dev1", "m2"));
    auto req = *m;
    req.authentication.symmetric_key.secondary_key = generate_key();
    ASSERT_TRUE(update_module(req, "*"));
    EXPECT_EQ(observer_.credentials_changed(), (std::vector<store::identity_key>{{"dev1", "m1"}}));
    auto same = *m;
    same.authentication = req.authentication;
    ASSERT_TRUE(update_module(same, "*"));  // the current keys sent back: kept
    EXPECT_EQ(observer_.credentials_changed().size(), 1u);
    ASSERT_TRUE(update_module(module_request("dev1", "m1"), "*"));  // empty keys: regenerated
    EXPECT_EQ(observer_.credentials_changed(),
              (std::vector<store::identity_key>{{"dev1", "m1"}, {"dev1", "m1"}}));
}

// ---- shared access policies ----

auth::shared_access_policy policy_named(std::string name, std::uint32_t rights = auth::device_connect) {
    auth::shared_access_policy p;
    p.key_name = std::move(name);
    p.rights = rights;
    return p;
}

TEST_F(hub_service_policies, put_creates_or_replaces_a_policy_durably_and_tells_the_observers) {
    auto created = wait_for<auth::shared_access_policy>([&](auto h) { hub_->put_policy(policy_named("gateway"), h); });
    ASSERT_TRUE(created) << created.error().message;
    EXPECT_EQ(created->primary_key.size(), 44u);  // generated
    EXPECT_EQ(observer_.policies_changed(), 1);

    auto before = hub_->policies();
    auto device = *std::find_if(before.begin(), before.end(), [](auto& p) { return p.key_name == "device"; });
    auto rotated = device;
    rotated.primary_key = generate_key();
    ASSERT_TRUE(wait_for<auth::shared_access_policy>([&](auto h) { hub_->put_policy(rotated, h); }));
    EXPECT_EQ(observer_.policies_changed(), 2);

    auto reopened = hub_service::open(*store_, {});
    ASSERT_TRUE(reopened);
    auto ps = (*reopened)->policies();
    EXPECT_EQ(ps.size(), 6u);
    auto it = std::find_if(ps.begin(), ps.end(), [](auto& p) { return p.key_name == "device"; });
    ASSERT_NE(it, ps.end());
    EXPECT_EQ(it->primary_key, rotated.primary_key);
    EXPECT_EQ(it->secondary_key, device.secondary_key);
}

TEST_F(hub_service_policies, invalid_policy_fails_with_invalid_argument_and_changes_nothing) {
    auto no_rights = wait_for<auth::shared_access_policy>([&](auto h) { hub_->put_policy(policy_named("x", 0), h); });
    ASSERT_FALSE(no_rights);
    EXPECT_EQ(no_rights.error().code, errc::invalid_argument);
    auto duplicate = wait_for<auth::shared_access_policy>([&](auto h) { hub_->put_policy(policy_named("Device"), h); });
    ASSERT_FALSE(duplicate);
    EXPECT_EQ(duplicate.error().code, errc::invalid_argument);
    EXPECT_EQ(hub_->policies().size(), 5u);
    EXPECT_EQ(observer_.policies_changed(), 0);
}

TEST_F(hub_service_policies, delete_removes_it_but_not_an_unknown_one_nor_the_last) {
    ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->delete_policy("device", h); }));
    EXPECT_EQ(observer_.policies_changed(), 1);
    EXPECT_EQ(hub_->policies().size(), 4u);
    auto again = wait_for<void>([&](auto h) { hub_->delete_policy("device", h); });
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::not_found);
    for (auto name : {"service", "registryRead", "registryReadWrite"})
        ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->delete_policy(name, h); }));
    auto last = wait_for<void>([&](auto h) { hub_->delete_policy("iothubowner", h); });
    ASSERT_FALSE(last);
    EXPECT_EQ(last.error().code, errc::invalid_argument);
    ASSERT_EQ(hub_->policies().size(), 1u);
    EXPECT_EQ(observer_.policies_changed(), 4);
}

TEST_F(hub_service_policies, concurrent_writes_are_applied_one_at_a_time_in_call_order) {
    constexpr int n = 20;
    std::vector<std::string> keys(n);
    std::vector<std::future<result<auth::shared_access_policy>>> done;
    for (int i = 0; i < n; ++i) {
        auto p = policy_named("gateway");
        p.primary_key = keys[i] = generate_key();
        auto pr = std::make_shared<std::promise<result<auth::shared_access_policy>>>();
        done.push_back(pr->get_future());
        hub_->put_policy(p, [pr](result<auth::shared_access_policy> r) { pr->set_value(std::move(r)); });
    }
    auto removed = std::make_shared<std::promise<result<void>>>();
    auto removed_f = removed->get_future();
    hub_->delete_policy("service", [removed](result<void> r) { removed->set_value(r); });
    for (auto& f : done) ASSERT_TRUE(f.get());
    ASSERT_TRUE(removed_f.get());
    auto ps = hub_->policies();
    EXPECT_EQ(ps.size(), 5u);
    auto it = std::find_if(ps.begin(), ps.end(), [](auto& p) { return p.key_name == "gateway"; });
    ASSERT_NE(it, ps.end());
    EXPECT_EQ(it->primary_key, keys.back());
    EXPECT_EQ(observer_.policies_changed(), n + 1);
}

TEST_F(hub_service_policies, writes_after_the_store_closed_fail_with_shutting_down) {
    store_->close();
    auto r = wait_for<auth::shared_access_policy>([&](auto h) { hub_->put_policy(policy_named("gateway"), h); });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::shutting_down);
    EXPECT_EQ(hub_->policies().size(), 5u);
    EXPECT_EQ(observer_.policies_changed(), 0);
}

// ---- sessions and telemetry ----

TEST_F(hub_service_sessions, put_get_delete_and_cascade_with_the_device) {
    ASSERT_TRUE(create("dev1"));
    ASSERT_TRUE(create_module("dev1", "m1"));
    store::session_record s{"dev1", {{"$iothub/methods/POST/#", 0}, {"devices/dev1/messages/devicebound/#", 1}}};
    ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->put_session(s, h); }));
    ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->put_session({"dev1/m1", {{"$iothub/twin/res/#", 1}}}, h); }));
    auto got = hub_->get_session("dev1");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->subscriptions, s.subscriptions);
    ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->delete_session("dev1", h); }));
    EXPECT_FALSE(hub_->get_session("dev1"));
    EXPECT_TRUE(hub_->get_session("dev1/m1"));
    ASSERT_TRUE(remove("dev1"));
    EXPECT_FALSE(hub_->get_session("dev1/m1"));
}

TEST_F(hub_service_sessions, append_event_commits_to_the_log) {
    ASSERT_TRUE(create("dev1"));
    store::event_record e;
    e.source = {"dev1", {}};
    e.body = "hello";
    ASSERT_TRUE(wait_for<void>([&](auto h) { hub_->append_event(e, h); }));
    auto events = store_->read_events(store::partition_of(e.source, store::default_event_partitions), 0, 10);
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 1u);
    EXPECT_EQ((*events)[0].body, "hello");
}

}  // namespace
}  // namespace twinhub::service
