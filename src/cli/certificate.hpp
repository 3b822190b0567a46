// twinhub certificate: az iot hub certificate's commands (create, list, show, delete,
// generate-verification-code, verify) for the hub's X.509 CA certificates, over the REST resource
// /certificates (src/http/rest_certificates.cpp).
// Thread safety: single-threaded command code.
#pragma once

#include "twinhub/registry_manager.hpp"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace twinhub::cli {

struct certificate_commands {
    // Adds a hub-talking leaf command (--login, --ca-file, ... as every such command has).
    std::function<CLI::App*(CLI::App* parent, const std::string& name, const std::string& description)> leaf;
    // Opens the hub from those options (throws the CLI's usage error).
    std::function<registry_manager()> open_hub;
    // Prints an SDK error and gives its exit code.
    std::function<int(const error&)> fail;
    // Records the command to run once parsing succeeded.
    std::function<void(CLI::App*, std::function<int()>)> run;
};

// Adds `certificate` and its subcommands to `app`.
void add_certificate_commands(CLI::App& app, const certificate_commands& c);

}  // namespace twinhub::cli
