// The hub's data directory: layout, first-start creation, and the files in it.
//   DIR/                 0700
//   DIR/hub.json         host names of the hub (not secret)
//   DIR/twinhubd.lock    held (flock) by the twinhubd serving DIR; holds its pid
//   DIR/twinhub.db       SQLite store (+ -wal, -shm), 0600
//   DIR/tls/ca.pem       hub CA certificate: what clients must trust
//   DIR/tls/ca.key       0600
//   DIR/tls/server.pem   server certificate (SANs: every host name, localhost, 127.0.0.1)
//   DIR/tls/server.key   0600
// Start-up code: functions throw std::runtime_error with a message a user can act on.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace twinhub::server {

struct data_dir {
    std::filesystem::path root;

    std::filesystem::path hub_file() const { return root / "hub.json"; }
    std::filesystem::path store_file() const { return root / "twinhub.db"; }
    std::filesystem::path ca_certificate() const { return root / "tls" / "ca.pem"; }
    std::filesystem::path ca_key() const { return root / "tls" / "ca.key"; }
    std::filesystem::path server_certificate() const { return root / "tls" / "server.pem"; }
    std::filesystem::path server_key() const { return root / "tls" / "server.key"; }
};

struct prepared_data_dir {
    data_dir dir;
    bool first_start = false;             // the directory was created now
    std::vector<std::string> host_names;  // the hub's names; the first is used in connection strings
};

// Creates DIR (0700), the CA, and the server certificate when missing; reissues the server
// certificate when its SANs do not cover every host name plus localhost and 127.0.0.1. Records
// the host names in hub.json. With `host_names` empty, the recorded names (or "localhost") are used.
prepared_data_dir prepare_data_dir(const std::filesystem::path& root, std::vector<std::string> host_names);

// The host names recorded in DIR/hub.json ("localhost" if none). Throws if DIR is not a hub data dir.
std::vector<std::string> read_host_names(const std::filesystem::path& root);

// Held while a twinhubd serves DIR: an exclusive flock(2) on DIR/twinhubd.lock, which also holds
// the owner's pid. The kernel releases it when the process ends, kill -9 included. A second
// twinhubd on the same DIR would keep its own copy of the hub in memory and diverge from the
// first; it fails at start instead (std::runtime_error naming the pid that holds the lock).
class data_dir_lock {
public:
    explicit data_dir_lock(const std::filesystem::path& root);  // creates DIR (0700) when missing
    ~data_dir_lock();
    data_dir_lock(const data_dir_lock&) = delete;
    data_dir_lock& operator=(const data_dir_lock&) = delete;

private:
    int fd_ = -1;
};

// twinhubd's output holds the first-start connection string. When descriptor `fd` is a regular
// file (`twinhubd ... > twinhubd.log 2>&1`) that others may read, narrows it to 0600; returns
// whether what is written to `fd` stays private afterwards (a terminal, a pipe, or a file that only
// its owner can read). Never throws.
bool make_output_private(int fd) noexcept;

// Writes `content` to `path` atomically (temp file + rename) with the given mode.
void write_file(const std::filesystem::path& path, const std::string& content, unsigned mode);
std::string read_file(const std::filesystem::path& path);

}  // namespace twinhub::server
