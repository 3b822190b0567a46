#include "auth/sas_token.hpp"

#include "common/encoding.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::auth;

namespace {
// Spec 2.5: base64 of "testkeytestkeytestkey", se = 1700000000.
constexpr std::string_view vector_key = "dGVzdGtleXRlc3RrZXl0ZXN0a2V5";
constexpr std::int64_t vector_se = 1700000000;

struct vector_case {
    std::string_view sr;
    std::string_view sig;
};
constexpr vector_case vectors[] = {
    {"myhub.azure-devices.net", "ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020E%3D"},
    {"myhub.azure-devices.net%2Fdevices%2Fdev1", "7Af%2BZqjn1ML3gy0xAzJEYhNJ%2B9x8Qhh%2FNnYi9Bi7%2FOI%3D"},
    {"myhub.azure-devices.net%2Fdevices%2Fdev1%2Fmodules%2Fmod1", "PJlt40qAtBtpaUZVRRZ4RQkV14A%2BCL08aQ5w4qPzjK8%3D"},
    {"myhub.azure-devices.net/devices/dev1", "98zZFaj4cpdRTiZvThlsmPTTD%2Bg921zRFPKycu7zv64%3D"},
};

time_point at(std::int64_t seconds) {
    return time_point{std::chrono::seconds{seconds}};
}

std::string to_lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}
}  // namespace

TEST(sas_token, computes_the_four_spec_vectors) {
    for (const auto& v : vectors) {
        auto sig = compute_signature(vector_key, v.sr, vector_se);
        ASSERT_TRUE(sig) << sig.error().message;
        EXPECT_EQ(*sig, v.sig) << v.sr;
    }
}

TEST(sas_token, generates_the_node_service_token_exactly) {
    auto t = generate_sas_token("myhub.azure-devices.net", vector_key, vector_se, "iothubowner");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(*t,
              "SharedAccessSignature sr=myhub.azure-devices.net&sig=ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020E%3D"
              "&skn=iothubowner&se=1700000000");
}

TEST(sas_token, generates_the_node_device_token_exactly) {
    auto t =
        generate_sas_token(percent_encode(identity_resource("myhub.azure-devices.net", "dev1")), vector_key, vector_se);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(*t,
              "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1"
              "&sig=7Af%2BZqjn1ML3gy0xAzJEYhNJ%2B9x8Qhh%2FNnYi9Bi7%2FOI%3D&se=1700000000");
}

TEST(sas_token, every_spec_vector_verifies) {
    for (const auto& v : vectors) {
        sas_token t{std::string(v.sr), std::string(v.sig), vector_se, ""};
        EXPECT_TRUE(signature_matches(t, vector_key)) << v.sr;
    }
}

TEST(sas_token, parses_node_field_order) {
    auto t = parse_sas_token(
        "SharedAccessSignature sr=myhub.azure-devices.net&sig=ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020E%3D"
        "&skn=iothubowner&se=1700000000");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->resource, "myhub.azure-devices.net");
    EXPECT_EQ(t->signature, "ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020E%3D");
    EXPECT_EQ(t->expiry, vector_se);
    EXPECT_EQ(t->key_name, "iothubowner");
    EXPECT_TRUE(signature_matches(*t, vector_key));
}

TEST(sas_token, parses_python_and_c_field_order) {
    // Python and C: sr, sig, se, skn.
    auto t = parse_sas_token(
        "SharedAccessSignature sr=myhub.azure-devices.net&sig=ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020E%3D"
        "&se=1700000000&skn=iothubowner");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->key_name, "iothubowner");
    EXPECT_EQ(t->expiry, vector_se);
    EXPECT_TRUE(signature_matches(*t, vector_key));
}

TEST(sas_token, parses_documentation_field_order) {
    auto t = parse_sas_token(
        "SharedAccessSignature sig=7Af%2BZqjn1ML3gy0xAzJEYhNJ%2B9x8Qhh%2FNnYi9Bi7%2FOI%3D&se=1700000000&skn="
        "&sr=myhub.azure-devices.net%2Fdevices%2Fdev1");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->resource, "myhub.azure-devices.net%2Fdevices%2Fdev1");
    EXPECT_TRUE(t->key_name.empty());  // empty skn (old C SDK) means absent
    EXPECT_TRUE(signature_matches(*t, vector_key));
}

TEST(sas_token, to_string_uses_node_order_and_omits_empty_skn) {
    EXPECT_EQ(to_string(sas_token{"a", "b", 5, ""}), "SharedAccessSignature sr=a&sig=b&se=5");
    EXPECT_EQ(to_string(sas_token{"a", "b", 5, "k"}), "SharedAccessSignature sr=a&sig=b&skn=k&se=5");
}

TEST(sas_token, raw_c_style_resource_verifies_over_the_raw_string) {
    auto t = parse_sas_token(
        "SharedAccessSignature "
        "sr=myhub.azure-devices.net/devices/dev1&sig=98zZFaj4cpdRTiZvThlsmPTTD%2Bg921zRFPKycu7zv64%"
        "3D&se=1700000000");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_TRUE(signature_matches(*t, vector_key));
    // The same signature over the encoded form must not verify: sig covers sr exactly as sent.
    sas_token encoded = *t;
    encoded.resource = "myhub.azure-devices.net%2Fdevices%2Fdev1";
    EXPECT_FALSE(signature_matches(encoded, vector_key));
}

