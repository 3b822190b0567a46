// Fuzzes the WebSocket path of the HTTPS port (spec 5.11) after TLS: the upgrade request as the
// HTTPS session parses it (Beast request parser, 64 KiB header limit), the choice of the head by
// Sec-WebSocket-Protocol and path (http::select_websocket_handler, what https_server calls), then
// the server-side WebSocket that MQTT and AMQP run over (configured by
// net::configure_server_websocket, as the real transport is) over an in-memory Beast test stream:
// the accept answer, then a stream of client frames (masked or not, fragmented, control frames,
// reserved bits and opcodes, claimed lengths far beyond what follows, close frames), delivered in
// reads of a fuzzed size and read the way the MQTT session reads (async_read_some, 4 KiB).
//
// Properties: no crash or sanitizer report; a head is chosen only for /$iothub/websocket and a
// subprotocol the request lists, otherwise the refusal says why; an accepted upgrade answers 101
// with the chosen subprotocol; the bytes handed to the head never exceed the payload bytes sent
// (no data is invented, none is buffered beyond the input), and reading ends once the input does.
#include "http/beast_request.hpp"
#include "http/request_target.hpp"
#include "net/websocket_options.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "support/input_reader.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using namespace twinhub;

namespace {

[[noreturn]] void violated(const std::string& what) {
    std::fprintf(stderr, "websocket_fuzz property violated: %s\n", what.c_str());
    std::abort();
}

std::string upgrade_request_text(fuzz::input_reader& in) {
    if (in.range<unsigned>(0, 7) == 0) return in.str(512);  // raw bytes
    std::string target;
    switch (in.range<unsigned>(0, 3)) {
    case 0: target = "/$iothub/websocket"; break;
    case 1: target = "/$iothub/websocket?iothub-no-client-cert=true"; break;
    case 2: target = "/%24iothub/websocket"; break;
    default: target = in.str(40); break;
    }
    static const char* protocols[] = {"mqtt", "AMQPWSB10", "mqtt, AMQPWSB10", "AMQPWSB10,mqtt", " MQTT ", "mqttv3.1",
                                      "", "amqp"};
    std::string protocol;
    const unsigned pc = in.range<unsigned>(0, 8);
    protocol = pc < 8 ? protocols[pc] : in.str(40);
    std::string key = in.flag() ? "dGhlIHNhbXBsZSBub25jZQ==" : in.str(30);
    std::string version = in.flag() ? "13" : in.str(4);
    std::string s = "GET " + target + " HTTP/1.1\r\nHost: hub.local\r\n";
    if (in.range<unsigned>(0, 7) != 0) s += "Upgrade: websocket\r\n";
    s += in.flag() ? "Connection: Upgrade\r\n" : "Connection: keep-alive, Upgrade\r\n";
    s += "Sec-WebSocket-Key: " + key + "\r\n";
    s += "Sec-WebSocket-Version: " + version + "\r\n";
    if (pc != 6 || in.flag()) s += "Sec-WebSocket-Protocol: " + protocol + "\r\n";
    for (unsigned n = in.range<unsigned>(0, 2); n > 0; --n)
        s += in.str(30) + ": " + in.str(30) + "\r\n";
    if (in.flag()) s += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    return s + "\r\n";
}

// One client frame (RFC 6455 5.2). Returns how many payload bytes it carries.
std::size_t append_frame(fuzz::input_reader& in, std::string& out) {
    static const unsigned char opcodes[] = {0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB, 0xF};
    const bool fin = in.range<unsigned>(0, 3) != 0;
    const unsigned rsv = in.range<unsigned>(0, 15) == 0 ? in.range<unsigned>(1, 7) : 0;
    const unsigned char op = opcodes[in.range<unsigned>(0, 8) % 9];
    const bool masked = in.range<unsigned>(0, 9) != 0;  // clients must mask
    std::string payload;
    if (op == 0x8 && in.flag()) {  // close: code + reason
        const std::uint16_t code = in.flag() ? 1000 : in.integral<std::uint16_t>();
        payload.push_back(static_cast<char>(code >> 8));
        payload.push_back(static_cast<char>(code & 0xff));
    }
    payload += in.bytes(op >= 0x8 ? in.range<unsigned>(0, 140) : in.range<unsigned>(0, 2048));
    std::uint64_t claimed = payload.size();
    const unsigned lenform = in.range<unsigned>(0, 9);
    if (lenform == 8) claimed = in.integral<std::uint64_t>();  // a lie, usually far beyond the input
    else if (lenform == 9) claimed = payload.size() + in.range<std::uint64_t>(1, 1 << 20);
    out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | op));
    const unsigned char mbit = masked ? 0x80 : 0;
    const unsigned width = claimed < 126 && in.range<unsigned>(0, 7) != 0 ? 0
                           : claimed <= 0xffff && in.flag()                         ? 2
                                                                                            : 8;
    if (width == 0) {
        out.push_back(static_cast<char>(mbit | claimed));
    } else if (width == 2) {
        out.push_back(static_cast<char>(mbit | 126));
        for (int i = 1; i >= 0; --i) out.push_back(static_cast<char>((claimed >> (8 * i)) & 0xff));
    } else {
        out.push_back(static_cast<char>(mbit | 127));
        for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((claimed >> (8 * i)) & 0xff));
    }
    if (masked) {
        const auto key = in.integral<std::uint32_t>();
        unsigned char k[4] = {static_cast<unsigned char>(key >> 24), static_cast<unsigned char>(key >> 16),
                              static_cast<unsigned char>(key >> 8), static_cast<unsigned char>(key)};
        out.append(reinterpret_cast<const char*>(k), 4);
        for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ k[i % 4]);
    }
    out += payload;
    return payload.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input_reader in(data, size);

    // ---- the upgrade request, parsed as the HTTPS session parses it ----
    const std::string text = upgrade_request_text(in);
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(64 * 1024);
    parser.eager(true);
    beast::error_code ec;
    parser.put(asio::buffer(text), ec);
    if (ec || !parser.is_done()) return 0;
    net::upgrade_request req = parser.release();
    if (!websocket::is_upgrade(req)) return 0;

    const char* chosen = nullptr;
    net::websocket_handlers served{{"mqtt", [&](net::tls_stream&&, net::upgrade_request&&) {}},
                                    {"AMQPWSB10", [&](net::tls_stream&&, net::upgrade_request&&) {}}};
    std::string why;
    const net::websocket_handler* h = http::select_websocket_handler(req, served, why);
    const auto asked = req[bhttp::field::sec_websocket_protocol];
    if (!h) {
        if (why.empty()) violated("a refused upgrade without a reason");
        return 0;
    }
    if (http::target_path(req.target()) != "/$iothub/websocket") violated("a head chosen for another path");
    chosen = h == &served[0].second ? "mqtt" : "AMQPWSB10";
    if (!http::lists_token(asked, chosen)) violated("a head chosen for a subprotocol the request does not list");
    if (h == &served[1].second && http::lists_token(asked, "mqtt")) violated("mqtt listed but not preferred");

    // ---- the WebSocket over an in-memory stream ----
    static asio::io_context ioc;  // one for all inputs: creating its services per input is what costs
    ioc.restart();
    websocket::stream<beast::test::stream> ws(ioc);
    beast::test::stream client(ioc);
    ws.next_layer().connect(client);
    net::configure_server_websocket(ws, chosen);
    {
        // The product's 10 s handshake limit also bounds the close handshake and the teardown after
        // a refused upgrade, which wait for the peer; an in-memory peer never answers, so the wait
        // is shortened here to keep each input fast. Everything else is the product's setting.
        websocket::stream_base::timeout t;
        ws.get_option(t);
        t.handshake_timeout = std::chrono::milliseconds(5);
        ws.set_option(t);
    }

    const bool tiny_reads = in.range<unsigned>(0, 7) == 0;
    std::string frames;
    for (int n = 0; n < 16 && in.remaining_bytes() > 0; ++n) append_frame(in, frames);
    frames += in.rest();  // trailing garbage, parsed as frames too
    // Reads of a few bytes now and then (frame headers split everywhere), usually of whole segments.
    ws.next_layer().read_size(tiny_reads ? 1 + frames.size() % 16 : 512 + frames.size() % 3584);
    ws.next_layer().append(frames);
    ws.next_layer().close_remote();

    bool accepted = false;
    ws.async_accept(req, [&](beast::error_code e) { accepted = !e; });
    ioc.run();
    ioc.restart();
    {
        // The answer, as the client sees it.
        bhttp::response_parser<bhttp::empty_body> rp;
        rp.skip(true);
        beast::error_code pe;
        const auto answer = client.str();
        rp.put(asio::buffer(answer.data(), answer.size()), pe);
        if (accepted) {
            if (pe || !rp.is_header_done()) violated("accepted, but the answer does not parse");
            const auto& res = rp.get();
            if (res.result() != bhttp::status::switching_protocols) violated("accepted without 101");
            if (res[bhttp::field::sec_websocket_protocol] != chosen) violated("101 without the chosen subprotocol");
        }
        client.clear();
    }
    if (!accepted) {
        if (std::getenv("TWINHUB_FUZZ_TRACE")) std::fprintf(stderr, "%s: upgrade refused by Beast\n", chosen);
        return 0;
    }

    std::size_t delivered = 0;
    std::size_t reads = 0;
    char buf[4096];
    bool wrote = false;
    std::function<void()> read_one = [&] {
        ws.async_read_some(asio::buffer(buf), [&](beast::error_code e, std::size_t k) {
            delivered += k;
            ++reads;
            if (e) return;
            if (!wrote) {  // the head answers while frames are still arriving (a CONNACK)
                wrote = true;
                static const char connack[] = {0x20, 0x02, 0x00, 0x00};
                ws.async_write(asio::buffer(connack, sizeof connack), [](beast::error_code, std::size_t) {});
            }
            read_one();
        });
    };
    read_one();
    ioc.run();
    if (std::getenv("TWINHUB_FUZZ_TRACE"))
        std::fprintf(stderr, "%s: %zu wire bytes -> %zu delivered in %zu reads\n", chosen, frames.size(), delivered, reads);
    // No permessage-deflate is negotiated (the product does not enable it): what reaches the head
    // is at most the frames' payload bytes, themselves fewer than the wire bytes.
    if (delivered > frames.size()) violated("more bytes delivered than the input carries");
    if (reads == 0) violated("the read never completed");
    return 0;
}
