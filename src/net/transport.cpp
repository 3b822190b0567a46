#include "net/transport.hpp"

#include "net/peer_certificates.hpp"
#include "net/websocket_options.hpp"

#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <openssl/ssl.h>

namespace twinhub::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

std::string endpoint_string(const beast::tcp_stream& s) {
    boost::system::error_code ec;
    auto ep = s.socket().remote_endpoint(ec);
    if (ec) return {};
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void release_idle_buffers(tls_stream& s) {
    SSL_set_mode(s.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

class websocket_transport final : public transport {
public:
    websocket_transport(tls_stream&& s, upgrade_request&& req, const char* subprotocol)
        : ws_(std::move(s)), req_(std::move(req)) {
        beast::get_lowest_layer(ws_).expires_never();
        release_idle_buffers(ws_.next_layer());
        configure_server_websocket(ws_, subprotocol);
    }
    asio::any_io_executor executor() override { return ws_.get_executor(); }
    void async_handshake(handshake_handler h) override {
        ws_.async_accept(req_, [this, h = std::move(h)](boost::system::error_code ec) {
            req_ = {};
            h(ec);
        });
    }
    void async_read_some(asio::mutable_buffer b, io_handler h) override { ws_.async_read_some(b, std::move(h)); }
    void async_write(asio::const_buffer b, io_handler h) override { ws_.async_write(b, std::move(h)); }
    void close() override {
        boost::system::error_code ec;
        beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        beast::get_lowest_layer(ws_).socket().close(ec);
    }
    const char* name() const noexcept override { return "wss"; }
    std::string remote() const override { return endpoint_string(beast::get_lowest_layer(ws_)); }
    std::vector<std::string> peer_certificates() const override {
        return peer_certificate_chain(const_cast<tls_stream&>(ws_.next_layer()).native_handle());
    }

private:
    websocket::stream<tls_stream> ws_;
    upgrade_request req_;
};

}  // namespace

std::unique_ptr<transport> make_websocket_transport(tls_stream&& stream, upgrade_request&& req,
                                                    const char* subprotocol) {
    return std::make_unique<websocket_transport>(std::move(stream), std::move(req), subprotocol);
}

}  // namespace twinhub::net
