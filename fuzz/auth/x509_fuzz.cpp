// Fuzzes what a client certificate and an uploaded CA certificate reach in auth/x509: DER chains
// (the input split at 0xFF 0x00 into certificates) through the thumbprint and chain checks, and the
// input as PEM/DER through parse_certificate and the proof-of-possession check. Properties checked:
// no crash; a parsed certificate's DER parses again to the same thumbprints.
#include "auth/x509.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace twinhub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auth::certificate_chain chain;
    std::size_t at = 0;
    while (at <= in.size() && chain.size() < 4) {
        const std::size_t cut = in.find(std::string_view("\xff\x00", 2), at);
        chain.emplace_back(in.substr(at, cut == std::string_view::npos ? std::string_view::npos : cut - at));
        if (cut == std::string_view::npos) break;
        at = cut + 2;
    }
    const time_point t = now();
    (void)auth::check_thumbprint(chain, std::string(40, 'A'), std::nullopt, t);
    const std::vector<std::string> anchors{chain.back()};
    (void)auth::check_chain(chain, anchors, "dev1", t);
    if (auto info = auth::parse_certificate(in)) {
        auto again = auth::parse_certificate(info->der);
        if (!again || again->sha1 != info->sha1 || again->sha256 != info->sha256) std::abort();
        (void)auth::check_verification_certificate(in, in, info->common_name, t);
    }
    return 0;
}
