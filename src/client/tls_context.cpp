#include "client/tls_context.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>

namespace twinhub::client {

result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const tls_options& options) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(ssl::verify_peer);
    boost::system::error_code ec;
    if (!options.ca_file.empty()) {
        std::ifstream in(options.ca_file, std::ios::binary);
        if (!in) return error{errc::invalid_argument, "cannot read the CA file '" + options.ca_file + "'"};
        std::ostringstream ss;
        ss << in.rdbuf();
        std::string pem = ss.str();
        ctx->add_certificate_authority(boost::asio::buffer(pem), ec);
        if (ec) return error{errc::invalid_argument, "the CA file '" + options.ca_file +
                                                         "' does not hold a PEM certificate: " + ec.message()};
    }
    if (!options.ca_pem.empty()) {
        ctx->add_certificate_authority(boost::asio::buffer(options.ca_pem), ec);
        if (ec) return error{errc::invalid_argument, "the CA PEM text is not a certificate: " + ec.message()};
    }
    if (options.ca_file.empty() && options.ca_pem.empty()) ctx->set_default_verify_paths(ec);
    return ctx;
}

bool prepare_tls_handle(void* native_ssl, const std::string& host) {
    auto* ssl = static_cast<SSL*>(native_ssl);
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address(host, ec);  // only: is `host` an IP address?
    if (ec) {
        if (!SSL_set_tlsext_host_name(ssl, host.c_str())) return false;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        return SSL_set1_host(ssl, host.c_str()) == 1;
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
}

std::string describe_tls_error(const boost::system::error_code& ec, void* native_ssl) {
    std::string msg = ec.message();
    if (native_ssl) {
        long v = SSL_get_verify_result(static_cast<SSL*>(native_ssl));
        if (v != X509_V_OK) {
            msg = std::string("certificate verification failed: ") + X509_verify_cert_error_string(v);
            if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
                msg += " (the hub's certificate does not name the host dialled)";
            else
                msg += " (pass the hub's CA with --ca-file / tls_options.ca_file)";
        }
    }
    return msg;
}

}  // namespace twinhub::client
