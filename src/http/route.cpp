#include "http/route.hpp"

#include "auth/shared_access_policy.hpp"

#include <initializer_list>

namespace twinhub::http {

http_method parse_method(std::string_view m) noexcept {
    if (m == "GET") return http_method::get;
    if (m == "PUT") return http_method::put;
    if (m == "POST") return http_method::post;
    if (m == "PATCH") return http_method::patch;
    if (m == "DELETE") return http_method::delete_;
    return http_method::other;
}

std::string_view allowed_methods(route_kind k) noexcept {
    switch (k) {
    case route_kind::devices: return "GET, POST";
    case route_kind::device: return "GET, PUT, DELETE";
    case route_kind::modules: return "GET";
    case route_kind::module: return "GET, PUT, DELETE";
    case route_kind::twin: return "GET, PATCH, PUT";
    case route_kind::module_twin: return "GET, PATCH, PUT";
    case route_kind::registry_statistics: return "GET";
    case route_kind::service_statistics: return "GET";
    case route_kind::device_methods:
    case route_kind::module_methods:
    case route_kind::devices_query: return "POST";
    case route_kind::c2d_purge: return "DELETE";
    case route_kind::c2d_receive: return "GET";
    case route_kind::c2d_settle: return "DELETE";
    case route_kind::c2d_abandon:
    case route_kind::device_events: return "POST";
    case route_kind::consumer_groups: return "GET";
    case route_kind::consumer_group: return "GET, PUT, DELETE";
    case route_kind::certificates: return "GET";
    case route_kind::certificate: return "GET, PUT, DELETE";
    case route_kind::certificate_code:
    case route_kind::certificate_verify: return "POST";
    case route_kind::job: return "GET, PUT";
    case route_kind::job_cancel: return "POST";
    case route_kind::jobs_query: return "GET";
    case route_kind::ie_jobs: return "GET";
    case route_kind::ie_job_create: return "POST";
    case route_kind::ie_job: return "GET, DELETE";
    case route_kind::configurations: return "GET";
    case route_kind::configuration: return "GET, PUT, DELETE";
    case route_kind::configurations_test:
    case route_kind::apply_configuration: return "POST";
    case route_kind::file_upload:
    case route_kind::file_notification: return "POST";
    case route_kind::digital_twin: return "GET, PATCH";
    case route_kind::digital_twin_command: return "POST";
    }
    return "";
}

bool is_jobs_route(route_kind k) noexcept {
    return k == route_kind::job || k == route_kind::job_cancel || k == route_kind::jobs_query ||
           k == route_kind::configurations || k == route_kind::configuration ||
           k == route_kind::configurations_test || k == route_kind::apply_configuration;
}

bool is_device_route(route_kind k) noexcept {
    return k == route_kind::c2d_receive || k == route_kind::c2d_settle || k == route_kind::c2d_abandon ||
           k == route_kind::device_events || k == route_kind::file_upload || k == route_kind::file_notification;
}

namespace {

bool allowed(route_kind k, http_method m) {
    auto in = [m](std::initializer_list<http_method> l) {
        for (auto x : l) {
            if (x == m) return true;
        }
        return false;
    };
    using enum http_method;
    switch (k) {
    case route_kind::devices: return in({get, post});
    case route_kind::device:
    case route_kind::module: return in({get, put, delete_});
    case route_kind::twin:
    case route_kind::module_twin: return in({get, patch, put});
    case route_kind::modules:
    case route_kind::registry_statistics:
    case route_kind::service_statistics: return in({get});
    case route_kind::device_methods:
    case route_kind::module_methods:
    case route_kind::devices_query: return in({post});
    case route_kind::c2d_purge:
    case route_kind::c2d_settle: return in({delete_});
    case route_kind::c2d_receive: return in({get});
    case route_kind::c2d_abandon:
    case route_kind::device_events: return in({post});
    case route_kind::consumer_groups: return in({get});
    case route_kind::consumer_group: return in({get, put, delete_});
    case route_kind::certificates: return in({get});
    case route_kind::certificate: return in({get, put, delete_});
    case route_kind::certificate_code:
    case route_kind::certificate_verify: return in({post});
    case route_kind::job: return in({get, put});
    case route_kind::job_cancel:
    case route_kind::configurations_test:
    case route_kind::apply_configuration: return in({post});
    case route_kind::jobs_query:
    case route_kind::ie_jobs:
    case route_kind::configurations: return in({get});
    case route_kind::ie_job_create: return in({post});
    case route_kind::ie_job: return in({get, delete_});
    case route_kind::configuration: return in({get, put, delete_});
    case route_kind::file_upload:
    case route_kind::file_notification:
    case route_kind::digital_twin_command: return in({post});
    case route_kind::digital_twin: return in({get, patch});
    }
    return false;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lc = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lc(a[i]) != lc(b[i])) return false;
    }
    return true;
}