TEST(sas_token, lowercase_percent_encoded_resource_verifies_over_the_string_as_sent) {
    std::string sr = "myhub.azure-devices.net%2fdevices%2fdev1";
    auto token = generate_sas_token(sr, vector_key, vector_se);
    ASSERT_TRUE(token);
    auto t = parse_sas_token(*token);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->resource, sr);
    EXPECT_TRUE(signature_matches(*t, vector_key));
    auto decoded = decode_resource(t->resource);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, "myhub.azure-devices.net/devices/dev1");
}

TEST(sas_token, signature_with_lowercase_escapes_verifies) {
    sas_token t{"myhub.azure-devices.net", to_lower("ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020E%3D"), vector_se,
                ""};
    // Lowercasing the escapes also lowercased base64 letters, which must fail...
    EXPECT_FALSE(signature_matches(t, vector_key));
    // ...while lowercasing only the escapes must pass.
    t.signature = "ReSJFv%2fwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2bP020E%3d";
    EXPECT_TRUE(signature_matches(t, vector_key));
}

TEST(sas_token, wrong_key_does_not_verify) {
    sas_token t{std::string(vectors[0].sr), std::string(vectors[0].sig), vector_se, ""};
    EXPECT_FALSE(signature_matches(t, generate_key()));
}

TEST(sas_token, empty_or_invalid_key_never_verifies) {
    auto empty_key_sig = percent_encode(base64_encode(hmac_sha256("", "a\n5")));
    sas_token t{"a", empty_key_sig, 5, ""};
    EXPECT_FALSE(signature_matches(t, ""));
    EXPECT_FALSE(signature_matches(t, "not base64!"));
    EXPECT_FALSE(compute_signature("", "a", 5));
    EXPECT_FALSE(compute_signature("not base64!", "a", 5));
}

TEST(sas_token, tampered_expiry_or_resource_does_not_verify) {
    sas_token t{std::string(vectors[1].sr), std::string(vectors[1].sig), vector_se, ""};
    ASSERT_TRUE(signature_matches(t, vector_key));
    t.expiry = vector_se + 3600;
    EXPECT_FALSE(signature_matches(t, vector_key));
    t.expiry = vector_se;
    t.resource = "myhub.azure-devices.net%2Fdevices%2Fdev2";
    EXPECT_FALSE(signature_matches(t, vector_key));
}

TEST(sas_token, forged_signature_does_not_verify) {
    sas_token t{std::string(vectors[0].sr), "ReSJFv%2FwEM1pOYoX0GpbVc9mjEdrF6YPdV1U5%2BP020F%3D", vector_se, ""};
    EXPECT_FALSE(signature_matches(t, vector_key));
    t.signature = "%zz";
    EXPECT_FALSE(signature_matches(t, vector_key));
}

TEST(sas_token, verify_accepts_primary_or_secondary_key) {
    std::string other = generate_key();
    sas_token t{std::string(vectors[0].sr), std::string(vectors[0].sig), vector_se, ""};
    EXPECT_TRUE(verify_signature(t, vector_key, other, "x"));
    EXPECT_TRUE(verify_signature(t, other, vector_key, "x"));
    auto r = verify_signature(t, other, generate_key(), "policy 'service'");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized);
    EXPECT_NE(r.error().message.find("policy 'service'"), std::string::npos);
    EXPECT_EQ(r.error().message.find(vectors[0].sig), std::string::npos);
}

TEST(sas_token, expiry_at_or_before_now_is_unauthorized) {
    sas_token t{"a", "b", vector_se, ""};
    EXPECT_TRUE(check_expiry(t, at(vector_se - 1)));
    auto r = check_expiry(t, at(vector_se));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized);
    EXPECT_FALSE(check_expiry(t, at(vector_se + 1)));
    // A fraction of a second before se is still valid; se itself is not.
    EXPECT_TRUE(check_expiry(t, at(vector_se - 1) + std::chrono::milliseconds(999)));
}

TEST(sas_token, rejects_missing_prefix) {
    EXPECT_FALSE(parse_sas_token("sr=a&sig=b&se=1"));
    EXPECT_FALSE(parse_sas_token("SharedAccessSignaturesr=a&sig=b&se=1"));
    EXPECT_FALSE(parse_sas_token("sharedaccesssignature sr=a&sig=b&se=1"));
    EXPECT_FALSE(parse_sas_token(""));
    EXPECT_FALSE(parse_sas_token("SharedAccessSignature"));
}

TEST(sas_token, rejects_missing_fields) {
    for (std::string_view s : {"SharedAccessSignature sig=b&se=1", "SharedAccessSignature sr=a&se=1",
                               "SharedAccessSignature sr=a&sig=b", "SharedAccessSignature sr=&sig=b&se=1",
                               "SharedAccessSignature sr=a&sig=&se=1", "SharedAccessSignature sr=a&sig=b&se="}) {
        auto r = parse_sas_token(s);
        ASSERT_FALSE(r) << s;
        EXPECT_EQ(r.error().code, errc::invalid_argument);
    }
}

