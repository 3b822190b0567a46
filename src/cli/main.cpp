// twinhub: the az iot hub-shaped command-line client, built on the C++ SDK (libtwinhub-client).
// JSON on stdout; errors on stderr with an exit code scripts can rely on:
//   0 success, 1 the operation failed (the hub refused it: not found, stale etag, unauthorized, ...),
//   2 usage error (bad arguments, malformed JSON or connection string),
//   3 the hub could not be reached (DNS, TCP, TLS/certificate, timeout).
// The commands live by group in cli_hub.cpp, cli_devices.cpp, cli_twins.cpp, cli_c2d.cpp,
// certificate.cpp and monitor_events.cpp.
#include "cli/certificate.hpp"
#include "cli/cli_common.hpp"
#include "cli/monitor_events.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    using namespace twinhub::cli;
    CLI::App app{"twinhub: manage a twinhub (or Azure IoT Hub) from the command line, az iot hub style.\n"
                 "Commands that talk to a hub take --login \"<service connection string>\" (or env "
                 "TWINHUB_CONNECTION_STRING) and --ca-file (or env TWINHUB_CA_FILE)."};
    app.footer(exit_codes_text);
    app.require_subcommand(1);

    cli_state s;
    auto& a = s.a;
    add_hub_commands(app, s);
    add_device_commands(app, s);
    add_twin_commands(app, s);
    add_c2d_commands(app, s);

    // ---- certificate (az iot hub certificate; src/cli/certificate.cpp) ----
    auto run = [&s](CLI::App* c, std::function<int()> f) { s.run(c, std::move(f)); };
    add_certificate_commands(
        app, {[&](CLI::App* p, const std::string& n, const std::string& d) { return leaf(p, n, d, a); },
              [&] { return open_hub(a); }, fail, run});

    // ---- monitor-events (az iot hub monitor-events; src/cli/monitor_events.cpp) ----
    monitor_args monitor;
    {
        auto* c = leaf(&app, "monitor-events",
                       "Stream device-to-cloud events from the built-in Event Hubs-compatible endpoint (AMQP, port "
                       "5671: --amqp-port or env TWINHUB_AMQP_PORT), one JSON object per line; the policy needs "
                       "ServiceConnect",
                       a);
        c->add_option("--amqp-port", a.amqp_port, "AMQP port when it is not 5671 (default: env TWINHUB_AMQP_PORT)");
        add_monitor_options(c, monitor);
        run(c, [&] { return monitor_events(monitor, login_of(a), options_of(a), fail); });
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : exit_usage;
    }
    if (!s.action) return s.rc;
    try {
        return s.action();
    } catch (const usage_error& u) {
        std::cerr << "twinhub: usage: " << u.message << "\n";
        return exit_usage;
    }
}
