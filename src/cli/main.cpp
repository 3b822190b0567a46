// twinhub: the az iot hub-shaped command-line client. JSON on stdout, errors on stderr with a
// non-zero exit code (1 = the operation failed, 2 = bad usage).
#include "auth/connection_string.hpp"
#include "server/data_dir.hpp"
#include "store/sqlite_store.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

int connection_string_show(const std::string& data_dir, const std::string& policy_name) {
    using namespace twinhub;
    std::vector<std::string> names;
    try {
        names = server::read_host_names(data_dir);
    } catch (const std::exception& e) {
        std::cerr << "twinhub: " << e.what() << "\n";
        return 1;
    }
    server::data_dir d{data_dir};
    auto st = store::open_sqlite_store(d.store_file());
    if (!st) {
        std::cerr << "twinhub: cannot open " << d.store_file().string() << ": " << st.error().message << "\n";
        return 1;
    }
    auto snap = (*st)->load();
    (*st)->close();
    if (!snap) {
        std::cerr << "twinhub: cannot read the store: " << snap.error().message << "\n";
        return 1;
    }
    for (const auto& p : snap->policies) {
        if (p.key_name != policy_name) continue;
        std::cout << "{\"connectionString\": \""
                  << auth::format_service_connection_string(names.front(), p.key_name, p.primary_key) << "\"}\n";
        return 0;
    }
    std::cerr << "twinhub: no shared access policy named '" << policy_name << "' (the hub has:";
    for (const auto& p : snap->policies) std::cerr << " " << p.key_name;
    std::cerr << ")\n";
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"twinhub: manage a twinhub (or Azure IoT Hub) from the command line, az iot hub style"};
    app.require_subcommand(1);
    auto* hub = app.add_subcommand("hub", "Hub-level commands");
    hub->require_subcommand(1);
    auto* cs = hub->add_subcommand("connection-string", "Hub connection strings");
    cs->require_subcommand(1);
    auto* show = cs->add_subcommand("show", "Print a shared access policy's connection string from a local data directory");
    std::string data_dir, policy = "iothubowner";
    show->add_option("--data-dir", data_dir, "The hub's data directory")->required();
    show->add_option("--policy-name,--pn", policy, "Shared access policy name")->capture_default_str();
    int rc = 0;
    show->callback([&] { rc = connection_string_show(data_dir, policy); });
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    return rc;
}
