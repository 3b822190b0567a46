// TLS settings shared by the service and device clients. The hub's certificate is always verified,
// including its host name (the name dialled must be one of the certificate's SANs); with neither
// ca_file nor ca_pem set, the system trust store is used.
// Thread safety: plain value.
#pragma once

#include <string>

namespace twinhub {

struct tls_options {
    std::string ca_file;  // path of a PEM file with the CA(s) to trust, e.g. DATA_DIR/tls/ca.pem
    std::string ca_pem;   // or the PEM text itself (like the C SDK's "TrustedCerts" option)
};

}  // namespace twinhub
