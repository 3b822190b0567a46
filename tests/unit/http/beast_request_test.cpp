#include "http/beast_request.hpp"

#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace twinhub::http {
namespace {

namespace bhttp = boost::beast::http;

net::upgrade_request upgrade(std::string target, std::string protocols) {
    net::upgrade_request req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::upgrade, "websocket");
    req.set(bhttp::field::connection, "Upgrade");
    if (!protocols.empty()) req.set(bhttp::field::sec_websocket_protocol, protocols);
    return req;
}

net::websocket_handlers both(int& called) {
    return {{"mqtt", [&called](net::tls_stream&&, net::upgrade_request&&) { called = 1; }},
            {"AMQPWSB10", [&called](net::tls_stream&&, net::upgrade_request&&) { called = 2; }}};
}

TEST(beast_request, copies_the_fields_the_rest_api_reads_and_lower_cases_iothub_headers) {
    net::upgrade_request req{bhttp::verb::post, "/devices/d1/messages/events?api-version=2021-04-12", 11};
    req.set(bhttp::field::authorization, "SharedAccessSignature sr=x");
    req.set(bhttp::field::if_match, "\"MQ==\"");
    req.set(bhttp::field::content_type, "text/plain");
    req.set("x-ms-max-item-count", "5");
    req.insert("IoTHub-App-Color", "blue");
    req.insert("iothub-messageid", "m1");
    req.insert("iothubx", "not a property");
    req.body() = "hello";
    auto rr = to_rest_request(std::move(req));
    EXPECT_EQ(rr.method, "POST");
    EXPECT_EQ(rr.target, "/devices/d1/messages/events?api-version=2021-04-12");
    EXPECT_EQ(rr.authorization, "SharedAccessSignature sr=x");
    EXPECT_EQ(rr.if_match, "\"MQ==\"");
    EXPECT_EQ(rr.content_type, "text/plain");
    EXPECT_EQ(rr.max_item_count, "5");
    EXPECT_FALSE(rr.continuation);
    ASSERT_EQ(rr.iothub_headers.size(), 2u);
    EXPECT_EQ(rr.iothub_headers[0].first, "iothub-app-color");
    EXPECT_EQ(rr.iothub_headers[1].first, "iothub-messageid");
    EXPECT_EQ(rr.body, "hello");
}

TEST(beast_request, lists_token_trims_blanks_and_ignores_case_but_not_substrings) {
    EXPECT_TRUE(lists_token("AMQPWSB10, mqtt", "mqtt"));
    EXPECT_TRUE(lists_token(" MQTT\t", "mqtt"));
    EXPECT_FALSE(lists_token("mqttv3.1", "mqtt"));
    EXPECT_FALSE(lists_token("", "mqtt"));
    EXPECT_FALSE(lists_token(",,", "mqtt"));
}

TEST(beast_request, the_servers_order_wins_among_listed_subprotocols) {
    int called = 0;
    auto served = both(called);
    std::string why;
    EXPECT_EQ(select_websocket_handler(upgrade("/$iothub/websocket", "AMQPWSB10, mqtt"), served, why), &served[0].second);
    EXPECT_EQ(select_websocket_handler(upgrade("/$iothub/websocket?x=1", "AMQPWSB10"), served, why), &served[1].second);
}

TEST(beast_request, refusals_say_why) {
    int called = 0;
    auto served = both(called);
    std::string why;
    EXPECT_EQ(select_websocket_handler(upgrade("/other", "mqtt"), served, why), nullptr);
    EXPECT_EQ(why, "WebSocket upgrades are served only on /$iothub/websocket.");
    EXPECT_EQ(select_websocket_handler(upgrade("/$iothub/websocket", "wamp"), served, why), nullptr);
    EXPECT_EQ(why, "The WebSocket subprotocol 'wamp' is not served (served: 'mqtt', 'AMQPWSB10').");
    net::websocket_handlers none{{"mqtt", nullptr}};
    EXPECT_EQ(select_websocket_handler(upgrade("/$iothub/websocket", "mqtt"), none, why), nullptr);
    EXPECT_EQ(why, "The WebSocket subprotocol 'mqtt' is not served (served: none).");
}

}  // namespace
}  // namespace twinhub::http
