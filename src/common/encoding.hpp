// Byte encodings used across the wire protocols: base64, percent-encoding, HMAC-SHA256 and secure
// random bytes. Thread safety: stateless, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace twinhub {

std::string base64_encode(std::string_view bytes);
// nullopt when s is not canonical base64 (standard alphabet, '=' padding required).
std::optional<std::string> base64_decode(std::string_view s);

// Percent-decoding; '+' is left alone. nullopt on a truncated or non-hex escape.
std::optional<std::string> percent_decode(std::string_view s);
// Encodes everything but ALPHA / DIGIT / "-_.~" (like encodeURIComponent, stricter); uppercase hex.
std::string percent_encode(std::string_view s);

// HMAC-SHA256(key, message) as raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view message);
// SHA-256 digest as raw bytes.
std::string sha256(std::string_view data);

// n cryptographically secure random bytes (OpenSSL RAND_bytes); aborts if the CSPRNG fails.
std::string random_bytes(std::size_t n);
// A new symmetric key: 32 random bytes, base64 (44 characters), as IoT Hub generates them.
std::string generate_key();
// Lowercase hex of random bytes, for tracking ids and request ids.
std::string random_hex(std::size_t bytes);

// Constant-time comparison for secrets.
bool secure_equals(std::string_view a, std::string_view b) noexcept;

}  // namespace twinhub