TEST(sas_token, rejects_duplicate_fields) {
    for (std::string_view s :
         {"SharedAccessSignature sr=a&sr=a&sig=b&se=1", "SharedAccessSignature sr=a&sig=b&sig=b&se=1",
          "SharedAccessSignature sr=a&sig=b&se=1&se=2", "SharedAccessSignature sr=a&sig=b&se=1&skn=x&skn=y"}) {
        auto r = parse_sas_token(s);
        ASSERT_FALSE(r) << s;
        EXPECT_NE(r.error().message.find("duplicate"), std::string::npos);
    }
}

TEST(sas_token, rejects_non_integer_expiry) {
    for (std::string_view s : {"SharedAccessSignature sr=a&sig=b&se=1.5", "SharedAccessSignature sr=a&sig=b&se=-1",
                               "SharedAccessSignature sr=a&sig=b&se=+1", "SharedAccessSignature sr=a&sig=b&se=1x",
                               "SharedAccessSignature sr=a&sig=b&se=99999999999999999999"}) {
        EXPECT_FALSE(parse_sas_token(s)) << s;
    }
}

TEST(sas_token, ignores_unknown_fields_and_surrounding_whitespace) {
    auto t = parse_sas_token("  SharedAccessSignature sr=a&sig=b&foo=bar&se=1 \r\n");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->resource, "a");
    EXPECT_EQ(t->expiry, 1);
}

TEST(sas_token, parse_error_never_echoes_the_signature) {
    auto r = parse_sas_token("SharedAccessSignature sr=a&sig=SECRETSIG&sig=SECRETSIG&se=1");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.find("SECRETSIG"), std::string::npos);
}

TEST(sas_token, decode_resource_handles_upper_and_lower_escapes_and_rejects_bad_ones) {
    EXPECT_EQ(*decode_resource("h%2Fdevices%2Fd"), "h/devices/d");
    EXPECT_EQ(*decode_resource("h%2fdevices%2fd"), "h/devices/d");
    EXPECT_EQ(*decode_resource("localhost%3A8884%2Fdevices%2Fdev1"), "localhost:8884/devices/dev1");
    EXPECT_EQ(*decode_resource("h/devices/d"), "h/devices/d");
    auto r = decode_resource("h%2");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_FALSE(decode_resource("h%zzx"));
}

TEST(resource_authorizes, equal_resource_is_authorized) {
    EXPECT_TRUE(resource_authorizes("/a/b", "/a/b"));
    EXPECT_TRUE(resource_authorizes("hub.local", "hub.local"));
}

TEST(resource_authorizes, segment_prefix_is_authorized) {
    EXPECT_TRUE(resource_authorizes("/a/b", "/a/b/c"));
    EXPECT_TRUE(resource_authorizes("hub.local", "hub.local/devices/d1"));
    EXPECT_TRUE(resource_authorizes("hub.local/devices", "hub.local/devices/d1/modules/m1"));
}

TEST(resource_authorizes, partial_segment_is_not_authorized) {
    EXPECT_FALSE(resource_authorizes("/a/b", "/a/bc"));
    EXPECT_FALSE(resource_authorizes("hub.local/devices/d1", "hub.local/devices/d10"));
    EXPECT_FALSE(resource_authorizes("hub.loc", "hub.local"));
}

TEST(resource_authorizes, longer_or_different_resource_is_not_authorized) {
    EXPECT_FALSE(resource_authorizes("/a/b/c", "/a/b"));
    EXPECT_FALSE(resource_authorizes("hub.local/devices/d2", "hub.local/devices/d1"));
    EXPECT_FALSE(resource_authorizes("other.local", "hub.local/devices/d1"));
}

TEST(resource_authorizes, comparison_is_case_insensitive) {
    EXPECT_TRUE(resource_authorizes("HUB.Local/Devices/D1", "hub.local/devices/d1"));
    EXPECT_TRUE(resource_authorizes("hub.local", "Hub.Local/devices/x"));
}

TEST(resource_authorizes, trailing_slash_on_sr_is_ignored_but_empty_sr_authorizes_nothing) {
    EXPECT_TRUE(resource_authorizes("hub.local/devices/", "hub.local/devices/d1"));
    EXPECT_TRUE(resource_authorizes("hub.local/", "hub.local"));
    EXPECT_FALSE(resource_authorizes("", "hub.local"));
    EXPECT_FALSE(resource_authorizes("/", "hub.local"));
}

TEST(identity_resource, builds_device_and_module_resources) {
    EXPECT_EQ(identity_resource("hub.local", "d1"), "hub.local/devices/d1");
    EXPECT_EQ(identity_resource("hub.local", "d1", "m1"), "hub.local/devices/d1/modules/m1");
    EXPECT_EQ(percent_encode(identity_resource("myhub.azure-devices.net", "dev1", "mod1")), vectors[2].sr);
}
