// X.509 decisions (auth/x509.hpp): thumbprints of selfSigned identities, chains of
// certificateAuthority ones, proof of possession of a CA. Certificates are made at test time with
// the hub's own PKI code (server/certificates.hpp: P-256, valid from an hour ago for `days`).
#include "auth/x509.hpp"
#include "common/errc.hpp"
#include "server/certificates.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace twinhub::auth {
namespace {

using namespace std::chrono_literals;

std::string der_of(const std::string& pem) {
    auto info = parse_certificate(pem);
    EXPECT_TRUE(info) << info.error().message;
    return info ? info->der : std::string();
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string with_colons(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) out += (i ? ":" : "") + hex.substr(i, 2);
    return out;
}

struct x509_fixture : ::testing::Test {
    static inline server::pem_pair root = server::make_ca("unit-root", 30);
    static inline server::pem_pair other_root = server::make_ca("other-root", 30);
    static inline server::pem_pair leaf = server::make_server_certificate(root, {"dev1"}, 10);
    time_point now_t = now();
};

TEST(x509_thumbprint, normalize_drops_colons_and_upper_cases) {
    EXPECT_EQ(normalize_thumbprint("ab:cd:0f"), "ABCD0F");
    EXPECT_EQ(normalize_thumbprint("AB CD 0F"), "ABCD0F");
    EXPECT_EQ(normalize_thumbprint(""), "");
}

TEST_F(x509_fixture, thumbprints_match_sha1_or_sha256_of_the_der_in_any_case) {
    const std::string der = der_of(leaf.certificate);
    const std::string sha1 = sha1_thumbprint(der), sha256 = sha256_thumbprint(der);
    EXPECT_EQ(sha1.size(), 40u);
    EXPECT_EQ(sha256.size(), 64u);
    const certificate_chain chain{der};
    EXPECT_TRUE(check_thumbprint(chain, sha1, std::nullopt, now_t));
    EXPECT_TRUE(check_thumbprint(chain, lower(sha256), std::nullopt, now_t));
    EXPECT_TRUE(check_thumbprint(chain, with_colons(sha1), std::nullopt, now_t));
    EXPECT_TRUE(check_thumbprint(chain, std::string(40, 'A'), lower(sha1), now_t)) << "secondary";
}

TEST_F(x509_fixture, thumbprint_refusals_are_unauthorized) {
    const certificate_chain chain{der_of(leaf.certificate)};
    const std::string sha1 = sha1_thumbprint(chain.front());
    auto expect_refused = [](const result<void>& r, const char* what) {
        ASSERT_FALSE(r) << what;
        EXPECT_EQ(r.error().code, errc::unauthorized) << what;
    };
    expect_refused(check_thumbprint(chain, std::string(40, 'A'), std::string(64, 'B'), now_t), "mismatch");
    expect_refused(check_thumbprint(chain, std::nullopt, std::nullopt, now_t), "no thumbprints");
    expect_refused(check_thumbprint(chain, std::string(), std::string(), now_t), "empty thumbprints");
    expect_refused(check_thumbprint({}, sha1, std::nullopt, now_t), "no certificate");
    expect_refused(check_thumbprint({"garbage"}, sha1, std::nullopt, now_t), "unparsable");
    expect_refused(check_thumbprint(chain, sha1, std::nullopt, now_t + 24h * 11), "expired");
    expect_refused(check_thumbprint(chain, sha1, std::nullopt, now_t - 2h), "not yet valid");
}

TEST_F(x509_fixture, chain_to_a_trusted_ca_with_the_device_id_as_cn_verifies) {
    const certificate_chain chain{der_of(leaf.certificate)};
    const std::vector<std::string> anchors{other_root.certificate, root.certificate};
    EXPECT_TRUE(check_chain(chain, anchors, "dev1", now_t));
}

TEST_F(x509_fixture, chain_refusals_are_unauthorized) {
    const certificate_chain chain{der_of(leaf.certificate)};
    const std::vector<std::string> anchors{root.certificate};
    const std::vector<std::string> others{other_root.certificate};
    auto expect_refused = [](const result<void>& r, const char* what) {
        ASSERT_FALSE(r) << what;
        EXPECT_EQ(r.error().code, errc::unauthorized) << what;
    };
    expect_refused(check_chain(chain, anchors, "dev2", now_t), "CN is another device");
    expect_refused(check_chain(chain, anchors, "dev1/m1", now_t), "CN is not the module's");
    expect_refused(check_chain(chain, others, "dev1", now_t), "unregistered issuer");
    expect_refused(check_chain(chain, {}, "dev1", now_t), "no verified CA");
    expect_refused(check_chain(chain, anchors, "dev1", now_t + 24h * 11), "leaf expired");
    expect_refused(check_chain(chain, anchors, "dev1", now_t - 2h), "leaf not yet valid");
    expect_refused(check_chain({}, anchors, "dev1", now_t), "no certificate");
    // A self-signed certificate whose CN is the device id does not pass for a CA-signed one.
    auto self = server::make_ca("dev1", 10);
    expect_refused(check_chain({der_of(self.certificate)}, anchors, "dev1", now_t), "self-signed");
}

TEST_F(x509_fixture, verification_certificate_needs_the_ca_signature_and_the_code_as_cn) {
    auto proof = server::make_server_certificate(root, {"c0de"}, 1);
    EXPECT_TRUE(check_verification_certificate(proof.certificate, root.certificate, "c0de", now_t));
    auto r = check_verification_certificate(proof.certificate, root.certificate, "other", now_t);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    auto foreign = server::make_server_certificate(other_root, {"c0de"}, 1);
    EXPECT_FALSE(check_verification_certificate(foreign.certificate, root.certificate, "c0de", now_t));
    EXPECT_FALSE(check_verification_certificate(proof.certificate, root.certificate, "", now_t));
    EXPECT_FALSE(check_verification_certificate("not a certificate", root.certificate, "c0de", now_t));
}

TEST_F(x509_fixture, parse_reads_pem_and_der) {
    auto pem = parse_certificate(root.certificate);
    ASSERT_TRUE(pem);
    EXPECT_EQ(pem->common_name, "unit-root");
    EXPECT_NE(pem->subject.find("CN=unit-root"), std::string::npos);
    EXPECT_LT(pem->not_before, pem->not_after);
    auto der = parse_certificate(pem->der);
    ASSERT_TRUE(der);
    EXPECT_EQ(der->sha1, pem->sha1);
    auto bad = parse_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
}

}  // namespace
}  // namespace twinhub::auth
