// Listener and per-connection sessions of the HTTPS head, in the shape of Beast's advanced server:
// one strand per connection, make_shared sessions that bind shared_from_this(), a deadline on every
// read, one response in flight per connection (HTTP/1.1 without pipelining of responses).
#include "http/https_server.hpp"

#include "common/log.hpp"
#include "http/beast_request.hpp"
#include "http/error_body.hpp"
#include "http/ops_api.hpp"
#include "http/request_target.hpp"
#include "http/rest_api.hpp"
#include "net/peer_certificates.hpp"
#include "net/tcp_listener.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <cctype>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace twinhub::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view json_content_type = "application/json; charset=utf-8";

class session;

}  // namespace

struct https_server::state : std::enable_shared_from_this<https_server::state> {
    state(asio::io_context& io, asio::ssl::context& t, service::hub_service& hub, https_options o, net::websocket_handlers ws)
        : ioc(io), tls(t), api(hub, o.host_names, o.methods, o.queries, o.c2d),
          ops(hub, ops_options{o.host_names, o.metrics_token, o.store_file, o.data_dir, o.console_dir, o.methods, o.c2d}),
          opts(std::move(o)), on_websocket(std::move(ws)) {
        api.set_telemetry(opts.telemetry);
        api.set_jobs(opts.jobs, opts.configurations);
        api.set_file_upload(opts.files);
        api.set_import_export(opts.import_export);
    }

    asio::io_context& ioc;
    asio::ssl::context& tls;
    rest_api api;
    ops_api ops;
    https_options opts;
    net::websocket_handlers on_websocket;

    std::mutex mu;
    bool stopped = false;
    std::unordered_map<session*, std::weak_ptr<session>> sessions;

    // The listener's connection handler (on its strand).
    void on_socket(tcp::socket&& socket);
};

namespace {

class session : public std::enable_shared_from_this<session> {
public:
    session(std::shared_ptr<https_server::state> st, tcp::socket&& socket)
        : st_(std::move(st)), stream_(std::move(socket), st_->tls) {}

    ~session() {
        std::lock_guard lock(st_->mu);
        st_->sessions.erase(this);
    }

    void run() {
        asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::on_run, shared_from_this()));
    }

    // Called by stop(): closes the socket on the session's strand, which cancels whatever is pending.
    void close() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            if (self->handed_off_) return;
            beast::error_code ignored;
            beast::get_lowest_layer(self->stream_).socket().close(ignored);
        });
    }

