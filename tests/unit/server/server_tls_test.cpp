// The server TLS policy over real loopback handshakes: TLS 1.3 and the ECDHE AEAD suites of TLS 1.2
// are served, CBC, SHA-1, static-RSA and pre-1.2 clients are refused, and the clients the hub must
// serve (Python's TLS 1.2 context, OpenSSL's defaults) still connect.
#include "server/server_tls.hpp"

#include "server/certificates.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <thread>

using namespace twinhub;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

struct chain {
    std::string certificate;  // leaf + CA
    std::string key;
    std::string ca;
};

const chain& hub_chain() {
    static const chain c = [] {
        auto ca = server::make_ca("twinhub test CA", 1);
        auto leaf = server::make_server_certificate(ca, {"localhost", "127.0.0.1"}, 1);
        return chain{leaf.certificate + ca.certificate, leaf.private_key, ca.certificate};
    }();
    return c;
}

// A client context: `version` pins TLS 1.2 or 1.3 (0 = OpenSSL's range); the lists replace
// OpenSSL's defaults when given.
asio::ssl::context client_context(int version, const char* tls12_ciphers = nullptr, const char* tls13_suites = nullptr) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (version != 0) {
        SSL_CTX_set_min_proto_version(ctx.native_handle(), version);
        SSL_CTX_set_max_proto_version(ctx.native_handle(), version);
    }
    if (tls12_ciphers) {
        EXPECT_EQ(SSL_CTX_set_cipher_list(ctx.native_handle(), tls12_ciphers), 1) << tls12_ciphers;
    }
    if (tls13_suites) {
        EXPECT_EQ(SSL_CTX_set_ciphersuites(ctx.native_handle(), tls13_suites), 1) << tls13_suites;
    }
    ctx.add_certificate_authority(asio::buffer(hub_chain().ca));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

struct outcome {
    bool ok = false;
    std::string version;  // "TLSv1.2", "TLSv1.3"
    std::string cipher;   // OpenSSL name
    std::string error;
};

// One handshake on a loopback socket between `server_ctx` and `client_ctx`.
outcome handshake(asio::ssl::context& server_ctx, asio::ssl::context& client_ctx) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::thread server([&] {
        boost::system::error_code ec;
        tcp::socket s = acceptor.accept(ec);
        if (ec) return;
        asio::ssl::stream<tcp::socket> tls(std::move(s), server_ctx);
        tls.handshake(asio::ssl::stream_base::server, ec);
        if (!ec) {
            char byte = 0;
            asio::read(tls, asio::buffer(&byte, 1), ec);  // until the client has looked and closes
        }
    });
    outcome out;
    asio::ssl::stream<tcp::socket> tls(ioc, client_ctx);
    SSL_set_tlsext_host_name(tls.native_handle(), "localhost");
    tls.lowest_layer().connect(acceptor.local_endpoint());
    boost::system::error_code ec;
    tls.handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
        out.error = ec.message();
    } else {
        out.ok = true;
        out.version = SSL_get_version(tls.native_handle());
        out.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(tls.native_handle()));
    }
    tls.lowest_layer().close(ec);
    server.join();
    return out;
}

class server_tls : public ::testing::Test {
protected:
    asio::ssl::context hub_ = server::make_server_tls_context(hub_chain().certificate, hub_chain().key);
};

}  // namespace

TEST_F(server_tls, tls12_serves_the_three_ecdhe_ecdsa_aead_suites) {
    for (auto suite : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
        auto client = client_context(TLS1_2_VERSION, suite);
        auto r = handshake(hub_, client);
        EXPECT_TRUE(r.ok) << suite << ": " << r.error;
        EXPECT_EQ(r.version, "TLSv1.2") << suite;
        EXPECT_EQ(r.cipher, suite);
    }
}

