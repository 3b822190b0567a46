// /console/...: the web console's built files (console/, built by Vite into bin/console next to
// twinhubd), read from disk per request. The console is static: it calls the REST API with SAS
// tokens it signs in the browser, so these files carry no secret and need no auth.
#include "http/ops_api.hpp"

#include "http/error_body.hpp"
#include "http/request_target.hpp"

#include <fstream>
#include <iterator>

namespace twinhub::http {

namespace {

std::string_view content_type_of(std::string_view name) {
    auto dot = name.rfind('.');
    const std::string_view ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    if (ext == "html") return "text/html; charset=utf-8";
    if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
    if (ext == "css") return "text/css; charset=utf-8";
    if (ext == "svg") return "image/svg+xml";
    if (ext == "png") return "image/png";
    if (ext == "ico") return "image/x-icon";
    if (ext == "json" || ext == "map") return "application/json; charset=utf-8";
    if (ext == "woff2") return "font/woff2";
    return "application/octet-stream";
}

// Names Vite writes: letters, digits, '.', '-', '_' and '/' between them; never "..".
bool safe_relative(std::string_view p) {
    if (p.empty() || p.front() == '/' || p.find("..") != std::string_view::npos || p.find("//") != std::string_view::npos)
        return false;
    for (char c : p) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '-' || c == '_' || c == '/';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

void ops_api::console(const rest_request& req, completion done) const {
    if (opts_.console_dir.empty()) {
        return done(error_response(error{errc::not_found, "The console is not served by this hub (--no-console, or "
                                                          "its files were not found next to twinhubd)."}));
    }
    if (req.method != "GET") return done(error_response(error{errc::method_not_allowed, "Use GET on the console."}));
    std::string_view path = target_path(req.target);
    if (path == "/console") {
        rest_response r;
        r.status = 301;
        r.headers.emplace_back("Location", "/console/");
        return done(std::move(r));
    }
    std::string_view rel = path.substr(std::string_view("/console/").size());
    if (rel.empty()) rel = "index.html";
    if (!safe_relative(rel)) return done(error_response(error{errc::not_found, "No such console file."}));
    std::ifstream f(opts_.console_dir + "/" + std::string(rel), std::ios::binary);
    if (!f) return done(error_response(error{errc::not_found, "No such console file: " + std::string(rel) + "."}));
    rest_response r;
    r.body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    r.headers.emplace_back("Content-Type", std::string(content_type_of(rel)));
    // Vite names assets by their content hash; index.html must be fetched again to see a new build.
    r.headers.emplace_back("Cache-Control", rel.starts_with("assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                           "frame-ancestors 'none'");
    done(std::move(r));
}

}  // namespace twinhub::http
