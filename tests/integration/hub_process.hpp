// Test support: a real twinhubd (build/bin/twinhubd) in a child process with a temporary data
// directory, on free loopback ports chosen at start-up and kept across restarts.
// Thread safety: one test thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <sys/types.h>

namespace twinhub::test_support {

// A port that was free a moment ago (bind to 0, read it back, close).
std::uint16_t free_port();

class hub_process {
public:
    // Creates the temp data dir and chooses ports; does not start.
    explicit hub_process(std::string binary_dir);
    ~hub_process();  // stops the hub, removes the data dir

    // Before start(): the hub's --log-level (default warn), and a soft RLIMIT_NOFILE to run it
    // under (0, the default: inherited).
    void set_log_level(std::string level) { log_level_ = std::move(level); }
    void set_open_files_limit(unsigned long n) { open_files_limit_ = n; }

    // Starts twinhubd and waits until its three ports accept connections and belong to it (throws
    // after 30 s). A first start whose ports were taken meanwhile retries on new ports.
    void start();
    // SIGTERM and wait; kill -9 after 10 s.
    void stop();
    // kill -9 and reap: no shutdown path runs (crash tests).
    void kill();
    // The running hub's pid, -1 when stopped.
    pid_t pid() const { return pid_; }

    const std::filesystem::path& data_dir() const { return dir_; }
    std::string ca_file() const { return (dir_ / "tls" / "ca.pem").string(); }
    std::uint16_t https_port() const { return https_port_; }
    std::uint16_t mqtt_port() const { return mqtt_port_; }
    std::uint16_t amqp_port() const { return amqp_port_; }
    // The iothubowner connection string printed on first start.
    const std::string& connection_string() const { return connection_string_; }
    std::string bin(const std::string& name) const { return binary_dir_ + "/" + name; }
    std::string log() const;  // stdout+stderr of every run

private:
    void start_once();
    std::string binary_dir_;
    std::filesystem::path dir_;
    std::filesystem::path log_file_;
    std::uint16_t https_port_ = 0;
    std::uint16_t mqtt_port_ = 0;
    std::uint16_t amqp_port_ = 0;
    pid_t pid_ = -1;
    std::string connection_string_;
    std::string log_level_ = "warn";
    unsigned long open_files_limit_ = 0;
};

}  // namespace twinhub::test_support
