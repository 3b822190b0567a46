#include "cli/cli_common.hpp"

#include <boost/json/array.hpp>

namespace twinhub::cli {
namespace {

twinhub::symmetric_keys keys_of(const std::string& pk, const std::string& sk) { return {pk, sk}; }

}  // namespace

void add_device_commands(CLI::App& app, cli_state& s) {
    auto& a = s.a;
    auto run = [&s](CLI::App* c, std::function<int()> f) { s.run(c, std::move(f)); };
    auto& device_id = s.device_id;
    auto& module_id = s.module_id;
    auto& pk = s.pk;
    auto& sk = s.sk;
    auto& status = s.status;
    auto& status_reason = s.status_reason;
    auto& key_type = s.key_type;
    auto& managed_by = s.managed_by;
    auto& top = s.top;
    auto dev_opt = [&s](CLI::App* c) { s.dev_opt(c); };
    auto mod_opt = [&s](CLI::App* c) { s.mod_opt(c); };
    auto etag_opt = [&s](CLI::App* c) { s.etag_opt(c); };
    auto key_opts = [&s](CLI::App* c) { s.key_opts(c); };

    // ---- device-identity ----
    auto* di = app.add_subcommand("device-identity", "Manage device identities");
    di->require_subcommand(1);
    {
        auto* c = leaf(di, "create", "Create a device identity with SAS keys (generated unless --pk/--sk)", a);
        dev_opt(c);
        key_opts(c);
        c->add_option("--status", status, "enabled | disabled")->check(CLI::IsMember({"enabled", "disabled"}));
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.create_device(device_id, keys_of(pk, sk), status.empty() ? "enabled" : status);
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(di, "show", "Show a device identity", a);
        dev_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.get_device(device_id);
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(di, "list", "List device identities", a);
        c->add_option("--top", top, "At most this many (1-1000)");
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.list_devices(top > 0 ? top : 1000);
            if (!r) return fail(r.error());
            boost::json::array out;
            for (auto& d : *r) out.push_back(d.json);
            print(out);
            return exit_ok;
        });
        c = leaf(di, "update", "Update a device identity's status or keys", a);
        dev_opt(c);
        key_opts(c);
        etag_opt(c);
        c->add_option("--status", status, "enabled | disabled")->check(CLI::IsMember({"enabled", "disabled"}));
        c->add_option("--status-reason", status_reason, "Why the status changed");
        run(c, [&] {
            auto hub = open_hub(a);
            auto cur = hub.get_device(device_id);
            if (!cur) return fail(cur.error());
            auto d = *cur;
            if (!status.empty()) d.status = status;
            if (!status_reason.empty()) d.status_reason = status_reason;
            if (!pk.empty()) d.keys.primary_key = pk;
            if (!sk.empty()) d.keys.secondary_key = sk;
            auto r = hub.update_device(d, s.e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(di, "delete", "Delete a device identity (and its modules and twin)", a);
        dev_opt(c);
        etag_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.delete_device(device_id, s.e());
            if (!r) return fail(r.error());
            return exit_ok;
        });
        auto* dcs = di->add_subcommand("connection-string", "Device connection strings");
        dcs->require_subcommand(1);
        c = leaf(dcs, "show", "Print a device's connection string", a);
        dev_opt(c);
        c->add_option("--kt,--key-type", key_type, "primary | secondary")->check(CLI::IsMember({"primary", "secondary"}));
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.device_connection_string(device_id, key_type == "secondary" ? twinhub::key_type::secondary
                                                                                     : twinhub::key_type::primary);
            if (!r) return fail(r.error());
            print(boost::json::object{{"connectionString", *r}});
            return exit_ok;
        });
    }

    // ---- module-identity ----
    auto* mi = app.add_subcommand("module-identity", "Manage module identities");
    mi->require_subcommand(1);
    {
        auto* c = leaf(mi, "create", "Create a module identity with SAS keys (generated unless --pk/--sk)", a);
        dev_opt(c);
        mod_opt(c);
        key_opts(c);
        c->add_option("--managed-by", managed_by, "Owner of the module, e.g. IotEdge");
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.create_module(device_id, module_id, keys_of(pk, sk), managed_by);
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(mi, "show", "Show a module identity", a);
        dev_opt(c);
        mod_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.get_module(device_id, module_id);
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(mi, "list", "List the module identities of a device", a);
        dev_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.list_modules(device_id);
            if (!r) return fail(r.error());
            boost::json::array out;
            for (auto& m : *r) out.push_back(m.json);
            print(out);
            return exit_ok;
        });
        c = leaf(mi, "update", "Update a module identity's keys", a);
        dev_opt(c);
        mod_opt(c);
        key_opts(c);
        etag_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto cur = hub.get_module(device_id, module_id);
            if (!cur) return fail(cur.error());
            auto m = *cur;
            if (!pk.empty()) m.keys.primary_key = pk;
            if (!sk.empty()) m.keys.secondary_key = sk;
            auto r = hub.update_module(m, s.e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(mi, "delete", "Delete a module identity (and its twin)", a);
        dev_opt(c);
        mod_opt(c);
        etag_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.delete_module(device_id, module_id, s.e());
            if (!r) return fail(r.error());
            return exit_ok;
        });
        auto* mcs = mi->add_subcommand("connection-string", "Module connection strings");
        mcs->require_subcommand(1);
        c = leaf(mcs, "show", "Print a module's connection string", a);
        dev_opt(c);
        mod_opt(c);
        c->add_option("--kt,--key-type", key_type, "primary | secondary")->check(CLI::IsMember({"primary", "secondary"}));
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.module_connection_string(device_id, module_id,
                                                  key_type == "secondary" ? twinhub::key_type::secondary
                                                                          : twinhub::key_type::primary);
            if (!r) return fail(r.error());
            print(boost::json::object{{"connectionString", *r}});
            return exit_ok;
        });
    }

    add_import_command(di, s);
}

}  // namespace twinhub::cli
