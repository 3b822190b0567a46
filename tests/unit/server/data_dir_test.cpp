#include "server/certificates.hpp"
#include "server/data_dir.hpp"

#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

using namespace twinhub::server;
namespace fs = std::filesystem;

namespace {
struct temp_dir {
    fs::path path;
    temp_dir() {
        char tmpl[] = "/tmp/twinhub-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~temp_dir() { fs::remove_all(path); }
};

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    stat(p.c_str(), &st);
    return st.st_mode & 0777;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// Verifies `leaf` against `ca` with OpenSSL, as a client trusting only the hub CA would.
bool chains_to(const std::string& leaf, const std::string& ca) {
    BIO* b1 = BIO_new_mem_buf(leaf.data(), static_cast<int>(leaf.size()));
    BIO* b2 = BIO_new_mem_buf(ca.data(), static_cast<int>(ca.size()));
    X509* l = PEM_read_bio_X509(b1, nullptr, nullptr, nullptr);
    X509* c = PEM_read_bio_X509(b2, nullptr, nullptr, nullptr);
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, c);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, l, nullptr);
    bool ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(l);
    X509_free(c);
    BIO_free(b1);
    BIO_free(b2);
    return ok;
}
}  // namespace

TEST(data_dir, first_start_creates_ca_and_server_certificate_with_required_sans) {
    temp_dir t;
    auto p = prepare_data_dir(t.path / "hub", {"hub.example.com"});
    EXPECT_TRUE(p.first_start);
    auto sans = subject_alt_names(read_file(p.dir.server_certificate()));
    EXPECT_TRUE(has(sans, "DNS:hub.example.com"));
    EXPECT_TRUE(has(sans, "DNS:localhost"));
    EXPECT_TRUE(has(sans, "IP:127.0.0.1"));
    EXPECT_TRUE(chains_to(read_file(p.dir.server_certificate()), read_file(p.dir.ca_certificate())));
    EXPECT_NE(read_file(p.dir.ca_key()).find("BEGIN PRIVATE KEY"), std::string::npos);
}

TEST(data_dir, secrets_are_mode_0600_and_directory_0700) {
    temp_dir t;
    auto p = prepare_data_dir(t.path / "hub", {});
    EXPECT_EQ(mode_of(p.dir.root), 0700u);
    EXPECT_EQ(mode_of(p.dir.ca_key()), 0600u);
    EXPECT_EQ(mode_of(p.dir.server_key()), 0600u);
    EXPECT_EQ(mode_of(p.dir.hub_file()), 0600u);
}

TEST(data_dir, second_start_keeps_ca_and_is_not_first_start) {
    temp_dir t;
    auto p1 = prepare_data_dir(t.path / "hub", {"a.example"});
    std::string ca = read_file(p1.dir.ca_certificate());
    std::string server = read_file(p1.dir.server_certificate());
    auto p2 = prepare_data_dir(t.path / "hub", {});
    EXPECT_FALSE(p2.first_start);
    EXPECT_EQ(read_file(p2.dir.ca_certificate()), ca);
    EXPECT_EQ(read_file(p2.dir.server_certificate()), server);
    EXPECT_EQ(p2.host_names, std::vector<std::string>{"a.example"});
}

TEST(data_dir, new_host_name_reissues_server_certificate_from_same_ca) {
    temp_dir t;
    auto p1 = prepare_data_dir(t.path / "hub", {"a.example"});
    std::string ca = read_file(p1.dir.ca_certificate());
    auto p2 = prepare_data_dir(t.path / "hub", {"b.example", "10.1.2.3"});
    auto sans = subject_alt_names(read_file(p2.dir.server_certificate()));
    EXPECT_TRUE(has(sans, "DNS:b.example"));
    EXPECT_TRUE(has(sans, "IP:10.1.2.3"));
    EXPECT_EQ(read_file(p2.dir.ca_certificate()), ca);
    EXPECT_TRUE(chains_to(read_file(p2.dir.server_certificate()), ca));
    EXPECT_EQ(read_host_names(p2.dir.root), (std::vector<std::string>{"b.example", "10.1.2.3"}));
}

TEST(data_dir, read_host_names_of_a_non_hub_directory_fails_clearly) {
    temp_dir t;
    try {
        read_host_names(t.path);
        FAIL() << "expected an exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("not a twinhub data directory"), std::string::npos);
    }
}

TEST(data_dir_lock, one_holder_at_a_time_and_released_on_destruction) {
    temp_dir t;
    const fs::path root = t.path / "hub";
    {
        data_dir_lock first(root);  // creates the directory
        EXPECT_TRUE(fs::exists(root / "twinhubd.lock"));
        EXPECT_EQ(mode_of(root / "twinhubd.lock"), 0600u);
        try {
            data_dir_lock second(root);
            ADD_FAILURE() << "a second lock on the same directory was granted";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("in use by another twinhubd (pid " + std::to_string(::getpid()) + ")"),
                      std::string::npos)
                << e.what();
        }
    }
    EXPECT_NO_THROW(data_dir_lock again(root));  // the first one released it
}