private:
    void on_run() {
        beast::get_lowest_layer(stream_).expires_after(st_->opts.read_timeout);
        stream_.async_handshake(asio::ssl::stream_base::server,
                                beast::bind_front_handler(&session::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec) {
        if (ec) {
            log::debug("http.tls_handshake_failed", {{"error", ec.message()}});
            return;  // the socket closes when the session goes away
        }
        do_read();
    }

    void do_read() {
        parser_.emplace();
        parser_->body_limit(st_->opts.body_limit);
        parser_->header_limit(64 * 1024);
        beast::get_lowest_layer(stream_).expires_after(st_->opts.read_timeout);
        bhttp::async_read_header(stream_, buffer_, *parser_,
                                 beast::bind_front_handler(&session::on_header, shared_from_this()));
    }

    // Headers are in: refuse an announced oversize body before reading it, and answer
    // "Expect: 100-continue" (curl and some C clients wait for it before sending the body).
    void on_header(beast::error_code ec, std::size_t n) {
        if (ec) return on_read(ec, n);
        const auto& h = parser_->get();
        if (auto len = parser_->content_length(); len && *len > st_->opts.body_limit) {
            return on_read(bhttp::error::body_limit, 0);
        }
        if (parser_->is_done()) return on_read({}, n);
        if (beast::iequals(h[bhttp::field::expect], "100-continue")) {
            continue_.emplace(bhttp::status::continue_, h.version());
            return bhttp::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec) return;
                self->read_body();
            });
        }
        read_body();
    }

    void read_body() {
        beast::get_lowest_layer(stream_).expires_after(st_->opts.read_timeout);
        bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&session::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
        if (ec == bhttp::error::end_of_stream) return do_close();
        if (ec == bhttp::error::body_limit) {
            // The client may still be sending the body: read and discard it after the 413, or
            // closing with unread data would reset the connection before the client reads the 413.
            drain_before_close_ = true;
            return send(error_response(error{errc::message_too_large,
                                             "The request body exceeds the limit of " +
                                                 std::to_string(st_->opts.body_limit) + " bytes."}),
                        11, false);
        }
        if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {  // a parse error
            return send(error_response(error{errc::format_error, "Malformed HTTP request: " + ec.message() + "."}), 11,
                        false);
        }
        if (ec) return;  // timeout, reset, cancelled by stop(): drop the connection

        bhttp::request<bhttp::string_body> req = parser_->release();
        const unsigned version = req.version();
        const bool keep_alive = req.keep_alive();

        if (beast::websocket::is_upgrade(req)) return on_upgrade(std::move(req));

        rest_request rr = to_rest_request(std::move(req));
        // X.509 device authentication (spec 5.12): a request without a token may be authorised by
        // the TLS client certificate.
        if (!rr.authorization) rr.client_certificates = net::peer_certificate_chain(stream_.native_handle());

        ops_api::completion done = [self = shared_from_this(), version, keep_alive](rest_response r) {
            asio::post(self->stream_.get_executor(), [self, r = std::move(r), version, keep_alive]() mutable {
                self->send(std::move(r), version, keep_alive);
            });
        };
        if (st_->ops.handle(rr, done)) return;
        st_->api.handle(std::move(rr), std::move(done));
    }

    void on_upgrade(bhttp::request<bhttp::string_body>&& req) {
        std::string why;
        const net::websocket_handler* handler = select_websocket_handler(req, st_->on_websocket, why);
        if (!handler) {
            log::info("http.websocket_refused", {{"subprotocol", std::string(req[bhttp::field::sec_websocket_protocol])},
                                                 {"path", std::string(target_path(req.target()))}});
            return send(error_response(error{errc::not_found, why}), req.version(), false);
        }
        handed_off_ = true;
        beast::get_lowest_layer(stream_).expires_never();
        {
            std::lock_guard lock(st_->mu);
            st_->sessions.erase(this);
        }
        const std::string subprotocol(req[bhttp::field::sec_websocket_protocol]);  // as asked (a list)
        log::debug("http.websocket_handoff", {{"subprotocol", subprotocol}});
        // A head that throws while taking the connection over (out of memory, a TLS or Proton
        // object it cannot create) loses that connection only: nothing may leave an Asio handler.
        try {
            (*handler)(std::move(stream_), std::move(req));
        } catch (const std::exception& e) {
            log::warn("http.websocket_handoff_failed", {{"subprotocol", subprotocol}, {"error", e.what()}});
        } catch (...) {
            log::warn("http.websocket_handoff_failed", {{"subprotocol", subprotocol}, {"error", "unknown exception"}});
        }
    }

    void send(rest_response r, unsigned version, bool keep_alive) {
        res_ = {};
        res_.version(version);
        res_.result(static_cast<unsigned>(r.status));
        res_.keep_alive(keep_alive);
        if (!r.body.empty()) res_.set(bhttp::field::content_type, json_content_type);
        for (auto& [k, v] : r.headers) res_.set(k, v);
        res_.body() = std::move(r.body);
        res_.prepare_payload();
        // The read deadline may have passed while a long call (a direct method) was in progress.
        beast::get_lowest_layer(stream_).expires_after(st_->opts.read_timeout);
        bhttp::async_write(stream_, res_,
                           beast::bind_front_handler(&session::on_write, shared_from_this(), !keep_alive));
    }

    void on_write(bool close, beast::error_code ec, std::size_t) {
        if (ec) return;
        if (close && drain_before_close_) return drain(0);
        if (close) return do_close();
        do_read();
    }

    // Lingering close: discard what the client still sends (bounded in bytes and time), then close.
    void drain(std::size_t total) {
        static constexpr std::size_t max_drain = 16 * 1024 * 1024;
        if (total == 0) beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
        if (total > max_drain) return do_close();
        drain_buf_.resize(16 * 1024);
        stream_.async_read_some(asio::buffer(drain_buf_), [self = shared_from_this(), total](beast::error_code ec,
                                                                                             std::size_t n) {
            if (ec) return self->do_close();
            self->drain(total + n);
        });
    }

    void do_close() {
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
        stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
            beast::error_code ignored;
            beast::get_lowest_layer(self->stream_).socket().close(ignored);
        });
    }

    std::shared_ptr<https_server::state> st_;
    net::tls_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    std::optional<bhttp::response<bhttp::empty_body>> continue_;
    bhttp::response<bhttp::string_body> res_;
    bool handed_off_ = false;
    bool drain_before_close_ = false;
    std::vector<char> drain_buf_;
};

}  // namespace

void https_server::state::on_socket(tcp::socket&& socket) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto s = std::make_shared<session>(shared_from_this(), std::move(socket));
    {
        std::lock_guard lock(mu);
        if (stopped) return;
        sessions.emplace(s.get(), s);
    }
    s->run();
}

https_server::https_server(asio::io_context& ioc, asio::ssl::context& tls, service::hub_service& hub,
                           https_options opts, net::websocket_handler on_websocket)
    : https_server(ioc, tls, hub, std::move(opts), net::websocket_handlers{{"mqtt", std::move(on_websocket)}}) {}

https_server::https_server(asio::io_context& ioc, asio::ssl::context& tls, service::hub_service& hub,
                           https_options opts, net::websocket_handlers on_websocket)
    : state_(std::make_shared<state>(ioc, tls, hub, std::move(opts), std::move(on_websocket))) {}

https_server::~https_server() { stop(); }

result<void> https_server::start() {
    auto& st = *state_;
    net::listener_options lo;
    lo.name = "https";
    lo.protocol = "HTTPS";
    lo.port_option = "--https-port";
    lo.bind_address = st.opts.bind_address;
    lo.port = st.opts.port;
    auto lst = std::make_unique<net::tcp_listener>(
        st.ioc, std::move(lo), [&ioc = st.ioc] { return asio::any_io_executor(asio::make_strand(ioc)); },
        [st = state_](tcp::socket&& socket) { st->on_socket(std::move(socket)); });
    if (auto r = lst->start(); !r) return r;
    listener_ = std::move(lst);
    return {};
}

void https_server::stop() {
    std::vector<std::shared_ptr<session>> open;
    {
        std::lock_guard lock(state_->mu);
        if (state_->stopped) return;
        state_->stopped = true;
        for (auto& [p, w] : state_->sessions) {
            if (auto s = w.lock()) open.push_back(std::move(s));
        }
    }
    if (listener_) listener_->close();
    for (auto& s : open) s->close();
}

unsigned short https_server::port() const { return listener_ ? listener_->port() : state_->opts.port; }

}  // namespace twinhub::http
