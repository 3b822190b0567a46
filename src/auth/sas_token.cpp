#include "auth/sas_token.hpp"

#include "common/encoding.hpp"

#include <chrono>
#include <limits>
#include <optional>

namespace twinhub::auth {
namespace {

error bad(std::string message) {
    return {errc::invalid_argument, "Malformed SAS token: " + std::move(message)};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

std::optional<std::int64_t> parse_seconds(std::string_view s) {
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        int d = c - '0';
        if (v > (std::numeric_limits<std::int64_t>::max() - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

result<sas_token> parse_sas_token(std::string_view token) {
    token = trim(token);
    if (token.substr(0, sas_token_prefix.size()) != sas_token_prefix || token.size() == sas_token_prefix.size() ||
        token[sas_token_prefix.size()] != ' ') {
        return bad("it must start with 'SharedAccessSignature '.");
    }
    std::string_view rest = trim(token.substr(sas_token_prefix.size() + 1));

    std::optional<std::string_view> sr, sig, se, skn;
    while (!rest.empty()) {
        auto amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        std::optional<std::string_view>* slot = name == "sr"    ? &sr
                                                : name == "sig" ? &sig
                                                : name == "se"  ? &se
                                                : name == "skn" ? &skn
                                                                : nullptr;
        if (!slot) continue;  // unknown fields are not signed and carry no meaning for us
        if (*slot) return bad("duplicate field '" + std::string(name) + "'.");
        *slot = value;
    }
    if (!sr || sr->empty()) return bad("missing field 'sr'.");
    if (!sig || sig->empty()) return bad("missing field 'sig'.");
    if (!se || se->empty()) return bad("missing field 'se'.");
    auto expiry = parse_seconds(*se);
    if (!expiry) return bad("field 'se' must be whole seconds since the Unix epoch.");

    sas_token t;
    t.resource = std::string(*sr);
    t.signature = std::string(*sig);
    t.expiry = *expiry;
    if (skn) t.key_name = std::string(*skn);
    return t;
}

std::string to_string(const sas_token& t) {
    std::string out(sas_token_prefix);
    out.append(" sr=").append(t.resource);
    out.append("&sig=").append(t.signature);
    if (!t.key_name.empty()) out.append("&skn=").append(t.key_name);
    out.append("&se=").append(std::to_string(t.expiry));
    return out;
}

result<std::string> compute_signature(std::string_view key_base64, std::string_view resource, std::int64_t expiry) {
    if (key_base64.empty()) return error{errc::invalid_argument, "The shared access key is empty."};
    auto key = base64_decode(key_base64);
    if (!key) return error{errc::invalid_argument, "The shared access key is not valid base64."};
    std::string to_sign(resource);
    to_sign.append("\n").append(std::to_string(expiry));
    return percent_encode(base64_encode(hmac_sha256(*key, to_sign)));
}

result<std::string> generate_sas_token(std::string_view resource, std::string_view key_base64, std::int64_t expiry,
                                       std::string_view key_name) {
    auto sig = compute_signature(key_base64, resource, expiry);
    if (!sig) return sig.error();
    return to_string(sas_token{std::string(resource), std::move(*sig), expiry, std::string(key_name)});
}

bool signature_matches(const sas_token& t, std::string_view key_base64) noexcept {
    try {
        if (key_base64.empty()) return false;
        auto key = base64_decode(key_base64);
        if (!key || key->empty()) return false;
        auto received = percent_decode(t.signature);
        if (!received) return false;
        std::string to_sign = t.resource;
        to_sign.append("\n").append(std::to_string(t.expiry));
        // IoT Hub signs with the decoded key; Event Hubs and Service Bus clients (the built-in
        // endpoint's readers) sign with the key's text itself. Both prove the same secret.
        const bool iothub = secure_equals(base64_encode(hmac_sha256(*key, to_sign)), *received);
        const bool servicebus = secure_equals(base64_encode(hmac_sha256(std::string(key_base64), to_sign)), *received);
        return iothub || servicebus;
    } catch (...) {
        return false;  // allocation failure: treat as no match
    }
}

result<void> verify_signature(const sas_token& t, std::string_view primary_key, std::string_view secondary_key,
                              std::string_view what) {
    // Evaluate both so the time taken does not reveal which key matched.
    bool primary = signature_matches(t, primary_key);
    bool secondary = signature_matches(t, secondary_key);
    if (primary || secondary) return {};
    return error{errc::unauthorized, "The SAS token signature does not match any key of " + std::string(what) + "."};
}

std::int64_t to_unix_seconds(time_point t) noexcept {
    return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

result<void> check_expiry(const sas_token& t, time_point now) {
    if (t.expiry <= to_unix_seconds(now)) {
        return error{errc::unauthorized,
                     "The SAS token has expired (se=" + std::to_string(t.expiry) + "); generate a new one."};
    }
    return {};
}

result<std::string> decode_resource(std::string_view resource) {
    auto decoded = percent_decode(resource);
    if (!decoded) return error{errc::invalid_argument, "Malformed SAS token: 'sr' has an invalid percent-escape."};
    return std::move(*decoded);
}

bool resource_authorizes(std::string_view decoded_sr, std::string_view resource) noexcept {
    if (!decoded_sr.empty() && decoded_sr.back() == '/') decoded_sr.remove_suffix(1);
    if (decoded_sr.empty() || decoded_sr.size() > resource.size()) return false;
    for (std::size_t i = 0; i < decoded_sr.size(); ++i)
        if (lower(decoded_sr[i]) != lower(resource[i])) return false;
    return decoded_sr.size() == resource.size() || resource[decoded_sr.size()] == '/';
}

std::string identity_resource(std::string_view host_name, std::string_view device_id, std::string_view module_id) {
    std::string out(host_name);
    out.append("/devices/").append(device_id);
    if (!module_id.empty()) out.append("/modules/").append(module_id);
    return out;
}

}  // namespace twinhub::auth
