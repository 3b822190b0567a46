#include "asio/io_pool.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace twinhub {

struct io_pool::impl {
    using guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
    std::vector<guard> guards;
    std::vector<std::thread> threads;
    std::atomic<std::size_t> next{0};
};

io_pool::io_pool(std::size_t threads) : impl_(std::make_unique<impl>()) {
    threads = std::max<std::size_t>(1, threads);
    for (std::size_t i = 0; i < threads; ++i) {
        // Concurrency hint 1: a handler posted from its own thread goes to a thread-local queue.
        impl_->contexts.push_back(std::make_unique<boost::asio::io_context>(1));
        impl_->guards.emplace_back(impl_->contexts.back()->get_executor());
    }
}

io_pool::~io_pool() {
    stop();
    // The contexts (and the handlers still queued in them) go before the rest of the pool.
    impl_->contexts.clear();
}

void io_pool::start() {
    if (!impl_->threads.empty()) return;
    for (auto& c : impl_->contexts) impl_->threads.emplace_back([ctx = c.get()] { ctx->run(); });
}

void io_pool::stop() {
    impl_->guards.clear();
    for (auto& c : impl_->contexts) c->stop();
    for (auto& t : impl_->threads)
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    impl_->threads.clear();
}

boost::asio::io_context& io_pool::next() {
    return *impl_->contexts[impl_->next.fetch_add(1, std::memory_order_relaxed) % impl_->contexts.size()];
}

std::size_t io_pool::size() const noexcept { return impl_->contexts.size(); }

}  // namespace twinhub
