#include "net/accept_backoff.hpp"

#include <algorithm>
#include <cerrno>

namespace twinhub::net {

accept_error_kind classify_accept_error(const boost::system::error_code& ec) noexcept {
    // Asio reports accept(2)'s errno in the system category (generic on some platforms).
    if (ec.category() != boost::system::system_category() && ec.category() != boost::system::generic_category())
        return accept_error_kind::other;
    switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        return accept_error_kind::resource_exhausted;
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case EINTR:
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ECONNRESET:
    case ETIMEDOUT:
        return accept_error_kind::connection_lost;
    default:
        return accept_error_kind::other;
    }
}

accept_backoff::step accept_backoff::failed(std::string_view cause, clock::time_point now) {
    lost_in_a_row_ = 0;
    const bool first = failures_++ == 0;
    if (first) {
        started_ = now;
        delay_ = policy_.initial;
        first_cause_ = cause;
    } else {
        delay_ = std::min(delay_ * 2, policy_.max);
    }
    last_cause_ = cause;
    last_failure_ = now;
    return {delay_, first};
}

bool accept_backoff::lost_connection() noexcept {
    if (++lost_in_a_row_ < policy_.max_lost_in_a_row) return false;
    lost_in_a_row_ = 0;
    return true;
}

std::optional<accept_backoff::recovery> accept_backoff::served(clock::time_point now) {
    lost_in_a_row_ = 0;
    if (failures_ == 0 || now - last_failure_ < policy_.settle) return std::nullopt;
    recovery r{failures_, std::chrono::duration_cast<std::chrono::milliseconds>(now - started_), std::move(first_cause_),
               std::move(last_cause_)};
    failures_ = 0;
    delay_ = std::chrono::milliseconds{0};
    first_cause_.clear();
    last_cause_.clear();
    return r;
}

}  // namespace twinhub::net
