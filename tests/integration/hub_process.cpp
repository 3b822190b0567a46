#include "hub_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace twinhub::test_support {

std::uint16_t free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind failed");
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

namespace {

bool port_open(std::uint16_t port) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

// True when `pid` holds a socket listening on `port` (IPv4 or IPv6): the port was chosen free a
// moment before the hub bound it, so a parallel test could have taken it; connecting alone would
// then find the other test's hub.
bool listening_by(pid_t pid, std::uint16_t port) {
    std::set<std::string> inodes;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream f(line);
            std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
            f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
            auto colon = local.rfind(':');
            if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
            if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inodes.insert("socket:[" + inode + "]");
        }
    }
    if (inodes.empty()) return false;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        auto target = std::filesystem::read_symlink(e.path(), ec);
        if (!ec && inodes.contains(target.string())) return true;
    }
    return false;
}

}  // namespace

hub_process::hub_process(std::string binary_dir) : binary_dir_(std::move(binary_dir)) {
    char tmpl[] = "/tmp/twinhub-client-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = std::filesystem::path(tmpl) / "data";
    log_file_ = std::filesystem::path(tmpl) / "twinhubd.log";
    https_port_ = free_port();
    mqtt_port_ = free_port();
    while (mqtt_port_ == https_port_) mqtt_port_ = free_port();
    amqp_port_ = free_port();
    while (amqp_port_ == https_port_ || amqp_port_ == mqtt_port_) amqp_port_ = free_port();
}

hub_process::~hub_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_.parent_path(), ec);
}

void hub_process::start() {
    // On the first start a port taken by someone else since it was chosen makes the hub exit (or
    // another process answer): choose new ports and try again. Restarts keep their ports.
    for (int attempt = 0;; ++attempt) {
        try {
            start_once();
            return;
        } catch (const std::runtime_error&) {
            if (!connection_string_.empty() || attempt >= 4) throw;
            if (pid_ > 0) {
                ::kill(pid_, SIGKILL);
                int status = 0;
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
            }
            https_port_ = free_port();
            mqtt_port_ = free_port();
            while (mqtt_port_ == https_port_) mqtt_port_ = free_port();
            amqp_port_ = free_port();
            while (amqp_port_ == https_port_ || amqp_port_ == mqtt_port_) amqp_port_ = free_port();
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);  // a fresh first start
        }
    }
}

void hub_process::start_once() {
    if (pid_ > 0) return;
    auto https = std::to_string(https_port_), mqtt = std::to_string(mqtt_port_), amqp = std::to_string(amqp_port_);
    std::string dir = dir_.string(), log = log_file_.string();
    std::string exe = binary_dir_ + "/twinhubd";
    pid_ = ::fork();
    if (pid_ == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        if (fd > 2) ::close(fd);
        if (open_files_limit_ != 0) {
            rlimit r{};
            ::getrlimit(RLIMIT_NOFILE, &r);
            r.rlim_cur = open_files_limit_;
            if (::setrlimit(RLIMIT_NOFILE, &r) != 0) ::_exit(126);
        }
        ::execl(exe.c_str(), exe.c_str(), "--data-dir", dir.c_str(), "--https-port", https.c_str(), "--mqtt-port",
                mqtt.c_str(), "--amqp-port", amqp.c_str(), "--log-level", log_level_.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto ours = [this](std::uint16_t p) { return port_open(p) && listening_by(pid_, p); };
    while (!(ours(https_port_) && ours(mqtt_port_) && ours(amqp_port_))) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("twinhubd exited at start-up:\n" + this->log());
        }
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("twinhubd did not open its ports:\n" + this->log());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (connection_string_.empty()) {
        std::ifstream in(log_file_);
        std::string line;
        const std::string marker = "Connection string (iothubowner): ";
        while (std::getline(in, line))
            if (auto p = line.find(marker); p != std::string::npos) connection_string_ = line.substr(p + marker.size());
        if (connection_string_.empty()) throw std::runtime_error("twinhubd printed no connection string:\n" + this->log());
    }
}

void hub_process::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
}

void hub_process::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

std::string hub_process::log() const {
    std::ifstream in(log_file_);
    std::ostringstream ss;
    ss << in.rdbuf();
    // Test output never shows a key, not even a throwaway hub's (issue 12).
    std::string out = ss.str();
    const std::string marker = "SharedAccessKey=";
    for (auto p = out.find(marker); p != std::string::npos; p = out.find(marker, p)) {
        p += marker.size();
        auto end = out.find_first_of(";\n", p);
        out.replace(p, (end == std::string::npos ? out.size() : end) - p, "<redacted>");
    }
    return out;
}

}  // namespace twinhub::test_support
