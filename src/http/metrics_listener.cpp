#include "http/metrics_listener.hpp"

#include "methods/method_router.hpp"
#include "net/tcp_listener.hpp"
#include "service/metrics.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace twinhub::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct metrics_listener::state {
    asio::io_context& ioc;
    service::hub_service& hub;
    metrics_listener_options opts;
};

namespace {

class plain_session : public std::enable_shared_from_this<plain_session> {
public:
    plain_session(std::shared_ptr<metrics_listener::state> st, tcp::socket&& s) : st_(std::move(st)), stream_(std::move(s)) {}

    void read() {
        req_ = {};
        parser_.emplace();
        parser_->header_limit(16 * 1024);
        parser_->body_limit(16 * 1024);
        stream_.expires_after(std::chrono::seconds(10));
        bhttp::async_read(stream_, buf_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->close();
            self->req_ = self->parser_->release();
            self->answer();
        });
    }

private:
    void answer() {
        res_ = {};
        res_.version(req_.version());
        res_.keep_alive(req_.keep_alive());
        std::string_view target = req_.target();
        target = target.substr(0, target.find('?'));
        if (target == "/metrics" && req_.method() == bhttp::verb::get) {
            service::metrics_sources src;
            src.hub = &st_->hub;
            src.store_file = st_->opts.store_file;
            if (st_->opts.methods) src.pending_methods = st_->opts.methods->pending();
            res_.result(bhttp::status::ok);
            res_.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res_.body() = service::render_prometheus(src);
        } else {
            res_.result(bhttp::status::not_found);
            res_.set(bhttp::field::content_type, "text/plain; charset=utf-8");
            res_.body() = "Only GET /metrics is served here.\n";
        }
        res_.prepare_payload();
        bhttp::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec || !self->res_.keep_alive()) return self->close();
            self->read();
        });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.socket().close(ignored);
    }

    std::shared_ptr<metrics_listener::state> st_;
    beast::tcp_stream stream_;
    beast::flat_buffer buf_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    bhttp::request<bhttp::string_body> req_;
    bhttp::response<bhttp::string_body> res_;
};

}  // namespace

metrics_listener::metrics_listener(asio::io_context& ioc, service::hub_service& hub, metrics_listener_options opts)
    : state_(std::make_shared<state>(state{ioc, hub, std::move(opts)})) {}

metrics_listener::~metrics_listener() { stop(); }

result<void> metrics_listener::start() {
    net::listener_options lo;
    lo.name = "metrics";
    lo.protocol = "metrics (plain HTTP)";
    lo.port_option = "--metrics-port";
    lo.bind_address = state_->opts.bind_address;
    lo.port = state_->opts.port;
    auto lst = std::make_unique<net::tcp_listener>(
        state_->ioc, std::move(lo), [&ioc = state_->ioc] { return asio::any_io_executor(asio::make_strand(ioc)); },
        [st = state_](tcp::socket&& s) { std::make_shared<plain_session>(st, std::move(s))->read(); });
    if (auto r = lst->start(); !r) return r;
    listener_ = std::move(lst);
    return {};
}

void metrics_listener::stop() {
    if (listener_) listener_->close();
}

unsigned short metrics_listener::port() const { return listener_ ? listener_->port() : state_->opts.port; }

}  // namespace twinhub::http
