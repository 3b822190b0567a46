// A throwaway PostgreSQL cluster for tests: initdb into a fresh temporary directory, then the
// postgres server on a free 127.0.0.1 port, from Debian's server binaries
// (/usr/lib/postgresql/<version>/bin, or $TWINHUB_PG_BIN). PostgreSQL refuses to run as root, so
// under root the server runs as `nobody` (its directory is handed to that user). The server is a
// child of this process that gets SIGKILL when the thread that started it ends, so that a test
// killed by a timeout leaves no cluster behind; stop() (and the destructor) shut it down and remove
// the directory.
// Thread safety: none; start and stop from one thread.
#pragma once

#include <memory>
#include <string>

#include <sys/types.h>

namespace twinhub::testing {

class pg_cluster {
public:
    // Throws std::runtime_error (with the server's log) when the cluster does not come up in 60 s.
    static std::unique_ptr<pg_cluster> start();
    ~pg_cluster();
    pg_cluster(const pg_cluster&) = delete;
    pg_cluster& operator=(const pg_cluster&) = delete;

    // postgresql://twinhub@127.0.0.1:PORT/DB
    std::string url(const std::string& db) const;
    // CREATE DATABASE `name` (a plain identifier); throws on failure.
    void create_database(const std::string& name) const;
    int port() const noexcept { return port_; }
    const std::string& dir() const noexcept { return dir_; }

    void stop();

private:
    pg_cluster() = default;
    std::string dir_;
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace twinhub::testing