// The C2D routes below an identity: `rest` are the segments after /devices/{id} or
// /devices/{id}/modules/{mid}. The SDKs spell deviceBound in either case (Node: devicebound).
bool match_c2d(const std::vector<std::string>& s, std::size_t at, route& r) {
    const std::size_t left = s.size() - at;
    if (left == 1 && s[at] == "commands") {
        r.kind = route_kind::c2d_purge;
        return true;
    }
    if (left >= 1 && left <= 3 && s[at] == "files" && at == 2) {
        if (left == 1) {
            r.kind = route_kind::file_upload;
            return true;
        }
        if (s[at + 1] != "notifications") return false;
        r.kind = route_kind::file_notification;
        if (left == 3) r.lock_token = s[at + 2];
        return true;
    }
    if (left == 2 && s[at] == "messages" && s[at + 1] == "events") {
        r.kind = route_kind::device_events;
        return true;
    }
    if (left < 2 || s[at] != "messages" || !iequals(s[at + 1], "devicebound")) return false;
    if (left == 2) {
        r.kind = route_kind::c2d_receive;
        return true;
    }
    if (left == 3) {
        r.kind = route_kind::c2d_settle;
        r.lock_token = s[at + 2];
        return true;
    }
    if (left == 4 && s[at + 3] == "abandon") {
        r.kind = route_kind::c2d_abandon;
        r.lock_token = s[at + 2];
        return true;
    }
    return false;
}

error no_route(std::string_view what) {
    return error{errc::not_found, std::string(what)};
}

}  // namespace

result<route> match_route(std::string_view method, const std::vector<std::string>& s, std::string_view* allow) {
    route r;
    r.method = parse_method(method);
    const std::size_t n = s.size();
    bool found = false;
    if (n >= 1 && s[0] == "devices") {
        if (n == 1) {
            r.kind = route_kind::devices;
            found = true;
        } else if (n == 2 && s[1] == "query" && r.method == http_method::post) {
            r.kind = route_kind::devices_query;
            found = true;
        } else if (n == 2) {
            r.kind = route_kind::device;
            r.device_id = s[1];
            found = true;
        } else if (n == 3 && s[2] == "modules") {
            r.kind = route_kind::modules;
            r.device_id = s[1];
            found = true;
        } else if (n == 4 && s[2] == "modules") {
            r.kind = route_kind::module;
            r.device_id = s[1];
            r.module_id = s[3];
            found = true;
        } else if (n >= 5 && s[2] == "modules" && match_c2d(s, 4, r)) {
            r.device_id = s[1];
            r.module_id = s[3];
            found = true;
        } else if (n == 3 && s[2] == "applyConfigurationContent") {
            r.kind = route_kind::apply_configuration;
            r.device_id = s[1];
            found = true;
        } else if (n >= 3 && s[2] != "modules" && match_c2d(s, 2, r)) {
            r.device_id = s[1];
            found = true;
        }
    } else if (n >= 2 && s[0] == "twins") {
        if (n == 2) {
            r.kind = route_kind::twin;
            r.device_id = s[1];
            found = true;
        } else if (n == 4 && s[2] == "modules") {
            r.kind = route_kind::module_twin;
            r.device_id = s[1];
            r.module_id = s[3];
            found = true;
        } else if (n == 3 && s[2] == "methods") {
            r.kind = route_kind::device_methods;
            r.device_id = s[1];
            found = true;
        } else if (n == 5 && s[2] == "modules" && s[4] == "methods") {
            r.kind = route_kind::module_methods;
            r.device_id = s[1];
            r.module_id = s[3];
            found = true;
        }
    } else if ((n == 3 || n == 4) && iequals(s[0], "eventHubEndpoints") && s[1] == "events" && iequals(s[2], "consumerGroups")) {
        r.kind = n == 3 ? route_kind::consumer_groups : route_kind::consumer_group;
        if (n == 4) r.lock_token = s[3];
        found = true;
    } else if (n >= 1 && n <= 3 && s[0] == "certificates") {
        if (n == 1) {
            r.kind = route_kind::certificates;
            found = true;
        } else if (n == 2) {
            r.kind = route_kind::certificate;
            found = true;
        } else if (iequals(s[2], "generateVerificationCode")) {
            r.kind = route_kind::certificate_code;
            found = true;
        } else if (iequals(s[2], "verify")) {
            r.kind = route_kind::certificate_verify;
            found = true;
        }
        if (n >= 2) r.lock_token = s[1];
    } else if (n >= 3 && n <= 4 && s[0] == "jobs" && s[1] == "v2") {
        if (n == 3 && s[2] == "query" && r.method == http_method::get) {
            r.kind = route_kind::jobs_query;
            found = true;
        } else if (n == 3) {
            r.kind = route_kind::job;
            r.lock_token = s[2];
            found = true;
        } else if (s[3] == "cancel") {
            r.kind = route_kind::job_cancel;
            r.lock_token = s[2];
            found = true;
        }
    } else if ((n == 1 || n == 2) && s[0] == "jobs") {
        if (n == 1) {
            r.kind = route_kind::ie_jobs;
        } else if (s[1] == "create") {
            r.kind = route_kind::ie_job_create;
        } else {
            r.kind = route_kind::ie_job;
            r.lock_token = s[1];
        }
        found = true;
    } else if ((n == 1 || n == 2) && s[0] == "configurations") {
        if (n == 1) {
            r.kind = route_kind::configurations;
        } else if (s[1] == "testQueries" && r.method == http_method::post) {
            r.kind = route_kind::configurations_test;
        } else {
            r.kind = route_kind::configuration;
            r.lock_token = s[1];
        }
        found = true;
    } else if (n >= 2 && iequals(s[0], "digitaltwins")) {
        r.device_id = s[1];
        if (n == 2) {
            r.kind = route_kind::digital_twin;
            found = true;
        } else if (n == 4 && s[2] == "commands") {
            r.kind = route_kind::digital_twin_command;
            r.command = s[3];
            found = true;
        } else if (n == 6 && s[2] == "components" && s[4] == "commands") {
            r.kind = route_kind::digital_twin_command;
            r.component = s[3];
            r.command = s[5];
            found = true;
        }
    } else if (n == 2 && s[0] == "statistics") {
        if (s[1] == "devices") {
            r.kind = route_kind::registry_statistics;
            found = true;
        } else if (s[1] == "service") {
            r.kind = route_kind::service_statistics;
            found = true;
        }
    }
    if (!found) return no_route("No resource matches the request path.");
    if (!allowed(r.kind, r.method)) {
        if (allow) *allow = allowed_methods(r.kind);
        return error{errc::method_not_allowed, "The method " + std::string(method) +
                                                   " is not allowed on this resource; allowed: " +
                                                   std::string(allowed_methods(r.kind)) + "."};
    }
    return r;
}

