// file_upload_service: the storage account, its SAS tokens and the notification body.
#include "service/file_upload_service.hpp"

#include "common/encoding.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>
#include <map>

namespace twinhub::service {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

// "2026-12-07T20:05:02Z": the SAS time form (seconds, no fraction).
std::string sas_time(time_point t) {
    const std::time_t s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

constexpr std::string_view sas_version = "2019-12-12";

}  // namespace

std::string storage_account::host_name() const {
    std::string_view e = blob_endpoint;
    if (auto p = e.find("://"); p != std::string_view::npos) e.remove_prefix(p + 3);
    return std::string(e);
}

result<storage_account> parse_storage_connection_string(std::string_view cs, std::string container) {
    std::map<std::string, std::string> kv;
    while (!cs.empty()) {
        auto semi = cs.find(';');
        std::string_view part = cs.substr(0, semi);
        cs = semi == std::string_view::npos ? std::string_view() : cs.substr(semi + 1);
        if (part.empty()) continue;
        auto eq = part.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return error{errc::invalid_argument, "The storage connection string has a part without key=value."};
        std::string key(part.substr(0, eq));
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        kv[key] = std::string(part.substr(eq + 1));
    }
    storage_account a;
    a.account_name = kv["accountname"];
    if (a.account_name.empty()) return error{errc::invalid_argument, "The storage connection string has no AccountName."};
    auto key = base64_decode(kv["accountkey"]);
    if (!key || key->empty())
        return error{errc::invalid_argument, "The storage connection string has no AccountKey in base64."};
    a.account_key = std::move(*key);
    if (auto it = kv.find("blobendpoint"); it != kv.end() && !it->second.empty()) {
        a.blob_endpoint = it->second;
    } else {
        const std::string proto = kv.count("defaultendpointsprotocol") ? kv["defaultendpointsprotocol"] : "https";
        const std::string suffix = kv.count("endpointsuffix") ? kv["endpointsuffix"] : "core.windows.net";
        a.blob_endpoint = proto + "://" + a.account_name + ".blob." + suffix;
    }
    while (!a.blob_endpoint.empty() && a.blob_endpoint.back() == '/') a.blob_endpoint.pop_back();
    if (a.blob_endpoint.size() < 9 || !iequals(std::string_view(a.blob_endpoint).substr(0, 8), "https://"))
        return error{errc::invalid_argument,
                     "The storage blob endpoint must be https:// (the device SDKs upload over HTTPS); got '" +
                         a.blob_endpoint + "'."};
    if (container.empty()) return error{errc::invalid_argument, "The file upload container name is empty."};
    // Azure's rule: 3-63 characters, lower-case letters, digits and single '-', starting and ending alphanumeric.
    bool ok = container.size() >= 3 && container.size() <= 63 && container.front() != '-' && container.back() != '-' &&
              container.find("--") == std::string::npos;
    for (char c : container) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (!ok)
        return error{errc::invalid_argument, "The container name '" + container +
                                                 "' is not valid (3-63 lower-case letters, digits and single '-')."};
    a.container = std::move(container);
    return a;
}

std::string blob_path_encode(std::string_view name) {
    std::string out;
    std::size_t start = 0;
    while (true) {
        auto slash = name.find('/', start);
        out += percent_encode(name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        out += '/';
        start = slash + 1;
    }
    return out;
}

std::string blob_service_sas(const storage_account& a, std::string_view blob, std::string_view permissions,
                             time_point expiry) {
    const std::string se = sas_time(expiry);
    const std::string sr = blob.empty() ? "c" : "b";
    std::string resource = "/blob/" + a.account_name + "/" + a.container;
    if (!blob.empty()) {
        resource += '/';
        resource.append(blob);
    }
    // The string-to-sign of service SAS versions 2018-11-09 to 2020-10-02: sp, st, se, resource,
    // si, sip, spr, sv, sr, snapshot time, rscc, rscd, rsce, rscl, rsct.
    const std::string_view fields[] = {permissions, "", se, resource, "", "", "https", sas_version, sr,
                                       "", "", "", "", "", ""};
    std::string to_sign;
    for (std::size_t i = 0; i < std::size(fields); ++i) {
        if (i) to_sign += '\n';
        to_sign.append(fields[i]);
    }
    const std::string sig = base64_encode(hmac_sha256(a.account_key, to_sign));
    return "sv=" + std::string(sas_version) + "&spr=https&se=" + percent_encode(se) + "&sr=" + sr +
           "&sp=" + std::string(permissions) + "&sig=" + percent_encode(sig);
}

std::string container_account_sas(const storage_account& a, std::string_view permissions, time_point expiry) {
    const std::string se = sas_time(expiry);
    // Account SAS (versions before 2020-12-06): account, sp, ss, srt, st, se, sip, spr, sv, and a
    // trailing newline.
    std::string to_sign = a.account_name + "\n" + std::string(permissions) + "\nb\nc\n\n" + se + "\n\nhttps\n" +
                          std::string(sas_version) + "\n";
    const std::string sig = base64_encode(hmac_sha256(a.account_key, to_sign));
    return "sv=" + std::string(sas_version) + "&ss=b&srt=c&spr=https&se=" + percent_encode(se) +
           "&sp=" + std::string(permissions) + "&sig=" + percent_encode(sig);
}

std::string file_notification_json(const file_notification& n) {
    boost::json::object o;
    o["deviceId"] = n.device_id;
    o["blobUri"] = n.blob_uri;
    o["blobName"] = n.blob_name;
    o["lastUpdatedTime"] = n.last_updated_time;
    o["blobSizeInBytes"] = n.blob_size;
    o["enqueuedTimeUtc"] = n.enqueued_time;
    return boost::json::serialize(o);
}

}  // namespace twinhub::service
