#include "cli/certificate.hpp"

#include "common/json_print.hpp"
#include "common/encoding.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace twinhub::cli {
namespace {

struct cert_args {
    std::string name, path, etag, verified = "false";
};

// The file's contents; exit 2 (usage) when it cannot be read.
std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

void add_certificate_commands(CLI::App& app, const certificate_commands& cc) {
    auto args = std::make_shared<cert_args>();
    auto* g = app.add_subcommand("certificate", "X.509 CA certificates of the hub (az iot hub certificate): devices "
                                                "of type certificateAuthority authenticate with certificates they sign");
    g->require_subcommand(1);
    auto name_opt = [args](CLI::App* c) { c->add_option("-n,--name", args->name, "Certificate name")->required(); };
    auto etag_opt = [args](CLI::App* c) {
        c->add_option("--etag,-e", args->etag, "The certificate's current etag (show prints it)")->required();
    };
    auto path_opt = [args](CLI::App* c, const char* what) { c->add_option("-p,--path", args->path, what)->required(); };
    // One REST call; prints the JSON answer (if any). Exit 2 for an unreadable --path.
    auto call = [cc, args](std::string method, std::string suffix, bool with_body, bool put) -> int {
        std::string body;
        if (with_body) {
            auto text = read_file(args->path);
            if (!text) {
                std::cerr << "twinhub: usage: cannot read certificate file '" << args->path << "'\n";
                return 2;
            }
            boost::json::object o;
            if (put) o["properties"] = boost::json::object{{"certificate", *text}, {"isVerified", args->verified == "true"}};
            else o["certificate"] = *text;
            body = boost::json::serialize(o);
        }
        auto hub = cc.open_hub();
        std::string target = "/certificates";
        if (!args->name.empty()) target += "/" + percent_encode(args->name) + suffix;
        auto r = hub.raw_request(method, target, body, args->etag);
        if (!r) return cc.fail(r.error());
        if (r->empty()) return 0;
        boost::system::error_code ec;
        auto v = boost::json::parse(*r, ec);
        if (ec) return cc.fail(error{errc::format_error, "the hub's answer is not JSON"});
        std::cout << pretty_json(v) << "\n";
        return 0;
    };

    auto* c = cc.leaf(g, "create", "Register a CA certificate (PEM or .cer) with the hub");
    name_opt(c);
    path_opt(c, "PEM or DER (.cer) file of the CA certificate");
    c->add_option("-v,--verified", args->verified,
                  "true: trust it at once, without proof of possession (az's --verified)")
        ->check(CLI::IsMember({"true", "false"}));
    cc.run(c, [call] { return call("PUT", "", true, true); });

    c = cc.leaf(g, "list", "List the hub's CA certificates");
    cc.run(c, [call, args] {
        args->name.clear();
        return call("GET", "", false, false);
    });

    c = cc.leaf(g, "show", "Show a CA certificate (with its etag)");
    name_opt(c);
    cc.run(c, [call] { return call("GET", "", false, false); });

    c = cc.leaf(g, "delete", "Delete a CA certificate");
    name_opt(c);
    etag_opt(c);
    cc.run(c, [call] { return call("DELETE", "", false, false); });

    c = cc.leaf(g, "generate-verification-code",
                "Generate a verification code: sign a certificate with the CA's key whose CN is the code, then verify");
    name_opt(c);
    etag_opt(c);
    cc.run(c, [call] { return call("POST", "/generateVerificationCode", false, false); });

    c = cc.leaf(g, "verify", "Prove possession of the CA's key: upload the certificate whose CN is the verification code");
    name_opt(c);
    etag_opt(c);
    path_opt(c, "PEM file of the verification certificate (signed by the CA, CN = the verification code)");
    cc.run(c, [call] { return call("POST", "/verify", true, false); });
}

}  // namespace twinhub::cli
