// twinhub: the az iot hub-shaped command-line client, built on the C++ SDK (libtwinhub-client).
// JSON on stdout; errors on stderr with an exit code scripts can rely on:
//   0 success, 1 the operation failed (the hub refused it: not found, stale etag, unauthorized, ...),
//   2 usage error (bad arguments, malformed JSON or connection string),
//   3 the hub could not be reached (DNS, TCP, TLS/certificate, timeout).
#include "auth/connection_string.hpp"
#include "cli/certificate.hpp"
#include "cli/json_print.hpp"
#include "cli/monitor_events.hpp"
#include "common/error_mapping.hpp"
#include "server/data_dir.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "common/encoding.hpp"
#include "twinhub/registry_manager.hpp"
#include "twinhub/service_client.hpp"

#include <CLI/CLI.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

namespace {

constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_connection = 3;

constexpr const char* exit_codes_text =
    "Exit codes: 0 success; 1 the operation failed (the hub refused it, e.g. DeviceNotFound, "
    "PreconditionFailed for a stale --etag, IotHubUnauthorizedAccess); 2 usage error (bad arguments, JSON or "
    "connection string); 3 the hub could not be reached (DNS, TCP, TLS/certificate, timeout).\n"
    "Errors are printed on stderr as 'twinhub: <ErrorCode>: <message>'.";

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

// Options every hub-talking command takes.
struct hub_args {
    std::string login;
    std::string ca_file;
    int port = 0;
    int amqp_port = 0;  // c2d-message send only
    int timeout = 60;
};

struct usage_error {
    std::string message;
};

int fail(const twinhub::error& e) {
    if (e.code == twinhub::errc::connection_failed) {
        std::cerr << "twinhub: connection failed: " << e.message << "\n";
        return exit_connection;
    }
    if (e.code == twinhub::errc::gateway_timeout && e.message.find("did not answer") != std::string::npos) {
        std::cerr << "twinhub: timeout: " << e.message << "\n";
        return exit_connection;
    }
    const char* name = twinhub::to_wire(e.code).code_name;
    std::cerr << "twinhub: " << (name && *name ? name : twinhub::to_string(e.code)) << ": " << e.message << "\n";
    return exit_failed;
}

void print(const boost::json::value& v) { std::cout << twinhub::cli::pretty_json(v) << "\n"; }

// JSON from an argument: inline text, or @path to read a file.
boost::json::value parse_json_arg(const std::string& what, const std::string& text) {
    std::string body = text;
    if (!text.empty() && text.front() == '@') {
        std::ifstream in(text.substr(1), std::ios::binary);
        if (!in) throw usage_error{"cannot read " + what + " file '" + text.substr(1) + "'"};
        std::ostringstream ss;
        ss << in.rdbuf();
        body = ss.str();
    }
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) throw usage_error{what + " is not valid JSON (" + ec.message() + "): " + text};
    return v;
}

boost::json::object parse_json_object_arg(const std::string& what, const std::string& text) {
    auto v = parse_json_arg(what, text);
    if (!v.is_object()) throw usage_error{what + " must be a JSON object, e.g. '{\"telemetryInterval\": 10}'"};
    return std::move(v.as_object());
}

std::string login_of(const hub_args& a) {
    std::string cs = a.login;
    if (cs.empty())
        if (const char* env = std::getenv("TWINHUB_CONNECTION_STRING")) cs = env;
    if (cs.empty())
        throw usage_error{"no hub connection string: pass --login \"HostName=...;SharedAccessKeyName=...;SharedAccessKey=...\" "
                          "or set TWINHUB_CONNECTION_STRING (show it with: twinhub hub connection-string show --data-dir DIR)"};
    return cs;
}

