#include "amqp/sasl_layer.hpp"

#include <gtest/gtest.h>

#include <string>

using twinhub::amqp::sasl_layer;

namespace {
const std::string sasl_hdr("AMQP\x03\x01\x00\x00", 8);
const std::string amqp_hdr("AMQP\x00\x01\x00\x00", 8);

std::string init_frame(const std::string& mech) {
    std::string body = std::string("\x00\x53\x41\xc0", 4);
    body += static_cast<char>(2 + 1 + mech.size());
    body += '\x01';
    body += '\xa3';
    body += static_cast<char>(mech.size());
    body += mech;
    std::string f(4, '\0');
    f[3] = static_cast<char>(8 + body.size());
    f += std::string("\x02\x01\x00\x00", 4);
    return f + body;
}
}  // namespace

TEST(sasl_layer, no_sasl_layer_passes_every_byte_through) {
    sasl_layer s;
    std::string p, c;
    const std::string in = amqp_hdr + "rest of the stream";
    s.feed(in.data(), in.size(), p, c);
    EXPECT_EQ(p, in);
    EXPECT_TRUE(c.empty());
    EXPECT_FALSE(s.failed());
}

TEST(sasl_layer, mssbcbs_and_anonymous_are_offered_and_accepted_byte_by_byte) {
    for (const std::string mech : {"MSSBCBS", "ANONYMOUS"}) {
        sasl_layer s;
        std::string p, c;
        const std::string in = sasl_hdr + init_frame(mech) + amqp_hdr + "open...";
        for (char ch : in) s.feed(&ch, 1, p, c);
        EXPECT_FALSE(s.failed()) << mech;
        EXPECT_EQ(s.mechanism(), mech);
        EXPECT_EQ(p, amqp_hdr + "open...") << "Proton sees the stream after SASL only";
        ASSERT_GT(c.size(), 8u);
        EXPECT_EQ(c.substr(0, 8), sasl_hdr);
        EXPECT_NE(c.find("MSSBCBS"), std::string::npos);
        EXPECT_NE(c.find("ANONYMOUS"), std::string::npos);
        EXPECT_NE(c.find("PLAIN"), std::string::npos);
        // ends with sasl-outcome code ok
        EXPECT_EQ(c.substr(c.size() - 8), std::string("\x00\x53\x44\xc0\x03\x01\x50\x00", 8));
    }
}

TEST(sasl_layer, unknown_mechanism_malformed_frames_and_a_missing_amqp_header_fail) {
    auto run = [](const std::string& in) {
        sasl_layer s;
        std::string p, c;
        s.feed(in.data(), in.size(), p, c);
        return std::make_pair(s.failed(), p);
    };
    EXPECT_TRUE(run(sasl_hdr + init_frame("PLAIN")).first);
    EXPECT_TRUE(run(sasl_hdr + std::string("\xff\xff\xff\xff\x02\x01\x00\x00", 8)).first);  // oversized
    EXPECT_TRUE(run(sasl_hdr + std::string("\x00\x00\x00\x04\x02\x01\x00\x00", 8)).first);  // size < 8
    std::string not_init = init_frame("MSSBCBS");
    not_init[10] = '\x42';  // sasl-response, not sasl-init
    EXPECT_TRUE(run(sasl_hdr + not_init).first);
    auto r = run(sasl_hdr + init_frame("MSSBCBS") + std::string("AMQP\x03\x01\x00\x00", 8));
    EXPECT_TRUE(r.first);
    EXPECT_TRUE(r.second.empty()) << "nothing reaches Proton after a failed exchange";
}

TEST(sasl_layer, plain_goes_to_the_validator_and_its_answer_decides_the_outcome) {
    auto plain_init = [](const std::string& user, const std::string& pass) {
        std::string resp = std::string(1, '\0') + user + std::string(1, '\0') + pass;
        std::string body = std::string("\x00\x53\x41\xc0", 4);
        std::string fields = std::string("\xa3\x05PLAIN", 7) + '\xa0' + static_cast<char>(resp.size()) + resp;
        body += static_cast<char>(1 + fields.size());
        body += '\x02';
        body += fields;
        std::string f(4, '\0');
        f[3] = static_cast<char>(8 + body.size());
        return f + std::string("\x02\x01\x00\x00", 4) + body;
    };
    for (bool accept : {true, false}) {
        sasl_layer s;
        std::string seen_user, seen_pass;
        s.set_plain_validator([&](const std::string& u, std::string& p) {
            seen_user = u;
            seen_pass = p;
            return accept;
        });
        std::string p, c;
        const std::string in = sasl_hdr + plain_init("service@sas.root.hub", "SharedAccessSignature sr=x") + amqp_hdr;
        s.feed(in.data(), in.size(), p, c);
        EXPECT_EQ(seen_user, "service@sas.root.hub");
        EXPECT_EQ(seen_pass, "SharedAccessSignature sr=x");
        EXPECT_EQ(s.failed(), !accept);
        EXPECT_EQ(c.back(), accept ? '\x00' : '\x01') << "sasl-outcome code";
        EXPECT_EQ(p, accept ? amqp_hdr : std::string());
    }
}
