// Helpers for the hub_service tests: synchronous wrappers over the handler-based API, an observer
// that records what it is told, and a fixture over the memory store.
#pragma once

#include "common/log.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

namespace twinhub::service::testing {

// Runs `start(handler)` and waits for the handler's result (at most 10 s).
template <class T, class Start>
result<T> wait_for(Start&& start) {
    auto p = std::make_shared<std::promise<result<T>>>();
    auto f = p->get_future();
    start([p](result<T> r) { p->set_value(std::move(r)); });
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
        ADD_FAILURE() << "handler was not called within 10 s";
        return error{errc::internal, "timeout"};
    }
    return f.get();
}

inline registry::device_identity device_request(std::string id) {
    registry::device_identity d;
    d.device_id = std::move(id);
    return d;
}

inline registry::module_identity module_request(std::string device_id, std::string module_id) {
    registry::module_identity m;
    m.device_id = std::move(device_id);
    m.module_id = std::move(module_id);
    return m;
}

class recording_observer : public change_observer {
public:
    void on_desired_change(const store::identity_key& id, const twin::desired_change& c) override {
        std::lock_guard l(m_);
        desired_.emplace_back(id, c);
    }
    void on_identity_revoked(const store::identity_key& id) override {
        std::lock_guard l(m_);
        revoked_.push_back(id);
    }
    std::vector<std::pair<store::identity_key, twin::desired_change>> desired() const {
        std::lock_guard l(m_);
        return desired_;
    }
    std::vector<store::identity_key> revoked() const {
        std::lock_guard l(m_);
        return revoked_;
    }
    void on_credentials_changed(const store::identity_key& id) override {
        std::lock_guard l(m_);
        credentials_changed_.push_back(id);
    }
    void on_policies_changed() override {
        std::lock_guard l(m_);
        ++policies_changed_;
    }
    std::vector<store::identity_key> credentials_changed() const {
        std::lock_guard l(m_);
        return credentials_changed_;
    }
    int policies_changed() const {
        std::lock_guard l(m_);
        return policies_changed_;
    }

private:
    mutable std::mutex m_;
    std::vector<std::pair<store::identity_key, twin::desired_change>> desired_;
    std::vector<store::identity_key> revoked_;
    std::vector<store::identity_key> credentials_changed_;
    int policies_changed_ = 0;
};

// A hub over a fresh memory store with a recording observer.
class hub_fixture : public ::testing::Test {
protected:
    void SetUp() override {
        log::set_level(log::level::warn);
        open_hub({});
    }
    void TearDown() override { close_hub(); }

    // The store under the hub: a fresh memory store unless a fixture chooses another.
    virtual std::unique_ptr<store::store> make_store() { return store::make_memory_store(); }

    void open_hub(hub_options opts) {
        store_ = make_store();
        auto h = hub_service::open(*store_, opts);
        ASSERT_TRUE(h) << h.error().message;
        hub_ = std::move(*h);
        hub_->add_observer(&observer_);
    }
    void close_hub() {
        if (store_) store_->close();  // runs the outstanding completions
        hub_.reset();
        store_.reset();
    }

    result<registry::device_identity> create(registry::device_identity d) {
        return wait_for<registry::device_identity>([&](auto h) { hub_->create_device(std::move(d), h); });
    }
    result<registry::device_identity> create(std::string id) { return create(device_request(std::move(id))); }
    result<registry::device_identity> update(registry::device_identity d, std::string if_match) {
        return wait_for<registry::device_identity>(
            [&](auto h) { hub_->update_device(std::move(d), std::move(if_match), h); });
    }
    result<void> remove(std::string id, std::string if_match = "*") {
        return wait_for<void>([&](auto h) { hub_->delete_device(std::move(id), std::move(if_match), h); });
    }
    result<registry::module_identity> create_module(std::string d, std::string m) {
        return wait_for<registry::module_identity>(
            [&](auto h) { hub_->create_module(module_request(std::move(d), std::move(m)), h); });
    }
    result<registry::module_identity> update_module(registry::module_identity m, std::string if_match) {
        return wait_for<registry::module_identity>(
            [&](auto h) { hub_->update_module(std::move(m), std::move(if_match), h); });
    }
    result<void> remove_module(std::string d, std::string m, std::string if_match = "*") {
        return wait_for<void>(
            [&](auto h) { hub_->delete_module(std::move(d), std::move(m), std::move(if_match), h); });
    }
    result<boost::json::object> patch(store::identity_key id, std::string_view body, std::string if_match = "*") {
        return wait_for<boost::json::object>(
            [&](auto h) { hub_->patch_twin(std::move(id), boost::json::parse(body), std::move(if_match), h); });
    }
    result<boost::json::object> replace(store::identity_key id, std::string_view body, std::string if_match = "*") {
        return wait_for<boost::json::object>(
            [&](auto h) { hub_->replace_twin(std::move(id), boost::json::parse(body), std::move(if_match), h); });
    }
    result<std::int64_t> report(store::identity_key id, std::string_view body) {
        return wait_for<std::int64_t>(
            [&](auto h) { hub_->patch_reported(std::move(id), boost::json::parse(body), h); });
    }
    result<bulk_result> bulk(std::vector<bulk_entry> entries) {
        return wait_for<bulk_result>([&](auto h) { hub_->bulk(std::move(entries), h); });
    }

    recording_observer observer_;
    std::unique_ptr<store::store> store_;
    std::unique_ptr<hub_service> hub_;
};

// A JSON string as std::string (anything else serialized), for comparisons in expectations.
inline std::string str(const boost::json::value& v) {
    return v.is_string() ? std::string(v.get_string()) : boost::json::serialize(v);
}

inline std::string quoted(const std::string& etag) { return "\"" + etag + "\""; }

}  // namespace twinhub::service::testing
