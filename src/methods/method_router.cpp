#include "methods/method_router.hpp"

#include "common/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace twinhub::methods {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

std::string describe(const identity_key& id) {
    return id.is_module() ? id.device_id + "/" + id.module_id : id.device_id;
}

std::string to_hex(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    char buf[16];
    int n = 0;
    do {
        buf[n++] = digits[v & 0xf];
        v >>= 4;
    } while (v != 0);
    std::string out;
    out.reserve(static_cast<std::size_t>(n));
    while (n > 0) out += buf[--n];
    return out;
}

bool parse_hex(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 16) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return false;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    out = v;
    return true;
}

error not_online() {
    return error{errc::device_not_online,
                 "The operation failed because the requested device isn't online or hasn't registered the direct "
                 "method callback. To learn more, see https://aka.ms/iothub404103"};
}

error timed_out() {
    return error{errc::gateway_timeout,
                 "Timed out waiting for the response from device. To learn more, see https://aka.ms/iothub504101"};
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

struct method_router::impl : std::enable_shared_from_this<impl> {
    enum class phase { connecting, delivered };

    struct call {
        identity_key id;
        std::string method_name;
        std::string payload;
        invoke_options opts;
        completion done;
        phase ph = phase::connecting;
        std::uint64_t connection = 0;
        clock::time_point deadline;
    };

    // A settled call, completed after the lock is released.
    struct settled {
        completion done;
        result<method_response> r;
    };

    impl(asio::io_context& ioc, router_options o) : opts(o), timer(ioc) {}

    const router_options opts;

    mutable std::mutex mu;
    method_channel* channel = nullptr;
    bool stopped = false;
    std::uint64_t next_id = 1;
    std::unordered_map<std::uint64_t, call> calls;
    std::map<identity_key, std::vector<std::uint64_t>> waiting;                // connecting, per identity
    std::unordered_map<std::uint64_t, std::unordered_set<std::uint64_t>> by_connection;  // delivered
    std::set<std::pair<clock::time_point, std::uint64_t>> deadlines;

    asio::steady_timer timer;  // guarded by mu; one wait for the earliest deadline
    std::uint64_t timer_generation = 0;
    bool timer_armed = false;
    clock::time_point timer_at;

    // ---- under mu ----

    void set_deadline(std::uint64_t cid, call& c, clock::time_point d) {
        deadlines.erase({c.deadline, cid});
        c.deadline = d;
        deadlines.emplace(d, cid);
        if (!timer_armed || d < timer_at) arm(d);
    }

    void arm(clock::time_point at) {
        const std::uint64_t gen = ++timer_generation;
        timer_armed = true;
        timer_at = at;
        timer.expires_at(at);
        timer.async_wait([w = weak_from_this(), gen](boost::system::error_code ec) {
            if (ec == asio::error::operation_aborted) return;
            if (auto self = w.lock()) self->on_timer(gen);
        });
    }

    // Removes call `cid` from every index and returns it.
    call take(std::uint64_t cid) {
        auto it = calls.find(cid);
        call c = std::move(it->second);
        calls.erase(it);
        deadlines.erase({c.deadline, cid});
        if (c.ph == phase::connecting) {
            if (auto w = waiting.find(c.id); w != waiting.end()) {
                std::erase(w->second, cid);
                if (w->second.empty()) waiting.erase(w);
            }
        } else if (auto b = by_connection.find(c.connection); b != by_connection.end()) {
            b->second.erase(cid);
            if (b->second.empty()) by_connection.erase(b);
        }
        return c;
    }

    // Tries to hand call `cid` (connecting) to its identity's connection.
    bool try_deliver(std::uint64_t cid, call& c) {
        if (channel == nullptr) return false;
        auto conn = channel->deliver(c.id, method_call{c.method_name, to_hex(cid), c.payload});
        if (!conn) return false;
        c.ph = phase::delivered;
        c.connection = *conn;
        by_connection[*conn].insert(cid);
        set_deadline(cid, c, clock::now() + c.opts.response_timeout);
        return true;
    }

    // ---- entry points ----

    void invoke(identity_key id, std::string name, std::string payload, invoke_options o, completion done) {
        if (is_blank(payload)) payload = "null";
        std::vector<settled> out;
        {
            std::lock_guard lock(mu);
            if (stopped) {
                out.push_back({std::move(done), error{errc::shutting_down, "The hub is shutting down."}});
            } else {
                const std::uint64_t cid = next_id++;
                call& c = calls[cid];
                c.id = std::move(id);
                c.method_name = std::move(name);
                c.payload = std::move(payload);
                c.opts = o;
                c.done = std::move(done);
                if (try_deliver(cid, c)) {
                    // Delivered; the response timer runs.
                } else if (o.connect_timeout.count() > 0) {
                    waiting[c.id].push_back(cid);
                    set_deadline(cid, c, clock::now() + o.connect_timeout);
                } else {
                    call t = take(cid);
                    out.push_back({std::move(t.done), not_online()});
                }
            }
        }
        finish(out);
    }

    void on_response(const identity_key& id, std::string_view rid, int status, std::string_view body) {
        std::uint64_t cid = 0;
        std::vector<settled> out;
        {
            std::lock_guard lock(mu);
            auto it = parse_hex(rid, cid) ? calls.find(cid) : calls.end();
            if (it == calls.end() || it->second.ph != phase::delivered || it->second.id != id) {
                log::debug("method.response_dropped", {{"identity", describe(id)}, {"rid", rid}, {"status", status}});
                return;
            }
            call c = take(cid);
            out.push_back({std::move(c.done), make_response(c, status, body)});
        }
        finish(out);
    }

    result<method_response> make_response(const call& c, int status, std::string_view body) const {
        if (body.size() > opts.max_response_size) {
            log::warn("method.response_too_large",
                      {{"identity", describe(c.id)}, {"method", c.method_name}, {"bytes", body.size()}});
            return error{errc::message_too_large,
                         "The device answered method '" + c.method_name + "' with " + std::to_string(body.size()) +
                             " bytes; a direct-method response may have at most " +
                             std::to_string(opts.max_response_size) + " bytes (128 KB). The answer was dropped."};
        }
        method_response r;
        r.status = status;
        if (is_blank(body)) {
            r.payload = "null";
            return r;
        }
        boost::system::error_code ec;
        (void)boost::json::parse(body, ec);
        if (ec) {
            // The real hub has answered such bodies with an error or passed them on verbatim (invalid
            // JSON for the caller); we keep the device's bytes as a JSON string so nothing is lost.
            log::warn("method.response_not_json", {{"identity", describe(c.id)}, {"method", c.method_name}});
            r.payload = boost::json::serialize(boost::json::value(boost::json::string_view(body.data(), body.size())));
            return r;
        }
        r.payload = std::string(body);
        return r;
    }

    void on_methods_ready(const identity_key& id) {
        std::lock_guard lock(mu);
        auto w = waiting.find(id);
        if (w == waiting.end()) return;
        std::vector<std::uint64_t> ids = std::move(w->second);
        waiting.erase(w);
        std::vector<std::uint64_t> still;
        for (std::uint64_t cid : ids) {
            auto& c = calls.at(cid);
            if (!try_deliver(cid, c)) still.push_back(cid);
        }
        if (!still.empty()) waiting[id] = std::move(still);
    }

    void on_connection_gone(const identity_key& id, std::uint64_t connection) {
        std::vector<settled> out;
        {
            std::lock_guard lock(mu);
            auto b = by_connection.find(connection);
            if (b == by_connection.end()) return;
            std::vector<std::uint64_t> ids(b->second.begin(), b->second.end());
            for (std::uint64_t cid : ids) {
                call c = take(cid);
                out.push_back({std::move(c.done),
                               error{errc::gateway_timeout, "The device disconnected (or stopped taking method calls) "
                                                                "before answering method '" +
                                                                c.method_name + "'; the method may or may not have run."}});
            }
        }
        if (!out.empty())
            log::info("method.connection_gone", {{"identity", describe(id)}, {"failed_calls", out.size()}});
        finish(out);
    }

    void on_timer(std::uint64_t gen) {
        std::vector<settled> out;
        {
            std::lock_guard lock(mu);
            if (gen != timer_generation) return;  // re-armed meanwhile
            timer_armed = false;
            const auto t = clock::now();
            while (!deadlines.empty() && deadlines.begin()->first <= t) {
                const std::uint64_t cid = deadlines.begin()->second;
                call c = take(cid);
                out.push_back({std::move(c.done), c.ph == phase::connecting ? not_online() : timed_out()});
            }
            if (!deadlines.empty()) arm(deadlines.begin()->first);
        }
        finish(out);
    }

    void stop() {
        std::vector<settled> out;
        {
            std::lock_guard lock(mu);
            if (stopped) return;
            stopped = true;
            ++timer_generation;
            timer.cancel();
            timer_armed = false;
            for (auto& [cid, c] : calls) out.push_back({std::move(c.done), error{errc::shutting_down, "The hub is shutting down."}});
            calls.clear();
            waiting.clear();
            by_connection.clear();
            deadlines.clear();
        }
        finish(out);
    }

    static void finish(std::vector<settled>& out) {
        for (auto& s : out) {
            if (s.done) s.done(std::move(s.r));
        }
    }
};

method_router::method_router(asio::io_context& ioc, router_options opts) : impl_(std::make_shared<impl>(ioc, opts)) {}

method_router::~method_router() { stop(); }

void method_router::set_channel(method_channel* channel) {
    std::lock_guard lock(impl_->mu);
    impl_->channel = channel;
}

void method_router::invoke(identity_key id, std::string method_name, std::string payload_json,
                           invoke_options opts, completion done) {
    impl_->invoke(std::move(id), std::move(method_name), std::move(payload_json), opts, std::move(done));
}

void method_router::on_response(const identity_key& id, std::string_view rid, int status, std::string_view body) {
    impl_->on_response(id, rid, status, body);
}

void method_router::on_methods_ready(const identity_key& id) { impl_->on_methods_ready(id); }

void method_router::on_connection_gone(const identity_key& id, std::uint64_t connection) {
    impl_->on_connection_gone(id, connection);
}

void method_router::stop() { impl_->stop(); }

std::size_t method_router::pending() const {
    std::lock_guard lock(impl_->mu);
    return impl_->calls.size();
}

}  // namespace twinhub::methods