twinhub::service_options options_of(const hub_args& a) {
    twinhub::service_options o;
    o.tls.ca_file = a.ca_file;
    if (o.tls.ca_file.empty())
        if (const char* env = std::getenv("TWINHUB_CA_FILE")) o.tls.ca_file = env;
    int port = a.port;
    if (port == 0)
        if (const char* env = std::getenv("TWINHUB_PORT")) port = std::atoi(env);
    if (port < 0 || port > 65535) throw usage_error{"--port must be 1-65535"};
    o.port = static_cast<std::uint16_t>(port);
    int amqp = a.amqp_port;
    if (amqp == 0)
        if (const char* env = std::getenv("TWINHUB_AMQP_PORT")) amqp = std::atoi(env);
    if (amqp < 0 || amqp > 65535) throw usage_error{"--amqp-port must be 1-65535"};
    o.amqp_port = static_cast<std::uint16_t>(amqp);
    o.timeout = std::chrono::seconds(a.timeout);
    return o;
}

twinhub::registry_manager open_hub(const hub_args& a) {
    auto rm = twinhub::registry_manager::from_connection_string(login_of(a), options_of(a));
    if (!rm) throw usage_error{rm.error().message};
    return std::move(*rm);
}

twinhub::service_client open_amqp(const hub_args& a) {
    auto sc = twinhub::service_client::from_connection_string(login_of(a), options_of(a));
    if (!sc) throw usage_error{sc.error().message};
    return std::move(*sc);
}

// --props "a=1;b=2" (az's format): pairs split at ';', each at its first '='.
std::vector<std::pair<std::string, std::string>> parse_props(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string_view rest = text;
    while (!rest.empty()) {
        auto semi = rest.find(';');
        std::string_view pair = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw usage_error{"--props must look like \"key0=value0;key1=value1\"; got '" + std::string(pair) + "'"};
        out.emplace_back(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
    }
    return out;
}

// A random (version 4) UUID, the message id az gives a C2D message that names none.
std::string new_uuid() {
    std::string b = twinhub::random_bytes(16);
    b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += hex[(static_cast<unsigned char>(b[i]) >> 4) & 0xf];
        s += hex[static_cast<unsigned char>(b[i]) & 0xf];
    }
    return s;
}

boost::json::object feedback_json(const twinhub::feedback_record& r) {
    boost::json::object o{{"originalMessageId", r.original_message_id},
                          {"description", r.description},
                          {"deviceGenerationId", r.device_generation_id},
                          {"deviceId", r.device_id}};
    if (!r.module_id.empty()) o["moduleId"] = r.module_id;
    o["enqueuedTimeUtc"] = r.enqueued_time_utc;
    o["statusCode"] = r.status_code;
    return o;
}

// az iot device c2d-message receive's shape: {"data", "properties": {"system", "app"}, "etag"}.
boost::json::object received_json(const twinhub::received_c2d_message& m) {
    boost::json::object system;
    auto put = [&](const char* k, const std::string& v) {
        if (!v.empty()) system[k] = v;
    };
    put("iothub-messageid", m.message_id);
    put("iothub-correlationid", m.correlation_id);
    if (m.sequence_number) system["iothub-sequencenumber"] = std::to_string(m.sequence_number);
    put("iothub-enqueuedtime", m.enqueued_time_utc);
    put("iothub-expiry", m.expiry_time_utc);
    system["iothub-deliverycount"] = std::to_string(m.delivery_count);
    put("iothub-to", m.to);
    put("iothub-userid", m.user_id);
    put("iothub-ack", m.ack);
    put("content-type", m.content_type);
    put("content-encoding", m.content_encoding);
    boost::json::object app;
    for (const auto& [k, v] : m.properties) app[k] = v;
    return {{"data", m.body}, {"properties", {{"system", std::move(system)}, {"app", std::move(app)}}}, {"etag", m.lock_token}};
}

CLI::App* leaf(CLI::App* parent, const std::string& name, const std::string& description, hub_args& a) {
    auto* c = parent->add_subcommand(name, description);
    c->add_option("--login,-l", a.login,
                  "The hub's service connection string (default: env TWINHUB_CONNECTION_STRING)");
    c->add_option("--ca-file", a.ca_file, "PEM file of the CA to trust, e.g. DATA_DIR/tls/ca.pem (default: env TWINHUB_CA_FILE)");
    c->add_option("--port", a.port,
                  "REST port when it is not 443 and not in HostName (default: env TWINHUB_PORT)");
    c->add_option("--request-timeout", a.timeout, "Seconds to wait for each answer")->capture_default_str();
    c->footer(exit_codes_text);
    return c;
}

