// Isolation (spec 5.6, 5.9): an identity reads, writes, publishes and subscribes only as itself.
// Raw MQTT client on the codec over TLS against the in-process hub.
#include "hub_harness.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::mqtt;
using namespace twinhub::mqtt::test;
using namespace std::chrono_literals;

namespace {

struct isolation : ::testing::Test {
    hub_harness h;
    std::string dev_key = h.add_device("dev1");
    std::string a_key = h.add_module("dev1", "modA");
    std::string b_key = h.add_module("dev1", "modB");

    std::unique_ptr<test_client> module_a() {
        auto c = std::make_unique<test_client>(h.server->port());
        c->handshake();
        EXPECT_EQ(c->connect_with(connect_packet("dev1", "modA", a_key)).return_code, connect_return_code::accepted);
        return c;
    }
    static void subscribe_to(test_client& c, const std::string& filter) {
        subscribe s;
        s.packet_id = 1;
        s.subscriptions.push_back({filter, qos::at_most_once});
        c.send(s);
    }
    static publish pub(std::string topic, std::string payload = " ") {
        publish p;
        p.topic = std::move(topic);
        p.payload = std::move(payload);
        return p;
    }
};

}  // namespace

TEST_F(isolation, module_cannot_connect_under_another_client_id) {
    for (auto [client_id, user] : std::vector<std::pair<std::string, std::string>>{
             {"dev1/modB", "dev1/modB"},  // B's identity with A's token
             {"dev1", "dev1"},            // its device's identity with A's token
             {"dev1/modB", "dev1/modA"},  // client id and user name disagree
         }) {
        test_client c(h.server->port());
        c.handshake();
        auto p = connect_packet("dev1", "modA", a_key);
        p.client_id = client_id;
        p.username = hub_host + "/" + user + "/?api-version=2021-04-12";
        EXPECT_EQ(c.connect_with(p).return_code, connect_return_code::not_authorized) << client_id;
        EXPECT_TRUE(c.closed_within(2s));
    }
}

TEST_F(isolation, module_token_is_not_accepted_for_its_device) {
    test_client c(h.server->port());
    c.handshake();
    auto p = connect_packet("dev1", "", dev_key);
    p.password = sas_for("dev1", "modA", a_key);
    EXPECT_EQ(c.connect_with(p).return_code, connect_return_code::not_authorized);
}

TEST_F(isolation, module_cannot_subscribe_to_another_identitys_topics) {
    for (auto filter : {"devices/dev1/modules/modB/inputs/#", "devices/dev1/modules/modB/#",
                        "devices/dev1/messages/devicebound/#", "devices/dev2/messages/devicebound/#",
                        "$iothub/twin/#", "devices/#"}) {
        auto c = module_a();
        subscribe_to(*c, filter);
        EXPECT_TRUE(c->closed_within(2s)) << filter;
    }
}

TEST_F(isolation, module_cannot_publish_on_another_identitys_topics) {
    for (auto topic : {"devices/dev1/modules/modB/messages/events/", "devices/dev1/messages/events/",
                       "devices/dev2/messages/events/", "$iothub/twin/PATCH/properties/desired/?$rid=1"}) {
        auto c = module_a();
        c->send(pub(topic, "{}"));
        EXPECT_TRUE(c->closed_within(2s)) << topic;
    }
}

TEST_F(isolation, twin_topics_only_ever_reach_the_connected_identitys_twin) {
    h.patch_desired({"dev1", "modB"}, R"({"secretOfB":1})");
    h.patch_desired({"dev1", ""}, R"({"secretOfDevice":1})");
    auto c = module_a();
    subscribe_to(*c, "$iothub/twin/res/#");
    c->expect<suback>();
    subscribe_to(*c, "$iothub/twin/PATCH/properties/desired/#");
    c->expect<suback>();
    c->send(pub("$iothub/twin/PATCH/properties/reported/?$rid=w", R"({"fromA":true})"));
    EXPECT_EQ(c->expect<publish>().topic, "$iothub/twin/res/204/?$rid=w&$version=2");
    c->send(pub("$iothub/twin/GET/?$rid=r"));
    auto g = c->expect<publish>();
    auto v = boost::json::parse(g.payload);
    EXPECT_FALSE(v.at("desired").as_object().contains("secretOfB"));
    EXPECT_FALSE(v.at("desired").as_object().contains("secretOfDevice"));
    EXPECT_EQ(v.at("reported").at("fromA"), true);
    // A's write did not touch B's twin or the device's.
    auto b = h.hub->get_twin({"dev1", "modB"});
    auto d = h.hub->get_twin({"dev1", ""});
    EXPECT_FALSE(b->at("properties").at("reported").as_object().contains("fromA"));
    EXPECT_FALSE(d->at("properties").at("reported").as_object().contains("fromA"));
    // B's and the device's desired changes are not pushed to A.
    c->set_timeout(300ms);
    h.patch_desired({"dev1", "modB"}, R"({"secretOfB":2})");
    h.patch_desired({"dev1", ""}, R"({"secretOfDevice":2})");
    EXPECT_FALSE(c->next());
    EXPECT_FALSE(c->closed());
}
