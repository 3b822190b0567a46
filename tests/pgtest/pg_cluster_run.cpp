// pg_cluster_run [--db NAME] -- COMMAND [ARGS...]: starts a throwaway PostgreSQL cluster
// (pg_cluster.hpp), creates database NAME (default twinhub), runs COMMAND with TWINHUB_STORE set to
// the database's URL, stops the cluster, and exits with COMMAND's status. For scripts (compat
// tests, benchmarks) that need a PostgreSQL-backed hub.
#include "pg_cluster.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::string db = "twinhub";
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--db" && i + 1 < argc) db = argv[++i];
        else if (a == "--") {
            ++i;
            break;
        } else {
            std::cerr << "usage: pg_cluster_run [--db NAME] -- COMMAND [ARGS...]\n";
            return 2;
        }
    }
    if (i >= argc) {
        std::cerr << "usage: pg_cluster_run [--db NAME] -- COMMAND [ARGS...]\n";
        return 2;
    }
    try {
        auto cluster = twinhub::testing::pg_cluster::start();
        cluster->create_database(db);
        std::string url = cluster->url(db);
        std::cerr << "pg_cluster_run: PostgreSQL at " << url << "\n";
        ::setenv("TWINHUB_STORE", url.c_str(), 1);
        pid_t pid = ::fork();
        if (pid == 0) {
            ::execvp(argv[i], argv + i);
            std::cerr << "pg_cluster_run: cannot run " << argv[i] << ": " << std::strerror(errno) << "\n";
            _exit(127);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        cluster->stop();
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } catch (const std::exception& e) {
        std::cerr << "pg_cluster_run: " << e.what() << "\n";
        return 1;
    }
}