twinhub::symmetric_keys keys_of(const std::string& pk, const std::string& sk) { return {pk, sk}; }

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"twinhub: manage a twinhub (or Azure IoT Hub) from the command line, az iot hub style.\n"
                 "Commands that talk to a hub take --login \"<service connection string>\" (or env "
                 "TWINHUB_CONNECTION_STRING) and --ca-file (or env TWINHUB_CA_FILE)."};
    app.footer(exit_codes_text);
    app.require_subcommand(1);

    // ---- hub connection-string show (local data dir, no server) ----
    auto* hub = app.add_subcommand("hub", "Hub-level commands");
    hub->require_subcommand(1);
    auto* cs = hub->add_subcommand("connection-string", "Hub connection strings");
    cs->require_subcommand(1);
    auto* show = cs->add_subcommand("show", "Print a shared access policy's connection string from a local data directory");
    std::string data_dir, policy = "iothubowner";
    show->add_option("--data-dir", data_dir, "The hub's data directory")->required();
    std::string store_url = std::getenv("TWINHUB_STORE") ? std::getenv("TWINHUB_STORE") : "";
    show->add_option("--store", store_url, "The hub's postgresql:// store URL, if twinhubd runs with --store "
                                           "[env TWINHUB_STORE]");
    show->add_option("--policy-name,--pn", policy, "Shared access policy name")->capture_default_str();
    std::string cs_output = "tsv";
    show->add_option("-o,--output", cs_output,
                     "tsv: the bare connection string (default); json: {\"connectionString\": \"...\"} as az prints it")
        ->check(CLI::IsMember({"tsv", "json"}))
        ->capture_default_str();
    bool eventhub = false;
    show->add_flag("--eventhub,--eh", eventhub,
                   "The built-in endpoint's Event Hubs-compatible connection string (Endpoint=sb://...;EntityPath=...), "
                   "for @azure/event-hubs and other Event Hubs clients");
    int rc = 0;
    show->callback([&] { rc = connection_string_show(data_dir, store_url, policy, cs_output == "json", eventhub); });

    hub_args a;
    twinhub::cli::monitor_args monitor;
    std::function<int()> action;
    std::string device_id, module_id, pk, sk, status, status_reason, etag, key_type = "primary", desired, tags,
        json_doc, sql, method_name, method_payload = "null", managed_by;
    int top = 0, method_timeout = 30, connect_timeout = 0;
    // c2d-message
    std::string data = "Ping from Az CLI IoT Extension", props, ack, mid, cid, ct, ce = "utf-8", lock_token;
    long long expiry_ms = 0;
    bool wait = false, settle_complete = false, settle_abandon = false, settle_reject = false;
    int wait_timeout = 300;

    auto run = [&](CLI::App* c, std::function<int()> f) { c->callback([&action, f] { action = f; }); };
    auto dev_opt = [&](CLI::App* c) { c->add_option("-d,--device-id", device_id, "Device id")->required(); };
    auto mod_opt = [&](CLI::App* c) { c->add_option("-m,--module-id", module_id, "Module id")->required(); };
    auto etag_opt = [&](CLI::App* c) {
        c->add_option("--etag,-e", etag, "Only if the current etag is this one (default: '*', any)");
    };
    auto key_opts = [&](CLI::App* c) {
        c->add_option("--pk,--primary-key", pk, "Primary key (base64); default: generated by the hub");
        c->add_option("--sk,--secondary-key", sk, "Secondary key (base64); default: generated by the hub");
    };
    auto e = [&]() -> std::string { return etag.empty() ? std::string("*") : etag; };

    // ---- hub consumer-group (az iot hub consumer-group): the built-in endpoint's consumer groups ----
    std::string group_name;
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
        run(c, [&, base] { return call("PUT", base + "/" + twinhub::percent_encode(group_name)); });
        c = leaf(g, "show", "Show a consumer group", a);
        name_opt(c);
        run(c, [&, base] { return call("GET", base + "/" + twinhub::percent_encode(group_name)); });
        c = leaf(g, "list", "List the consumer groups ($Default first)", a);
        run(c, [&, base] { return call("GET", base); });
        c = leaf(g, "delete", "Delete a consumer group ($Default cannot be deleted)", a);
        name_opt(c);
        run(c, [&, base] { return call("DELETE", base + "/" + twinhub::percent_encode(group_name)); });
    }

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
            auto r = hub.update_device(d, e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(di, "delete", "Delete a device identity (and its modules and twin)", a);
        dev_opt(c);
        etag_opt(c);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.delete_device(device_id, e());
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
            auto r = hub.update_module(m, e());
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
            auto r = hub.delete_module(device_id, module_id, e());
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

    // ---- device-twin / module-twin ----
    auto twin_commands = [&](CLI::App* group, bool module) {
        group->require_subcommand(1);
        auto* c = leaf(group, "show", module ? "Show a module twin" : "Show a device twin", a);
        dev_opt(c);
        if (module) mod_opt(c);
        run(c, [&, module] {
            auto hub = open_hub(a);
            auto r = module ? hub.get_module_twin(device_id, module_id) : hub.get_twin(device_id);
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(group, "update",
                 "Merge-patch the twin's desired properties and/or tags (null deletes a key); prints the new twin", a);
        dev_opt(c);
        if (module) mod_opt(c);
        c->add_option("--desired", desired, "Desired properties patch, JSON object or @file, e.g. '{\"telemetryInterval\": 10}'");
        c->add_option("--tags", tags, "Tags patch, JSON object or @file");
        etag_opt(c);
        run(c, [&, module]() -> int {
            if (desired.empty() && tags.empty()) throw usage_error{"give --desired and/or --tags"};
            boost::json::object patch;
            if (!desired.empty()) patch["properties"] = boost::json::object{{"desired", parse_json_object_arg("--desired", desired)}};
            if (!tags.empty()) patch["tags"] = parse_json_object_arg("--tags", tags);
            auto hub = open_hub(a);
            auto r = module ? hub.update_module_twin(device_id, module_id, patch, e()) : hub.update_twin(device_id, patch, e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(group, "replace", "Replace the twin's tags and desired properties with those of a whole twin document", a);
        dev_opt(c);
        if (module) mod_opt(c);
        c->add_option("-j,--json", json_doc, "Twin document, JSON object or @file: {\"tags\":{...},\"properties\":{\"desired\":{...}}}")
            ->required();
        etag_opt(c);
        run(c, [&, module]() -> int {
            auto doc = parse_json_object_arg("--json", json_doc);
            auto hub = open_hub(a);
            auto r = module ? hub.replace_module_twin(device_id, module_id, doc, e()) : hub.replace_twin(device_id, doc, e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
    };
    twin_commands(app.add_subcommand("device-twin", "Manage device twins"), false);
    twin_commands(app.add_subcommand("module-twin", "Manage module twins"), true);

    // ---- query ----
    {
        auto* c = leaf(&app, "query", "Query twins with the IoT Hub query language; prints a JSON array", a);
        c->add_option("-q,--query-command", sql, "e.g. \"SELECT * FROM devices WHERE tags.location = 'ship'\"")->required();
        c->add_option("--top", top, "At most this many results (default: all)");
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.query_all(sql, top > 0 ? static_cast<std::size_t>(top) : 0);
            if (!r) return fail(r.error());
            print(*r);
            return exit_ok;
        });
    }

    // ---- direct methods ----
    auto method_commands = [&](bool module) {
        auto* c = leaf(&app, module ? "invoke-module-method" : "invoke-device-method",
                       module ? "Invoke a direct method on a module; prints {\"status\", \"payload\"}"
                              : "Invoke a direct method on a device; prints {\"status\", \"payload\"}",
                       a);
        dev_opt(c);
        if (module) mod_opt(c);
        c->add_option("--mn,--method-name", method_name, "Method name")->required();
        c->add_option("--mp,--method-payload", method_payload, "JSON payload or @file")->capture_default_str();
        c->add_option("--to,--timeout", method_timeout, "Seconds to wait for the answer (5-300)")->capture_default_str();
        c->add_option("--ct,--connect-timeout", connect_timeout, "Seconds to wait for the device to connect")
            ->capture_default_str();
        run(c, [&, module] {
            twinhub::method_invocation call;
            call.method_name = method_name;
            call.payload = parse_json_arg("--method-payload", method_payload);
            call.response_timeout_seconds = method_timeout;
            call.connect_timeout_seconds = connect_timeout;
            auto hub = open_hub(a);
            auto r = module ? hub.invoke_module_method(device_id, module_id, call) : hub.invoke_device_method(device_id, call);
            if (!r) return fail(r.error());
            print(boost::json::object{{"status", r->status}, {"payload", r->payload}});
            return exit_ok;
        });
    };
    method_commands(false);
    method_commands(true);

    // ---- c2d-message (az iot device c2d-message) ----
    {
        auto* g = app.add_subcommand("c2d-message", "Cloud-to-device messages: send and purge (service side), "
                                                    "receive/complete/abandon/reject (device HTTPS API)");
        g->require_subcommand(1);

        auto* c = leaf(g, "send",
                       "Send a C2D message over AMQP (port 5671: --amqp-port or env TWINHUB_AMQP_PORT). With --wait, "
                       "print the feedback record for it once the device settled it (feedback batches read while "
                       "waiting are accepted, as az does)",
                       a);
        dev_opt(c);
        c->add_option("-m,--module-id", module_id, "Module id: send to the module (a twinhub extension)");
        c->add_option("--data,--da", data, "Message body")->capture_default_str();
        c->add_option("--props,--properties,-p", props, "Application properties: \"key0=value0;key1=value1\"");
        c->add_option("--ack", ack, "Feedback to ask for (iothub-ack): none | positive | negative | full")
            ->check(CLI::IsMember({"none", "positive", "negative", "full"}));
        c->add_option("--mid,--message-id", mid, "Message id (default: a new UUID)");
        c->add_option("--cid,--correlation-id", cid, "Correlation id");
        c->add_option("--ct,--content-type", ct, "Content type, e.g. application/json");
        c->add_option("--ce,--content-encoding", ce, "Content encoding")->capture_default_str();
        c->add_option("--expiry,--expiry-time-utc", expiry_ms, "Absolute expiry, milliseconds since the Unix epoch");
        c->add_flag("--wait,-w", wait, "Wait for the feedback record (needs --ack positive, negative or full)");
        c->add_option("--to,--timeout", wait_timeout, "With --wait: seconds to wait for the feedback")->capture_default_str();
        c->add_option("--amqp-port", a.amqp_port, "AMQP port when it is not 5671 (default: env TWINHUB_AMQP_PORT)");
        run(c, [&]() -> int {
            twinhub::c2d_message m(data);
            m.message_id = mid.empty() ? new_uuid() : mid;
            m.correlation_id = cid;
            m.content_type = ct;
            m.content_encoding = ce;
            if (expiry_ms > 0)
                m.expiry_time = std::chrono::system_clock::time_point{std::chrono::milliseconds(expiry_ms)};
            if (!ack.empty()) m.ack = *twinhub::parse_c2d_ack(ack);
            m.properties = parse_props(props);
            if (wait && (m.ack == twinhub::c2d_ack::none))
                throw usage_error{"--wait needs --ack positive, negative or full: the hub sends feedback only when asked"};
            auto sc = open_amqp(a);
            auto r = module_id.empty() ? sc.send(device_id, m) : sc.send(device_id, module_id, m);
            if (!r) return fail(r.error());
            if (!wait) return exit_ok;
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_timeout);
            while (std::chrono::steady_clock::now() < deadline) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
                auto batch = sc.receive_feedback(std::min<std::chrono::milliseconds>(left, std::chrono::seconds(5)));
                if (!batch) return fail(batch.error());
                for (const auto& rec : *batch) {
                    if (rec.original_message_id != m.message_id) continue;
                    print(feedback_json(rec));
                    return exit_ok;
                }
            }
            std::cerr << "twinhub: Timeout: no feedback for message '" << m.message_id << "' within " << wait_timeout
                      << " s (the device has not settled it)\n";
            return exit_failed;
        });

        c = leaf(g, "purge", "Remove every message queued for a device (or, with -m, a module); prints the count", a);
        dev_opt(c);
        c->add_option("-m,--module-id", module_id, "Module id: purge the module's queue (a twinhub extension)");
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.purge_c2d_messages(device_id, module_id);
            if (!r) return fail(r.error());
            boost::json::object o{{"totalMessagesPurged", r->total_messages_purged}, {"deviceId", r->device_id}};
            if (r->module_id.empty()) o["moduleId"] = nullptr;
            else o["moduleId"] = r->module_id;
            print(o);
            return exit_ok;
        });

        c = leaf(g, "receive",
                 "Receive the next C2D message as the device (device HTTPS API; the policy needs DeviceConnect); "
                 "prints {\"data\", \"properties\": {\"system\", \"app\"}, \"etag\"}, nothing when the queue is empty",
                 a);
        dev_opt(c);
        auto* cm = c->add_flag("--complete", settle_complete, "Complete the message at once");
        auto* ab = c->add_flag("--abandon", settle_abandon, "Abandon the message at once");
        auto* rj = c->add_flag("--reject", settle_reject, "Reject the message at once");
        cm->excludes(ab)->excludes(rj);
        ab->excludes(rj);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.receive_c2d_message(device_id);
            if (!r) return fail(r.error());
            if (!*r) return exit_ok;
            const auto& m = **r;
            if (settle_complete || settle_abandon || settle_reject) {
                auto s = settle_complete ? hub.complete_c2d_message(device_id, m.lock_token)
                         : settle_abandon ? hub.abandon_c2d_message(device_id, m.lock_token)
                                          : hub.reject_c2d_message(device_id, m.lock_token);
                if (!s) return fail(s.error());
            }
            print(received_json(m));
            return exit_ok;
        });

        auto settle_command = [&](const char* name, const char* what, int kind) {
            auto* s = leaf(g, name, what, a);
            dev_opt(s);
            s->add_option("--lock-token,--etag,-e", lock_token, "The lock token: the etag that receive printed")->required();
            run(s, [&, kind] {
                auto hub = open_hub(a);
                auto r = kind == 0   ? hub.complete_c2d_message(device_id, lock_token)
                         : kind == 1 ? hub.abandon_c2d_message(device_id, lock_token)
                                     : hub.reject_c2d_message(device_id, lock_token);
                if (!r) return fail(r.error());
                return exit_ok;
            });
        };
        settle_command("complete", "Complete a received message: it leaves the queue (Success feedback if asked)", 0);
        settle_command("abandon", "Abandon a received message: it goes back to the queue", 1);
        settle_command("reject", "Reject a received message: it is dead-lettered (Rejected feedback if asked)", 2);
    }

    // ---- certificate (az iot hub certificate; src/cli/certificate.cpp) ----
    twinhub::cli::add_certificate_commands(
        app, {[&](CLI::App* p, const std::string& n, const std::string& d) { return leaf(p, n, d, a); },
              [&] { return open_hub(a); }, fail, run});

    // ---- monitor-events (az iot hub monitor-events; src/cli/monitor_events.cpp) ----
    {
        auto* c = leaf(&app, "monitor-events",
                       "Stream device-to-cloud events from the built-in Event Hubs-compatible endpoint (AMQP, port "
                       "5671: --amqp-port or env TWINHUB_AMQP_PORT), one JSON object per line; the policy needs "
                       "ServiceConnect",
                       a);
        c->add_option("--amqp-port", a.amqp_port, "AMQP port when it is not 5671 (default: env TWINHUB_AMQP_PORT)");
        twinhub::cli::add_monitor_options(c, monitor);
        run(c, [&] { return twinhub::cli::monitor_events(monitor, login_of(a), options_of(a), fail); });
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : exit_usage;
    }
    if (!action) return rc;
    try {
        return action();
    } catch (const usage_error& u) {
        std::cerr << "twinhub: usage: " << u.message << "\n";
        return exit_usage;
    }
}
