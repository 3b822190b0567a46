// A C++ SDK device or module that answers direct methods, for the Node interop test
// (tests/compat/test/methods_cpp_sdk.test.js):
//   methods_cpp_device "<device or module connection string>" [mqtt|mqtt_ws]
// Prints "ready" once subscribed. Method "echo" answers {"echo": payload, "from": "cpp"} with the
// status in payload.status (default 200); "empty" answers 204 with no payload; "exit" answers 200
// and ends the program. Other methods get the SDK's 501. Uses TWINHUB_CA_FILE.
#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"

#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

template <class Client>
int serve(Client& client) {
    if (auto r = client.connect(); !r) {
        std::cerr << "cannot connect: " << r.error().message << "\n";
        return 3;
    }
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    client.on_method("echo", [](const twinhub::method_request& req) {
        twinhub::method_response res;
        if (req.payload.is_object()) {
            if (auto* s = req.payload.get_object().if_contains("status"); s && s->is_int64())
                res.status = static_cast<int>(s->get_int64());
        }
        res.payload = boost::json::object{{"echo", req.payload}, {"from", "cpp"}};
        std::cout << "called echo " << boost::json::serialize(req.payload).substr(0, 200) << std::endl;
        return res;
    });
    client.on_method("empty", [](const twinhub::method_request&) { return twinhub::method_response{204, nullptr}; });
    client.on_method("exit", [&](const twinhub::method_request&) {
        {
            std::lock_guard lock(mu);
            done = true;
        }
        cv.notify_all();
        return twinhub::method_response{200, "bye"};
    });
    std::cout << "ready" << std::endl;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    lock.unlock();
    // Let the answer to "exit" go out before disconnecting.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    client.disconnect();
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: methods_cpp_device \"<connection string>\" [mqtt|mqtt_ws]\n";
        return 2;
    }
    const std::string cs = argv[1];
    twinhub::client_options o;
    if (const char* ca = std::getenv("TWINHUB_CA_FILE")) o.tls.ca_file = ca;
    if (argc > 2 && std::string(argv[2]) == "mqtt_ws") o.transport = twinhub::transport_kind::mqtt_ws;
    if (cs.find("ModuleId=") != std::string::npos) {
        auto c = twinhub::module_client::create_from_connection_string(cs, o);
        if (!c) return std::cerr << c.error().message << "\n", 2;
        return serve(*c);
    }
    auto c = twinhub::device_client::create_from_connection_string(cs, o);
    if (!c) return std::cerr << c.error().message << "\n", 2;
    return serve(*c);
}
