#include "cli/cli_common.hpp"

#include "auth/connection_string.hpp"
#include "common/encoding.hpp"
#include "server/data_dir.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <iostream>

namespace twinhub::cli {
namespace {

// Prints the bare connection string (what an SDK or TWINHUB_CONNECTION_STRING takes), or with
// `json` the az shape {"connectionString": "..."}. Reads only the policies, so it is quick for any
// hub size and works while twinhubd runs (SQLite WAL readers do not block the writer).
int connection_string_show(const std::string& data_dir, const std::string& store_url, const std::string& policy_name,
                           bool json, bool eventhub) {
    using namespace twinhub;
    std::vector<std::string> names;
    try {
        names = server::read_host_names(data_dir);
    } catch (const std::exception& e) {
        std::cerr << "twinhub: " << e.what() << "\n";
        return 1;
    }
    server::data_dir d{data_dir};
    auto st = store_url.empty() ? store::open_sqlite_store(d.store_file(), {.read_only = true})
                                : store::open_postgres_store(store_url);
    if (!st) {
        std::cerr << "twinhub: cannot open " << (store_url.empty() ? d.store_file().string() : "the PostgreSQL store")
                  << ": " << st.error().message << "\n";
        return 1;
    }
    auto policies = (*st)->load_policies();
    (*st)->close();
    if (!policies) {
        std::cerr << "twinhub: cannot read the store: " << policies.error().message << "\n";
        return 1;
    }
    for (const auto& p : *policies) {
        if (p.key_name != policy_name) continue;
        std::string cs = eventhub ? auth::format_event_hub_connection_string(names.front(), p.key_name, p.primary_key)
                                  : auth::format_service_connection_string(names.front(), p.key_name, p.primary_key);
        if (json) std::cout << boost::json::serialize(boost::json::object{{"connectionString", cs}}) << "\n";
        else std::cout << cs << "\n";
        return 0;
    }
    std::cerr << "twinhub: no shared access policy named '" << policy_name << "' (the hub has:";
    for (const auto& p : *policies) std::cerr << " " << p.key_name;
    std::cerr << ")\n";
    return 1;
}

}  // namespace

void add_hub_commands(CLI::App& app, cli_state& s) {
    auto& a = s.a;
    auto run = [&s](CLI::App* c, std::function<int()> f) { s.run(c, std::move(f)); };
    auto& group_name = s.group_name;

    // ---- hub connection-string show (local data dir, no server) ----
    auto* hub = app.add_subcommand("hub", "Hub-level commands");
    hub->require_subcommand(1);
    auto* cs = hub->add_subcommand("connection-string", "Hub connection strings");
    cs->require_subcommand(1);
    auto* show = cs->add_subcommand("show", "Print a shared access policy's connection string from a local data directory");
    show->add_option("--data-dir", s.data_dir, "The hub's data directory")->required();
    s.store_url = std::getenv("TWINHUB_STORE") ? std::getenv("TWINHUB_STORE") : "";
    show->add_option("--store", s.store_url, "The hub's postgresql:// store URL, if twinhubd runs with --store "
                                             "[env TWINHUB_STORE]");
    show->add_option("--policy-name,--pn", s.policy, "Shared access policy name")->capture_default_str();
    show->add_option("-o,--output", s.cs_output,
                     "tsv: the bare connection string (default); json: {\"connectionString\": \"...\"} as az prints it")
        ->check(CLI::IsMember({"tsv", "json"}))
        ->capture_default_str();
    show->add_flag("--eventhub,--eh", s.eventhub,
                   "The built-in endpoint's Event Hubs-compatible connection string (Endpoint=sb://...;EntityPath=...), "
                   "for @azure/event-hubs and other Event Hubs clients");
    show->callback([&s] { s.rc = connection_string_show(s.data_dir, s.store_url, s.policy, s.cs_output == "json", s.eventhub); });

    // ---- hub consumer-group (az iot hub consumer-group): the built-in endpoint's consumer groups ----
    {
        auto* g = hub->add_subcommand("consumer-group", "Consumer groups of the built-in Event Hubs-compatible endpoint");
        g->require_subcommand(1);
        auto name_opt = [&](CLI::App* c) { c->add_option("-n,--name", group_name, "Consumer group name")->required(); };
        auto call = [&](const char* method, std::string target) {
            auto hub_rm = open_hub(a);
            auto r = hub_rm.raw_request(method, target);
            if (!r) return fail(r.error());
            if (r->empty()) return exit_ok;
            boost::system::error_code ec;
            auto v = boost::json::parse(*r, ec);
            if (ec) return fail(twinhub::error{twinhub::errc::format_error, "the hub's answer is not JSON"});
            // list: az prints the array itself.
            if (auto* o = v.if_object(); o && o->contains("value")) print(o->at("value"));
            else print(v);
            return exit_ok;
        };
        const std::string base = "/eventHubEndpoints/events/consumerGroups";
        auto* c = leaf(g, "create", "Create a consumer group (kept if it exists)", a);
        name_opt(c);
        run(c, [&, call, base] { return call("PUT", base + "/" + twinhub::percent_encode(group_name)); });
        c = leaf(g, "show", "Show a consumer group", a);
        name_opt(c);
        run(c, [&, call, base] { return call("GET", base + "/" + twinhub::percent_encode(group_name)); });
        c = leaf(g, "list", "List the consumer groups ($Default first)", a);
        run(c, [&, call, base] { return call("GET", base); });
        c = leaf(g, "delete", "Delete a consumer group ($Default cannot be deleted)", a);
        name_opt(c);
        run(c, [&, call, base] { return call("DELETE", base + "/" + twinhub::percent_encode(group_name)); });
    }

}

}  // namespace twinhub::cli