std::uint32_t required_permission(const route& r) noexcept {
    using namespace twinhub::auth;
    switch (r.kind) {
    case route_kind::devices:
        return r.method == http_method::post ? registry_write : registry_read;
    case route_kind::device:
    case route_kind::module:
        return r.method == http_method::get ? registry_read : registry_write;
    case route_kind::modules:
    case route_kind::registry_statistics: return registry_read;
    case route_kind::twin:
    case route_kind::module_twin:
        return r.method == http_method::get ? (service_connect | registry_read) : service_connect;
    case route_kind::service_statistics:
    case route_kind::device_methods:
    case route_kind::module_methods:
    case route_kind::devices_query:
    case route_kind::c2d_purge: return service_connect;
    case route_kind::c2d_receive:
    case route_kind::c2d_settle:
    case route_kind::c2d_abandon:
    case route_kind::device_events: return device_connect;
    case route_kind::consumer_groups:
    case route_kind::consumer_group: return service_connect;
    case route_kind::certificates:
    case route_kind::certificate:
    case route_kind::certificate_code:
    case route_kind::certificate_verify: return registry_write;
    case route_kind::job:
        return r.method == http_method::get ? (registry_read | service_connect) : (registry_write | service_connect);
    case route_kind::job_cancel: return registry_write | service_connect;
    case route_kind::jobs_query: return registry_read | service_connect;
    case route_kind::ie_jobs: return registry_read;
    case route_kind::ie_job_create: return registry_write;
    case route_kind::ie_job: return r.method == http_method::get ? registry_read : registry_write;
    case route_kind::configurations:
    case route_kind::configurations_test: return registry_read;
    case route_kind::configuration: return r.method == http_method::get ? registry_read : registry_write;
    case route_kind::apply_configuration: return registry_write;
    case route_kind::file_upload:
    case route_kind::file_notification: return device_connect;
    case route_kind::digital_twin:
        return r.method == http_method::get ? (service_connect | registry_read) : service_connect;
    case route_kind::digital_twin_command: return service_connect;
    }
    return service_connect;
}

}  // namespace twinhub::http
