// certificate_service: CA certificates in the hub settings (etags, proof of possession, durable
// across a reopen of the SQLite store) and the X.509 authentication decision for identities.
#include "service_test_support.hpp"

#include "server/certificates.hpp"
#include "service/certificate_service.hpp"
#include "store/sqlite_store.hpp"

#include <cstdlib>
#include <filesystem>

namespace twinhub::service {
namespace {

using testing::wait_for;

struct hub_on_disk {
    std::filesystem::path dir;
    std::unique_ptr<store::store> st;
    std::unique_ptr<hub_service> hub;

    hub_on_disk() {
        std::string t = (std::filesystem::temp_directory_path() / "twinhub-certs-XXXXXX").string();
        if (!::mkdtemp(t.data())) std::abort();
        dir = t;
        open();
    }
    ~hub_on_disk() {
        close();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    void open() {
        log::set_level(log::level::warn);
        auto s = store::open_sqlite_store((dir / "hub.db").string());
        ASSERT_TRUE(s) << s.error().message;
        st = std::move(*s);
        auto h = hub_service::open(*st, {});
        ASSERT_TRUE(h) << h.error().message;
        hub = std::move(*h);
    }
    void close() {
        hub.reset();
        if (st) st->close();
        st.reset();
    }
};

std::string der_of(const std::string& pem) { return auth::parse_certificate(pem)->der; }

result<ca_certificate> put(certificate_service& c, std::string name, std::string pem, bool verified,
                           std::string if_match = {}) {
    return wait_for<ca_certificate>([&](auto h) { c.put(name, pem, verified, if_match, h); });
}

TEST(certificate_service, etags_proof_of_possession_and_a_reopen) {
    hub_on_disk h;
    auto root = server::make_ca("svc-root", 30);
    certificate_service certs(*h.hub);

    EXPECT_EQ(certificate_service::validate_name("bad/name").error().code, errc::invalid_argument);
    EXPECT_EQ(put(certs, "r", "not a certificate", false).error().code, errc::invalid_argument);
    auto c = put(certs, "r", root.certificate, false);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_FALSE(c->verified);
    EXPECT_EQ(c->info.common_name, "svc-root");
    // An existing name needs its etag; a stale one is refused.
    EXPECT_EQ(put(certs, "r", root.certificate, false).error().code, errc::precondition_failed);
    EXPECT_EQ(put(certs, "r", root.certificate, false, "\"bm9wZQ==\"").error().code, errc::precondition_failed);
    const std::string etag = registry::etag_to_string(c->etag);

    // No code yet: verify is refused; then the code, a wrong proof, the right proof.
    auto proof_for = [&](const std::string& cn) { return server::make_server_certificate(root, {cn}, 1).certificate; };
    auto verify = [&](std::string pem, std::string if_match) {
        return wait_for<ca_certificate>([&](auto cb) { certs.verify("r", pem, if_match, cb); });
    };
    EXPECT_EQ(verify(proof_for("x"), etag).error().code, errc::invalid_argument);
    auto coded = wait_for<ca_certificate>([&](auto cb) { certs.generate_verification_code("r", etag, cb); });
    ASSERT_TRUE(coded) << coded.error().message;
    ASSERT_FALSE(coded->verification_code.empty());
    const std::string etag2 = registry::etag_to_string(coded->etag);
    EXPECT_NE(etag2, etag);
    EXPECT_EQ(verify(proof_for(coded->verification_code), etag).error().code, errc::precondition_failed);
    EXPECT_EQ(verify(proof_for("wrong"), etag2).error().code, errc::invalid_argument);
    EXPECT_TRUE(certs.verified_pems().empty());
    auto ok = verify(proof_for(coded->verification_code), etag2);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_TRUE(ok->verified);
    ASSERT_EQ(certs.verified_pems().size(), 1u);

    // Durable: the same after a reopen.
    h.close();
    ASSERT_NO_FATAL_FAILURE(h.open());
    certificate_service again(*h.hub);
    auto back = again.get("r");
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_TRUE(back->verified);
    EXPECT_EQ(back->etag, ok->etag);
    EXPECT_EQ(again.list().size(), 1u);

    EXPECT_EQ(wait_for<void>([&](auto cb) { again.remove("r", "", cb); }).error().code, errc::precondition_failed);
    EXPECT_TRUE(wait_for<void>([&](auto cb) { again.remove("r", "*", cb); }));
    EXPECT_EQ(again.get("r").error().code, errc::not_found);
}

TEST(certificate_service, authenticates_identities_by_their_type) {
    hub_on_disk h;
    auto root = server::make_ca("auth-root", 30);
    certificate_service certs(*h.hub);
    ASSERT_TRUE(put(certs, "root", root.certificate, true));

    auto create = [&](std::string id, registry::auth_type t, std::optional<std::string> thumb = {}) {
        registry::device_identity d;
        d.device_id = std::move(id);
        d.authentication.type = t;
        d.authentication.x509_thumbprint.primary_thumbprint = std::move(thumb);
        auto r = wait_for<registry::device_identity>([&](auto cb) { h.hub->create_device(d, cb); });
        ASSERT_TRUE(r) << r.error().message;
    };
    const auth::certificate_chain ca_leaf{der_of(server::make_server_certificate(root, {"ca-dev"}, 1).certificate)};
    const auth::certificate_chain self{der_of(server::make_ca("anything", 1).certificate)};
    create("ca-dev", registry::auth_type::certificate_authority);
    create("ss-dev", registry::auth_type::self_signed, auth::sha256_thumbprint(self.front()));
    create("sas-dev", registry::auth_type::sas);

    EXPECT_TRUE(certs.authenticate({"ca-dev", {}}, ca_leaf, now()));
    EXPECT_TRUE(certs.authenticate({"ss-dev", {}}, self, now()));
    EXPECT_EQ(certs.authenticate({"ss-dev", {}}, ca_leaf, now()).error().code, errc::unauthorized);
    EXPECT_EQ(certs.authenticate({"sas-dev", {}}, self, now()).error().code, errc::unauthorized);
    EXPECT_EQ(certs.authenticate({"nobody", {}}, self, now()).error().code, errc::unauthorized);
    EXPECT_EQ(certs.authenticate({"ca-dev", "m1"}, ca_leaf, now()).error().code, errc::unauthorized);

    // A CA that is no longer verified (replaced unverified) no longer authenticates its devices.
    ASSERT_TRUE(put(certs, "root", root.certificate, false, "*"));
    EXPECT_EQ(certs.authenticate({"ca-dev", {}}, ca_leaf, now()).error().code, errc::unauthorized);
}

}  // namespace
}  // namespace twinhub::service
