#include "server/data_dir.hpp"

#include "common/log.hpp"
#include "server/certificates.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace twinhub::server {
namespace fs = std::filesystem;

bool make_output_private(int fd) noexcept {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return true;
    if ((st.st_mode & 077) == 0) return true;
    return ::fchmod(fd, st.st_mode & 0700) == 0;
}

void write_file(const fs::path& path, const std::string& content, unsigned mode) {
    fs::path tmp = path;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
    ::fchmod(fd, mode);
    std::size_t off = 0;
    while (off < content.size()) {
        ssize_t n = ::write(fd, content.data() + off, content.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            ::close(fd);
            throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw std::runtime_error("cannot sync " + tmp.string() + ": " + std::strerror(errno));
    fs::rename(tmp, path);
    int dfd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {

std::vector<std::string> required_names(const std::vector<std::string>& host_names) {
    std::vector<std::string> names = host_names;
    for (const char* n : {"localhost", "127.0.0.1"})
        if (std::find(names.begin(), names.end(), n) == names.end()) names.emplace_back(n);
    return names;
}

std::vector<std::string> recorded_names(const data_dir& d) {
    std::vector<std::string> out;
    if (!fs::exists(d.hub_file())) return out;
    boost::system::error_code ec;
    auto v = boost::json::parse(read_file(d.hub_file()), ec);
    if (ec || !v.is_object()) throw std::runtime_error(d.hub_file().string() + " is not valid JSON");
    if (auto* a = v.as_object().if_contains("hostNames"); a && a->is_array())
        for (const auto& n : a->as_array())
            if (n.is_string()) out.emplace_back(n.as_string());
    return out;
}

// Creates `dir` (and its parents) when missing and makes it private to the owner (0700).
void make_private_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create directory " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
}

}  // namespace

std::vector<std::string> read_host_names(const fs::path& root) {
    data_dir d{root};
    if (!fs::exists(d.hub_file()))
        throw std::runtime_error(root.string() + " is not a twinhub data directory (no hub.json); start twinhubd "
                                 "with --data-dir " + root.string() + " once to create it");
    auto names = recorded_names(d);
    if (names.empty()) names.emplace_back("localhost");
    return names;
}

data_dir_lock::data_dir_lock(const fs::path& root) {
    make_private_dir(root);
    const fs::path path = root / "twinhubd.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buf[32] = {};
        const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
        std::string owner = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
        owner.erase(std::remove_if(owner.begin(), owner.end(), [](char c) { return c < '0' || c > '9'; }), owner.end());
        ::close(fd_);
        fd_ = -1;
        if (err == EWOULDBLOCK)
            throw std::runtime_error("data directory " + root.string() + " is in use by another twinhubd" +
                                     (owner.empty() ? std::string() : " (pid " + owner + ")") +
                                     "; stop it or choose another --data-dir");
        throw std::runtime_error("cannot lock " + path.string() + ": " + std::strerror(err));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0)
        log::warn("data_dir.lock_pid_not_written", {{"path", path.string()}, {"error", std::strerror(errno)}});
}

data_dir_lock::~data_dir_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (a stale pid is harmless)
}

prepared_data_dir prepare_data_dir(const fs::path& root, std::vector<std::string> host_names) {
    prepared_data_dir out;
    out.dir.root = root;
    const data_dir& d = out.dir;
    out.first_start = !fs::exists(root / "hub.json");
    make_private_dir(root);
    make_private_dir(root / "tls");

    if (host_names.empty()) host_names = recorded_names(d);
    if (host_names.empty()) host_names.emplace_back("localhost");
    out.host_names = host_names;

    pem_pair ca;
    if (!fs::exists(d.ca_certificate()) || !fs::exists(d.ca_key())) {
        ca = make_ca("twinhub CA", 3650);
        write_file(d.ca_key(), ca.private_key, 0600);
        write_file(d.ca_certificate(), ca.certificate, 0644);
        std::error_code ec;
        fs::remove(d.server_certificate(), ec);  // reissued below under the new CA
        log::info("tls.ca_created", {{"path", d.ca_certificate().string()}});
    } else {
        ca = {read_file(d.ca_certificate()), read_file(d.ca_key())};
    }

    std::vector<std::string> names = required_names(host_names);
    bool reissue = !fs::exists(d.server_certificate()) || !fs::exists(d.server_key());
    if (!reissue) {
        auto sans = subject_alt_names(read_file(d.server_certificate()));
        for (const auto& n : names) {
            bool ip = n.find_first_not_of("0123456789.") == std::string::npos || n.find(':') != std::string::npos;
            if (std::find(sans.begin(), sans.end(), (ip ? "IP:" : "DNS:") + n) == sans.end()) reissue = true;
        }
    }
    if (reissue) {
        pem_pair server = make_server_certificate(ca, names, 825);
        write_file(d.server_key(), server.private_key, 0600);
        write_file(d.server_certificate(), server.certificate, 0644);
        log::info("tls.server_certificate_issued", {{"names", static_cast<std::int64_t>(names.size())}});
    }

    boost::json::array arr;
    for (const auto& n : host_names) arr.emplace_back(n);
    boost::json::object hub{{"hostNames", std::move(arr)}};
    std::string text = boost::json::serialize(hub) + "\n";
    if (!fs::exists(d.hub_file()) || read_file(d.hub_file()) != text) write_file(d.hub_file(), text, 0600);
    return out;
}

}  // namespace twinhub::server
