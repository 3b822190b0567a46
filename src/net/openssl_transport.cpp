// MQTT over TLS with OpenSSL on the socket itself (see make_openssl_transport in transport.hpp).
// Every SSL_* call happens on the connection's strand; a call that needs the socket to become
// readable or writable waits for that with async_wait and is retried. A completion is never invoked
// from inside the initiating call (it is posted), so a fast peer cannot grow the stack; from inside
// a wait's handler it is invoked at once.
#include "net/transport.hpp"

#include "net/peer_certificates.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace twinhub::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// SSL_get_error needs an empty error queue before each call; ERR_clear_error walks all of its
// slots, so it runs only when something is there.
void clear_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
}

class openssl_transport final : public transport {
public:
    openssl_transport(tcp::socket&& s, asio::ssl::context& tls) : sock_(std::move(s)), ssl_(SSL_new(tls.native_handle())) {
        boost::system::error_code ec;
        sock_.non_blocking(true, ec);
        sock_.set_option(tcp::no_delay(true), ec);
        if (ssl_) {
            SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
            // Read ahead: one read() takes a whole record (header and body) and whatever follows it,
            // instead of one read for the 5-byte header and another for the body.
            SSL_set_read_ahead(ssl_, 1);
            SSL_set_fd(ssl_, static_cast<int>(sock_.native_handle()));
            SSL_set_accept_state(ssl_);
        }
    }
    ~openssl_transport() override {
        if (ssl_) SSL_free(ssl_);
    }

    asio::any_io_executor executor() override { return sock_.get_executor(); }

    void async_handshake(handshake_handler h) override {
        if (!ssl_) return complete(std::move(h), asio::error::no_memory);
        clear_errors();
        const int r = SSL_do_handshake(ssl_);
        if (r == 1) return complete(std::move(h), boost::system::error_code{});
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return sock_.async_wait(wait_for(e), [this, h = std::move(h)](boost::system::error_code ec) mutable {
                if (ec) return h(ec);
                async_handshake(std::move(h));
            });
        complete(std::move(h), failure(e));
    }

    // With nothing buffered in OpenSSL, wait for the socket before reading: a request/response
    // peer has usually sent nothing more yet, and reading first would cost a read() that returns
    // EAGAIN on every packet. Waiting is safe when data is already there: Asio re-arms the
    // descriptor (EPOLL_CTL_MOD) for every wait, which reports a socket that is readable now.
    void async_read_some(asio::mutable_buffer b, io_handler h) override {
        if (SSL_has_pending(ssl_) == 1) return read_now(b, std::move(h), false);
        wait_then_read(b, std::move(h));
    }

    void async_write(asio::const_buffer b, io_handler h) override { write_from(b, 0, std::move(h)); }

    std::size_t try_write(asio::const_buffer b, boost::system::error_code& ec) override {
        std::size_t done = 0;
        const int e = write_some(b, done);
        if (e != 0 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ec = failure(e);
        return done;  // the rest (from `done`, the same bytes) goes to async_write
    }

    void close() override {
        boost::system::error_code ec;
        sock_.shutdown(tcp::socket::shutdown_both, ec);
        sock_.close(ec);
    }
    const char* name() const noexcept override { return "tls"; }
    std::string remote() const override {
        boost::system::error_code ec;
        auto ep = sock_.remote_endpoint(ec);
        return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    std::vector<std::string> peer_certificates() const override { return peer_certificate_chain(ssl_); }

private:
    static tcp::socket::wait_type wait_for(int ssl_error) {
        return ssl_error == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write;
    }
    boost::system::error_code failure(int ssl_error) const {
        if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
        if (unsigned long e = ERR_peek_last_error())
            return {static_cast<int>(e), asio::error::get_ssl_category()};
        return asio::error::connection_reset;
    }
    template <class H, class... Args>
    void complete(H&& h, Args... args) {
        asio::post(sock_.get_executor(), [h = std::forward<H>(h), args...]() mutable { h(args...); });
    }

    // `direct`: called from a completion handler (not from async_read_some itself), so the handler
    // may run at once instead of being posted.
    void read_now(asio::mutable_buffer b, io_handler h, bool direct) {
        std::size_t got = 0;
        clear_errors();
        const int r = SSL_read_ex(ssl_, b.data(), b.size(), &got);
        if (r == 1) {
            if (direct) return h(boost::system::error_code{}, got);
            return complete(std::move(h), boost::system::error_code{}, got);
        }
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ) return wait_then_read(b, std::move(h));
        if (e == SSL_ERROR_WANT_WRITE)
            return sock_.async_wait(tcp::socket::wait_write, [this, b, h = std::move(h)](boost::system::error_code ec) mutable {
                if (ec) return h(ec, 0);
                read_now(b, std::move(h), true);
            });
        if (direct) return h(failure(e), 0);
        complete(std::move(h), failure(e), 0);
    }
    void wait_then_read(asio::mutable_buffer b, io_handler h) {
        sock_.async_wait(tcp::socket::wait_read, [this, b, h = std::move(h)](boost::system::error_code ec) mutable {
            if (ec) return h(ec, 0);
            read_now(b, std::move(h), true);
        });
    }

    // Writes `b` from `done` on until all is written (returns 0) or SSL_write stops (returns its
    // SSL_get_error code); `done` counts what was written.
    int write_some(asio::const_buffer b, std::size_t& done) {
        while (done < b.size()) {
            std::size_t n = 0;
            clear_errors();
            const int r = SSL_write_ex(ssl_, static_cast<const char*>(b.data()) + done, b.size() - done, &n);
            if (r != 1) return SSL_get_error(ssl_, r);
            done += n;
        }
        return 0;
    }

    void write_from(asio::const_buffer b, std::size_t done, io_handler h) {
        const int e = write_some(b, done);
        if (e == 0) return complete(std::move(h), boost::system::error_code{}, done);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return sock_.async_wait(wait_for(e), [this, b, done, h = std::move(h)](boost::system::error_code ec) mutable {
                if (ec) return h(ec, done);
                write_from(b, done, std::move(h));
            });
        complete(std::move(h), failure(e), done);
    }

    tcp::socket sock_;
    SSL* ssl_;
};

}  // namespace

std::unique_ptr<transport> make_openssl_transport(tcp::socket&& socket, asio::ssl::context& tls) {
    return std::make_unique<openssl_transport>(std::move(socket), tls);
}

}  // namespace twinhub::net