TEST_F(server_tls, tls12_refuses_cbc_and_sha1_suites_that_openssl_would_otherwise_serve) {
    // Each of these connects to a server context with OpenSSL's defaults and the same certificate,
    // so it is the policy, not the certificate or the client, that refuses them.
    auto plain = server::make_server_tls_context(hub_chain().certificate, hub_chain().key);
    SSL_CTX_set_cipher_list(plain.native_handle(), "DEFAULT");
    for (auto suite : {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA",
                       "ECDHE-ECDSA-AES256-SHA"}) {
        auto client = client_context(TLS1_2_VERSION, suite);
        auto control = handshake(plain, client);
        EXPECT_TRUE(control.ok) << suite << " (control): " << control.error;
        auto r = handshake(hub_, client);
        EXPECT_FALSE(r.ok) << suite << " was negotiated (" << r.cipher << ")";
    }
}

TEST_F(server_tls, tls12_refuses_static_rsa_and_non_aead_lists) {
    for (auto suites : {"AES128-SHA", "AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256",
                        "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-GCM-SHA256"}) {
        auto client = client_context(TLS1_2_VERSION, suites);
        auto r = handshake(hub_, client);
        EXPECT_FALSE(r.ok) << suites << " was negotiated (" << r.cipher << ")";
    }
}

TEST_F(server_tls, rsa_suites_are_never_chosen_with_the_ecdsa_certificate) {
    auto client = client_context(TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305");
    auto r = handshake(hub_, client);
    EXPECT_FALSE(r.ok) << r.cipher;
}

TEST_F(server_tls, tls13_is_served_with_each_aead_suite) {
    for (auto suite : {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
        auto client = client_context(TLS1_3_VERSION, nullptr, suite);
        auto r = handshake(hub_, client);
        EXPECT_TRUE(r.ok) << suite << ": " << r.error;
        EXPECT_EQ(r.version, "TLSv1.3");
        EXPECT_EQ(r.cipher, suite);
    }
}

TEST_F(server_tls, openssl_default_clients_get_tls13_and_tls12_gets_an_aead_suite) {
    auto any = client_context(0);
    auto r = handshake(hub_, any);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.version, "TLSv1.3");
    auto tls12 = client_context(TLS1_2_VERSION);
    auto r12 = handshake(hub_, tls12);
    ASSERT_TRUE(r12.ok) << r12.error;
    EXPECT_EQ(r12.version, "TLSv1.2");
    EXPECT_NE(std::string(server::tls12_cipher_list).find(r12.cipher), std::string::npos) << r12.cipher;
}

TEST_F(server_tls, python_sdk_tls12_context_connects) {
    // azure-iot-device builds ssl.SSLContext(PROTOCOL_TLSv1_2) (spec 1.4) with CPython's default
    // cipher string (3.10+, _ssl._DEFAULT_CIPHERS).
    auto py = client_context(TLS1_2_VERSION,
                             "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM");
    auto r = handshake(hub_, py);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.version, "TLSv1.2");
    EXPECT_EQ(r.cipher.rfind("ECDHE-ECDSA-", 0), 0u) << r.cipher;
    EXPECT_TRUE(r.cipher.find("GCM") != std::string::npos || r.cipher.find("CHACHA20") != std::string::npos) << r.cipher;
}

TEST_F(server_tls, tls11_and_below_are_refused) {
    asio::ssl::context old(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(old.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old.native_handle(), TLS1_1_VERSION);
    SSL_CTX_set_cipher_list(old.native_handle(), "DEFAULT:@SECLEVEL=0");
    old.add_certificate_authority(asio::buffer(hub_chain().ca));
    auto r = handshake(hub_, old);
    EXPECT_FALSE(r.ok) << r.version << " " << r.cipher;
}

TEST(server_tls_context, a_key_that_does_not_match_the_certificate_is_refused) {
    auto other = server::make_server_certificate(server::make_ca("other CA", 1), {"localhost"}, 1);
    EXPECT_THROW(server::make_server_tls_context(hub_chain().certificate, other.private_key), std::runtime_error);
    EXPECT_THROW(server::make_server_tls_context("not a certificate", hub_chain().key), std::runtime_error);
}
