// Consumer groups and retention of the built-in endpoint (see telemetry_service.hpp).
#include "service/telemetry_service.hpp"

#include "telemetry/routing_table.hpp"

#include "common/log.hpp"
#include "common/time.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <future>
#include <iterator>
#include <stdexcept>

namespace twinhub::service {

namespace {

constexpr std::string_view group_prefix = "consumerGroups/";
constexpr std::string_view default_group = "$Default";

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

result<void> validate_consumer_group_name(std::string_view name) {
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (name.empty() || name.size() > 50)
        return error{errc::invalid_argument, "A consumer group name must have 1 to 50 characters."};
    for (char c : name)
        if (!alnum(c) && c != '.' && c != '-' && c != '_')
            return error{errc::invalid_argument,
                         "The consumer group name '" + std::string(name) +
                             "' may contain only letters, digits, periods, hyphens and underscores."};
    if (!alnum(name.front()) || !alnum(name.back()))
        return error{errc::invalid_argument,
                     "The consumer group name '" + std::string(name) + "' must start and end with a letter or digit."};
    return {};
}

telemetry_service::telemetry_service(event_log& log, settings_service& settings, twin_service& twins,
                                     telemetry_options opts)
    : log_(log), settings_(settings), twins_(twins), opts_(opts) {
    if (opts_.retention > max_retention) opts_.retention = max_retention;
    if (opts_.retention < std::chrono::seconds(1)) opts_.retention = std::chrono::seconds(1);
    if (opts_.trim_interval.count() == 0) {
        auto t = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.retention) / 100;
        opts_.trim_interval = std::clamp<std::chrono::milliseconds>(t, std::chrono::seconds(1), std::chrono::seconds(60));
    }
    routing_ = std::make_unique<telemetry::routing_table>(opts_.hub_name);
    for (auto& [key, doc] : settings_.with_prefix("endpoints/")) {
        boost::system::error_code ec;
        auto v = boost::json::parse(doc, ec);
        const auto* i = ec || !v.is_object() ? nullptr : v.as_object().if_contains("index");
        if (i && i->is_int64()) endpoint_index_[key.substr(10)] = static_cast<std::uint32_t>(i->as_int64());
    }
    if (!opts_.routing_file.empty()) {
        std::error_code fe;
        if (std::filesystem::exists(opts_.routing_file, fe)) {
            routing_mtime_ = std::filesystem::last_write_time(opts_.routing_file, fe);
            std::ifstream in(opts_.routing_file, std::ios::binary);
            std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            boost::system::error_code ec;
            auto v = boost::json::parse(text, ec);
            if (ec) throw std::runtime_error(opts_.routing_file.string() + " is not valid JSON: " + ec.message());
            if (auto r = configure_routing(v); !r) throw std::runtime_error(opts_.routing_file.string() + ": " + r.error().message);
        }
    }
    log_.set_router(this);
    trimmer_ = std::thread([this] { run_trimmer(); });
}

telemetry_service::~telemetry_service() {
    log_.set_router(nullptr);
    {
        std::lock_guard l(m_);
        stop_ = true;
    }
    cv_.notify_all();
    trimmer_.join();
}

std::vector<telemetry_service::consumer_group> telemetry_service::consumer_groups() const {
    std::vector<consumer_group> out;
    out.push_back({std::string(default_group), log_.created_ns()});
    for (auto& [key, doc] : settings_.with_prefix(group_prefix)) {
        consumer_group g;
        boost::system::error_code ec;
        auto v = boost::json::parse(doc, ec);
        const auto* o = ec ? nullptr : v.if_object();
        const auto* n = o ? o->if_contains("name") : nullptr;
        const auto* c = o ? o->if_contains("createdTimeNs") : nullptr;
        g.name = n && n->is_string() ? std::string(n->as_string()) : key.substr(group_prefix.size());
        if (c && c->is_int64()) g.created_ns = c->as_int64();
        out.push_back(std::move(g));
    }
    return out;
}

bool telemetry_service::has_consumer_group(std::string_view name) const {
    const auto l = lower(name);
    if (l == lower(default_group)) return true;
    return settings_.get(std::string(group_prefix) + l).has_value();
}

void telemetry_service::create_consumer_group(std::string name, handler<consumer_group> done) {
    if (auto v = validate_consumer_group_name(name); !v) return done(v.error());
    if (lower(name) == lower(default_group)) return done(consumer_group{std::string(default_group), log_.created_ns()});
    for (auto& g : consumer_groups())
        if (lower(g.name) == lower(name)) return done(g);
    if (consumer_groups().size() >= max_consumer_groups)
        return done(error{errc::invalid_argument, "The hub already has " + std::to_string(max_consumer_groups) +
                                                      " consumer groups, the most it can have."});
    consumer_group g{name, now_ns()};
    boost::json::object doc{{"name", g.name}, {"createdTimeNs", g.created_ns}};
    settings_.put(std::string(group_prefix) + lower(name), boost::json::serialize(doc),
                     [g, done = std::move(done)](result<void> r) {
                         if (!r) return done(r.error());
                         log::info("telemetry.consumer_group_created", {{"name", g.name}});
                         done(g);
                     });
}

void telemetry_service::delete_consumer_group(std::string name, handler<void> done) {
    if (lower(name) == lower(default_group))
        return done(error{errc::invalid_argument, "The consumer group '$Default' cannot be deleted."});
    const std::string key = std::string(group_prefix) + lower(name);
    if (!settings_.get(key)) return done(error{errc::not_found, "The consumer group '" + name + "' does not exist."});
    settings_.put(key, {}, [name, done = std::move(done)](result<void> r) {
        if (r) log::info("telemetry.consumer_group_deleted", {{"name", name}});
        done(std::move(r));
    });
}

result<void> telemetry_service::trim_now() {
    const std::int64_t before = now_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.retention).count();
    // Batches until no partition has more than a batch left to delete (or the hub stops).
    std::vector<std::uint32_t> streams;
    {
        std::vector<std::uint32_t> bases{0};
        std::lock_guard l(endpoints_m_);
        for (auto& [_, i] : endpoint_index_) bases.push_back(store::stream_base(i));
        for (auto b : bases)
            for (std::uint32_t p = 0; p < log_.partition_count(); ++p) streams.push_back(b + p);
    }
    for (int round = 0; round < 1000; ++round) {
        bool more = false;
        for (auto p : streams) {
            auto first = log_.read(p, 0, 1);
            if (!first) return first.error();
            auto info = log_.partition_info(p);
            if (!info) return info.error();
            if (!first->empty() && first->front().enqueued_time_ns < before &&
                static_cast<std::int64_t>(first->front().sequence_number) < info->last_sequence_number)
                more = true;
        }
        if (!more) return {};
        std::promise<result<void>> done;
        auto f = done.get_future();
        log_.trim(streams, before, opts_.trim_batch_rows, [&done](result<void> r) { done.set_value(std::move(r)); });
        if (auto r = f.get(); !r) return r;
        std::unique_lock l(m_);
        if (stop_) return {};
    }
    return {};
}

void telemetry_service::run_trimmer() {
    std::unique_lock l(m_);
    auto last_trim = std::chrono::steady_clock::now();
    const auto tick = std::min<std::chrono::milliseconds>(opts_.trim_interval, std::chrono::seconds(1));
    while (!stop_) {
        if (cv_.wait_for(l, tick, [this] { return stop_; })) return;
        l.unlock();
        reload_routing_if_changed();
        if (std::chrono::steady_clock::now() - last_trim >= opts_.trim_interval) {
            last_trim = std::chrono::steady_clock::now();
            if (auto r = trim_now(); !r && r.error().code != errc::shutting_down)
                log::warn("telemetry.trim_failed", {{"message", r.error().message}});
        }
        l.lock();
    }
}

}  // namespace twinhub::service
