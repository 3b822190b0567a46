// twinhubd: the hub server.
#include "common/json_print.hpp"
#include "common/log.hpp"
#include "server/config.hpp"
#include "server/data_dir.hpp"
#include "server/server.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>

int main(int argc, char** argv) {
    // A log file that others can read must not receive the first-start connection string.
    twinhub::server::make_output_private(STDOUT_FILENO);
    twinhub::server::make_output_private(STDERR_FILENO);
    int exit_code = 0;
    auto cfg = twinhub::server::parse_config(argc, argv, exit_code);
    if (!cfg) return exit_code;
    if (cfg->print_config) {
        std::cout << twinhub::pretty_json(twinhub::server::to_json(*cfg)) << std::endl;
        return 0;
    }
    twinhub::log::level lvl;
    if (!twinhub::log::parse_level(cfg->log_level, lvl)) {
        std::cerr << "twinhubd: unknown --log-level '" << cfg->log_level << "' (debug, info, warn, error, off)\n";
        return 2;
    }
    twinhub::log::set_level(lvl);
    try {
        twinhub::server::server s(*cfg);
        s.run();
    } catch (const std::exception& e) {
        // Configuration checked by the services (inline routing, consumer groups) reads like the file's errors.
        const std::string what = e.what();
        std::cerr << (what.rfind("config error: ", 0) == 0 ? "" : "twinhubd: ") << what << "\n";
        return what.rfind("config error: ", 0) == 0 ? 2 : 1;
    }
    return 0;
}
