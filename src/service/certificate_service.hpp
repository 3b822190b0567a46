// X.509 CA certificates registered with the hub (Azure's "Certificates" of an IoT hub, spec 5.12),
// and the hub's one X.509 authentication decision for device-side connections.
//
// The certificates live in the hub settings (key "certificates/{name}", a JSON document), so they
// are durable, in the store, and read back at start-up like the other settings. A certificate
// authenticates devices only once verified: registered with isVerified, or proven by a
// certificate signed by its key whose CN is the verification code the hub handed out.
// Writes are etag-conditioned (If-Match, as Azure's ARM API): create needs none (or fails with
// precondition_failed when the name exists), update/delete/generate/verify need the current etag
// or "*".
//
// Thread safety: a value over the hub_service; every member may be called from any thread.
// Writes are serialized by a process-wide mutex around their check-and-commit.
#pragma once

#include "auth/x509.hpp"
#include "common/errc.hpp"
#include "common/time.hpp"
#include "service/handler.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::service {

class hub_service;

struct ca_certificate {
    std::string name;
    std::string pem;  // as registered (normalised to PEM)
    bool verified = false;
    std::uint64_t etag = 0;          // counter; wire form registry::etag_to_string
    std::string verification_code;   // the last code handed out; empty when none
    time_point created{};
    time_point updated{};
    auth::certificate_info info;     // parsed from pem
};

class certificate_service {
public:
    explicit certificate_service(hub_service& hub) : hub_(hub) {}

    // Names: 1-64 of A-Z a-z 0-9 - . _ (Azure's rule). invalid_argument otherwise.
    static result<void> validate_name(std::string_view name);

    std::vector<ca_certificate> list() const;
    // not_found when there is none of that name.
    result<ca_certificate> get(std::string_view name) const;
    // Creates (if_match empty; precondition_failed when it exists) or replaces (if_match the current
    // etag or "*"; not_found when it does not exist) a certificate. A replaced certificate keeps
    // `verified` only when the PEM is the same, and when `verified` says so.
    void put(std::string name, std::string pem_or_base64, bool verified, std::string if_match,
             handler<ca_certificate> done);
    void remove(std::string name, std::string if_match, handler<void> done);
    // A new verification code (random hex) recorded on the certificate; completes with it.
    void generate_verification_code(std::string name, std::string if_match, handler<ca_certificate> done);
    // Proof of possession: marks the certificate verified when `verification_pem` is signed by it
    // and its CN is the current verification code (invalid_argument otherwise).
    void verify(std::string name, std::string verification_pem, std::string if_match, handler<ca_certificate> done);

    // The PEMs of the verified certificates (the trust anchors of certificateAuthority identities).
    std::vector<std::string> verified_pems() const;

    // The X.509 authentication decision for `id` presenting `chain` (leaf first) at `at`:
    // unauthorized unless the identity exists, its device is enabled, and
    // - selfSigned: the leaf is valid and its SHA-1 or SHA-256 thumbprint is one of the identity's;
    // - certificateAuthority: the chain verifies to a verified CA and the leaf's CN is the device id
    //   (for a module "{deviceId}/{moduleId}", as Azure IoT Hub expects).
    // sas and none identities never authenticate by certificate.
    result<void> authenticate(const store::identity_key& id, const auth::certificate_chain& chain, time_point at) const;

private:
    void commit(ca_certificate c, handler<ca_certificate> done);
    hub_service& hub_;
};

}  // namespace twinhub::service
