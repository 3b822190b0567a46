#include "pg_cluster.hpp"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace twinhub::testing {
namespace {

namespace fs = std::filesystem;

std::string bin_dir() {
    if (const char* v = std::getenv("TWINHUB_PG_BIN"); v && *v) return v;
    std::string best;
    int best_version = 0;
    std::error_code ec;
    for (auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
        int v = std::atoi(e.path().filename().c_str());
        if (v > best_version && fs::exists(e.path() / "bin" / "postgres")) {
            best_version = v;
            best = (e.path() / "bin").string();
        }
    }
    if (best.empty())
        throw std::runtime_error("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (install postgresql-15; "
                                 "scripts/setup does) and TWINHUB_PG_BIN is not set");
    return best;
}

int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot find a free port");
    int port = ntohs(a.sin_port);
    ::close(s);
    return port;
}

// The unprivileged user the cluster runs as when this process is root.
struct run_as {
    bool needed = false;
    uid_t uid = 0;
    gid_t gid = 0;
};

run_as unprivileged() {
    run_as r;
    if (::geteuid() != 0) return r;
    passwd* pw = ::getpwnam("nobody");
    if (!pw) throw std::runtime_error("running as root and there is no user 'nobody' to run PostgreSQL as");
    r.needed = true;
    r.uid = pw->pw_uid;
    r.gid = pw->pw_gid;
    return r;
}

// Forks and execs `argv` as the unprivileged user, output to `log`; the child dies with this thread.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, const std::string& cwd) {
    auto who = unprivileged();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        if (who.needed && (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0)) _exit(126);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // after setuid, which clears it
        if (::chdir(cwd.c_str()) != 0) _exit(126);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        _exit(127);
    }
    return pid;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void hand_over(const std::string& path, const run_as& who) {
    if (!who.needed) return;
    if (::chown(path.c_str(), who.uid, who.gid) != 0) throw std::runtime_error("cannot chown " + path);
}

}  // namespace

std::unique_ptr<pg_cluster> pg_cluster::start() {
    std::unique_ptr<pg_cluster> c(new pg_cluster());
    // Under root, /tmp rather than $TMPDIR: the directory must be reachable by `nobody`.
    std::string tmpl = ((::geteuid() == 0 ? fs::path("/tmp") : fs::temp_directory_path()) / "twinhub-pg-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    c->dir_ = tmpl;
    auto who = unprivileged();
    hand_over(c->dir_, who);
    const std::string bin = bin_dir(), data = c->dir_ + "/data", log = c->dir_ + "/server.log";
    {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) ::close(fd);
        hand_over(log, who);
    }
    pid_t init = spawn({bin + "/initdb", "-D", data, "-U", "twinhub", "-A", "trust", "-E", "UTF8", "--locale=C",
                        "--no-sync", "--no-instructions"},
                       log, c->dir_);
    int status = 0;
    ::waitpid(init, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("initdb failed:\n" + read_file(log));
    for (int attempt = 0;; ++attempt) {
        c->port_ = free_port();
        c->pid_ = spawn({bin + "/postgres", "-D", data, "-p", std::to_string(c->port_), "-c",
                         "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + c->dir_, "-c",
                         "shared_buffers=32MB", "-c", "max_connections=200", "-c", "fsync=on", "-c",
                         "synchronous_commit=on"},
                        log, c->dir_);
        const std::string ping = "host=127.0.0.1 port=" + std::to_string(c->port_) + " dbname=postgres user=twinhub";
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        bool exited = false;
        while (std::chrono::steady_clock::now() < deadline) {
            if (PQping(ping.c_str()) == PQPING_OK) return c;
            if (::waitpid(c->pid_, &status, WNOHANG) == c->pid_) {
                exited = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the server's readiness
        }
        if (!exited) {
            c->stop();
            throw std::runtime_error("PostgreSQL did not come up within 60 s:\n" + read_file(log));
        }
        c->pid_ = -1;
        // Another process took the port between free_port() and the bind: try another one.
        if (attempt == 3) throw std::runtime_error("PostgreSQL exited during start-up:\n" + read_file(log));
    }
}

std::string pg_cluster::url(const std::string& db) const {
    return "postgresql://twinhub@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

void pg_cluster::create_database(const std::string& name) const {
    PGconn* conn = PQconnectdb(url("postgres").c_str());
    std::string err;
    if (PQstatus(conn) != CONNECTION_OK) {
        err = PQerrorMessage(conn);
    } else {
        PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
        if (PQresultStatus(r) != PGRES_COMMAND_OK) err = PQresultErrorMessage(r);
        PQclear(r);
    }
    PQfinish(conn);
    if (!err.empty()) throw std::runtime_error("CREATE DATABASE " + name + ": " + err);
}

void pg_cluster::stop() {
    if (pid_ > 0) {
        ::kill(pid_, SIGINT);  // fast shutdown
        int status = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // waiting for the shutdown
        }
        pid_ = -1;
    }
    if (!dir_.empty()) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        dir_.clear();
    }
}

pg_cluster::~pg_cluster() { stop(); }

}  // namespace twinhub::testing
