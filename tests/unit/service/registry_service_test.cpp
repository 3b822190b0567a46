// registry_service on its own (no façade): devices and modules over the record cache and the
// write pipeline; what it tells the notifier and the session service.
#include "service_parts.hpp"

#include <gtest/gtest.h>

namespace twinhub::service {
namespace {

using testing::service_parts;
using testing::wait_for;

TEST(registry_service, created_identities_are_readable_before_the_handler_returns) {
    service_parts p;
    auto d = wait_for<registry::device_identity>([&](auto h) {
        p.registry.create_device(testing::device_request("dev1"), [&p, h](result<registry::device_identity> r) {
            EXPECT_TRUE(p.registry.get_device("dev1")) << "not readable in its own handler";
            h(std::move(r));
        });
    });
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_FALSE(d->generation_id.empty());
    EXPECT_FALSE(d->authentication.symmetric_key.primary_key.empty());
    ASSERT_TRUE(p.create_module("dev1", "m1"));
    EXPECT_EQ(p.registry.list_modules("dev1")->size(), 1u);
    EXPECT_TRUE(p.twins.get_twin({"dev1", "m1"}));
    auto missing = p.create_module("nodev", "m1");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, errc::device_not_found);
    auto again = p.create("dev1");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::device_already_exists);
    EXPECT_EQ(p.registry.statistics().total_device_count, 1);
}

TEST(registry_service, deleting_a_device_revokes_its_modules_and_drops_their_sessions) {
    service_parts p;
    testing::recording_observer obs;
    p.notifier.add_observer(&obs);
    ASSERT_TRUE(p.create("dev1"));
    ASSERT_TRUE(p.create_module("dev1", "m1"));
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.sessions.put({"dev1/m1", {{"a/#", 1}}}, h); }));
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.sessions.put({"dev10", {}}, h); }));  // same prefix, other device
    ASSERT_TRUE(wait_for<void>([&](auto h) { p.registry.delete_device("dev1", "*", h); }));
    EXPECT_EQ(obs.revoked(), (std::vector<store::identity_key>{{"dev1", ""}, {"dev1", "m1"}}));
    EXPECT_FALSE(p.sessions.get("dev1/m1"));
    EXPECT_TRUE(p.sessions.get("dev10"));
    EXPECT_FALSE(p.registry.get_device("dev1"));
    EXPECT_FALSE(p.twins.get_twin({"dev1", "m1"}));
    p.notifier.remove_observer(&obs);
}

TEST(registry_service, disabling_revokes_and_new_keys_recheck_credentials) {
    service_parts p;
    testing::recording_observer obs;
    p.notifier.add_observer(&obs);
    auto d = p.create("dev1");
    ASSERT_TRUE(d);
    ASSERT_TRUE(p.create_module("dev1", "m1"));
    auto same = *d;
    ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { p.registry.update_device(same, "*", h); }));
    EXPECT_TRUE(obs.credentials_changed().empty()) << "same keys: nothing to re-check";
    auto rekeyed = *d;
    rekeyed.authentication.symmetric_key.primary_key.clear();  // generated anew
    ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { p.registry.update_device(rekeyed, "*", h); }));
    EXPECT_EQ(obs.credentials_changed(), (std::vector<store::identity_key>{{"dev1", ""}}));
    auto disabled = *p.registry.get_device("dev1");
    disabled.status = registry::device_status::disabled;
    ASSERT_TRUE(wait_for<registry::device_identity>([&](auto h) { p.registry.update_device(disabled, "*", h); }));
    EXPECT_EQ(obs.revoked(), (std::vector<store::identity_key>{{"dev1", ""}, {"dev1", "m1"}}));
    EXPECT_FALSE(p.presence.credentials({"dev1", "m1"})->enabled);
    EXPECT_EQ(p.registry.statistics().disabled_device_count, 1);
    p.notifier.remove_observer(&obs);
}

TEST(registry_service, bulk_applies_each_entry_on_its_own) {
    service_parts p(registry_options{.max_bulk_entries = 3});
    ASSERT_TRUE(p.create("old"));
    std::vector<bulk_entry> entries{{"create", "", testing::device_request("new")},
                                    {"createorupdate", "", testing::device_request("old")},
                                    {"updateifmatchetag", "", testing::device_request("x")}};
    auto r = wait_for<bulk_result>([&](auto h) { p.registry.bulk(entries, h); });
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->is_successful);
    ASSERT_EQ(r->errors.size(), 1u);
    EXPECT_EQ(r->errors[0].device_id, "x");
    EXPECT_EQ(r->errors[0].code, errc::invalid_argument);  // requires an eTag
    EXPECT_TRUE(p.registry.get_device("new"));
    EXPECT_EQ(p.registry.get_device("old")->etag, 1u);
    entries.push_back({"delete", "", testing::device_request("new")});
    auto too_many = wait_for<bulk_result>([&](auto h) { p.registry.bulk(entries, h); });
    ASSERT_FALSE(too_many);
    EXPECT_EQ(too_many.error().code, errc::invalid_argument);
    EXPECT_TRUE(p.registry.get_device("new")) << "nothing is applied when the request is refused";
}

}  // namespace
}  // namespace twinhub::service
