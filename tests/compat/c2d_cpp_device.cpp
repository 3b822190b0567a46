// A C++ SDK device or module that receives cloud-to-device messages, for the Node interop test
// (tests/compat/test/c2d_cpp_sdk.test.js):
//   c2d_cpp_device "<device or module connection string>" COUNT
// Prints "ready" once subscribed, then one JSON line per message ({"body", "messageId",
// "correlationId", "contentType", "contentEncoding", "ack", "to", "expiry", "input", "properties"}),
// completing each (PUBACK) when the line is out, and exits after COUNT messages. Uses
// TWINHUB_CA_FILE.
#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"

#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

namespace {

std::string to_json(const twinhub::received_c2d_message& m) {
    boost::json::object props;
    for (const auto& [k, v] : m.properties) props[k] = v;
    return boost::json::serialize(boost::json::object{{"body", m.body},
                                                      {"messageId", m.message_id},
                                                      {"correlationId", m.correlation_id},
                                                      {"contentType", m.content_type},
                                                      {"contentEncoding", m.content_encoding},
                                                      {"ack", m.ack},
                                                      {"to", m.to},
                                                      {"expiry", m.expiry_time_utc},
                                                      {"input", m.input_name},
                                                      {"properties", std::move(props)}});
}

template <class Client, class Subscribe>
int serve(Client& client, int count, Subscribe subscribe) {
    std::mutex mu;
    std::condition_variable cv;
    int seen = 0;
    auto handler = [&](const twinhub::received_c2d_message& m) {
        std::cout << to_json(m) << std::endl;
        std::lock_guard lock(mu);
        ++seen;
        cv.notify_all();
    };
    if (auto r = subscribe(client, handler); !r) {
        std::cerr << "cannot subscribe: " << r.error().message << "\n";
        return 3;
    }
    if (auto r = client.connect(); !r) {
        std::cerr << "cannot connect: " << r.error().message << "\n";
        return 3;
    }
    std::cout << "ready" << std::endl;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return seen >= count; });
    lock.unlock();
    // The last PUBACK goes out after the handler returned: give it a moment before DISCONNECT.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    client.disconnect();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: c2d_cpp_device \"<connection string>\" COUNT\n";
        return 2;
    }
    const std::string cs = argv[1];
    const int count = std::atoi(argv[2]);
    twinhub::client_options o;
    if (const char* ca = std::getenv("TWINHUB_CA_FILE")) o.tls.ca_file = ca;
    if (cs.find("ModuleId=") != std::string::npos) {
        auto c = twinhub::module_client::create_from_connection_string(cs, o);
        if (!c) return std::cerr << c.error().message << "\n", 2;
        return serve(*c, count, [](auto& cl, auto h) { return cl.on_input_message(h); });
    }
    auto c = twinhub::device_client::create_from_connection_string(cs, o);
    if (!c) return std::cerr << c.error().message << "\n", 2;
    return serve(*c, count, [](auto& cl, auto h) { return cl.on_message(h); });
}
