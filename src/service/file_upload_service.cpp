// file_upload_service: upload correlations, the durable notification queue and its locks.
#include "service/file_upload_service.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "service/hub_service.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace twinhub::service {

namespace json = boost::json;

namespace {

constexpr std::string_view key_prefix = "filenotification/";

std::string setting_key(std::uint64_t seq) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
    return std::string(key_prefix) + buf;
}

std::string to_doc(const file_notification& n) {
    json::object o;
    o["deviceId"] = n.device_id;
    o["blobName"] = n.blob_name;
    o["blobUri"] = n.blob_uri;
    o["lastUpdatedTime"] = n.last_updated_time;
    o["blobSizeInBytes"] = n.blob_size;
    o["enqueuedTimeUtc"] = n.enqueued_time;
    o["expiryNs"] = n.expiry_ns;
    o["deliveryCount"] = n.delivery_count;
    return json::serialize(o);
}

std::optional<file_notification> from_doc(std::uint64_t seq, std::string_view doc) {
    boost::system::error_code ec;
    auto v = json::parse(doc, ec);
    if (ec || !v.is_object()) return std::nullopt;
    auto& o = v.get_object();
    auto str = [&](std::string_view k) -> std::string {
        auto* x = o.if_contains(k);
        return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    auto num = [&](std::string_view k) -> std::int64_t {
        auto* x = o.if_contains(k);
        if (!x) return 0;
        if (x->is_int64()) return x->get_int64();
        if (x->is_uint64()) return static_cast<std::int64_t>(x->get_uint64());
        return 0;
    };
    file_notification n;
    n.sequence_number = seq;
    n.device_id = str("deviceId");
    n.blob_name = str("blobName");
    n.blob_uri = str("blobUri");
    n.last_updated_time = str("lastUpdatedTime");
    n.blob_size = static_cast<std::uint64_t>(num("blobSizeInBytes"));
    n.enqueued_time = str("enqueuedTimeUtc");
    n.expiry_ns = num("expiryNs");
    n.delivery_count = static_cast<std::uint32_t>(num("deliveryCount"));
    if (n.device_id.empty()) return std::nullopt;
    return n;
}

std::string new_token() {
    std::string b = random_bytes(16);
    b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[(static_cast<unsigned char>(b[i]) >> 4) & 0xf];
        out += hex[static_cast<unsigned char>(b[i]) & 0xf];
    }
    return out;
}

std::int64_t ns_of(time_point t) { return t.time_since_epoch().count(); }

}  // namespace

struct file_upload_service::impl {
    struct correlation {
        store::identity_key device;
        std::string blob_name;
        time_point expiry;
        bool finishing = false;  // a notify is reading the blob's properties
    };
    struct entry {
        file_notification n;
        std::string lock;
        time_point lock_expiry;
    };

    hub_service& hub;
    file_upload_options opts;

    mutable std::mutex mu;
    std::map<std::string, correlation, std::less<>> correlations;
    std::map<std::uint64_t, entry> queue;
    std::map<std::string, std::uint64_t, std::less<>> locks;
    std::uint64_t next_seq = 1;
    std::map<subscription, std::shared_ptr<std::function<void()>>> subscribers;
    subscription next_sub = 1;
    bool container_ready = false;
    bool stopping = false;
    std::condition_variable cv;
    std::thread sweeper;
    // Store commits whose handlers use this service; the destructor waits for them.
    std::mutex out_mu;
    std::condition_variable out_cv;
    std::size_t outstanding = 0;

    impl(hub_service& h, file_upload_options o) : hub(h), opts(std::move(o)) {}

    time_point clock_now() const { return opts.clock ? opts.clock() : twinhub::now(); }

    std::vector<std::shared_ptr<std::function<void()>>> subscribers_copy() const {
        std::vector<std::shared_ptr<std::function<void()>>> out;
        for (auto& [_, f] : subscribers) out.push_back(f);
        return out;
    }

    static void notify(const std::vector<std::shared_ptr<std::function<void()>>>& fs) {
        for (auto& f : fs) (*f)();
    }

    void drop(std::uint64_t seq, const char* why) {
        log::info("files.notification_dropped", {{"seq", static_cast<std::int64_t>(seq)}, {"why", why}});
        hub.put_setting(setting_key(seq), "", [](result<void>) {});
    }

    // Under mu: ends a lock without completion.
    void end_lock(std::map<std::uint64_t, entry>::iterator it) {
        locks.erase(it->second.lock);
        it->second.lock.clear();
        ++it->second.n.delivery_count;
        if (it->second.n.delivery_count >= opts.max_delivery_count) {
            const auto seq = it->first;
            queue.erase(it);
            drop(seq, "delivery count exceeded");
            return;
        }
        hub.put_setting(setting_key(it->first), to_doc(it->second.n), [](result<void>) {});
    }

    std::string blob_url(const std::string& blob) const {
        const auto& a = *opts.storage;
        return a.blob_endpoint + "/" + a.container + "/" + blob_path_encode(blob);
    }
};

result<std::unique_ptr<file_upload_service>> file_upload_service::open(hub_service& hub, file_upload_options opts) {
    auto p = std::make_unique<impl>(hub, std::move(opts));
    for (auto& [key, doc] : hub.settings_with_prefix(key_prefix)) {
        std::uint64_t seq = 0;
        try {
            seq = std::stoull(key.substr(key_prefix.size()));
        } catch (...) {
            continue;
        }
        auto n = from_doc(seq, doc);
        if (!n) {
            log::warn("files.notification_corrupt", {{"key", key}});
            continue;
        }
        p->next_seq = std::max(p->next_seq, seq + 1);
        p->queue.emplace(seq, impl::entry{std::move(*n), {}, {}});
    }
    std::unique_ptr<file_upload_service> s(new file_upload_service(std::move(p)));
    auto& m = *s->impl_;
    if (m.opts.storage && m.opts.client) {
        // The container is created now (best effort); begin_upload retries until it exists.
        auto* raw = &m;
        m.opts.client->create_container(m.opts.storage->blob_endpoint + "/" + m.opts.storage->container + "?restype=container&" +
                                            container_account_sas(*m.opts.storage, "c", raw->clock_now() + std::chrono::minutes(10)),
                                        [raw](result<void> r) {
                                            std::lock_guard l(raw->mu);
                                            if (r) raw->container_ready = true;
                                            else log::warn("files.container_failed", {{"why", r.error().message}});
                                        });
    }
    if (m.opts.sweep_interval.count() > 0) {
        m.sweeper = std::thread([&m, self = s.get()] {
            std::unique_lock l(m.mu);
            while (!m.stopping) {
                m.cv.wait_for(l, m.opts.sweep_interval, [&] { return m.stopping; });
                if (m.stopping) break;
                l.unlock();
                self->sweep();
                l.lock();
            }
        });
    }
    return s;
}

file_upload_service::file_upload_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

file_upload_service::~file_upload_service() {
    {
        std::lock_guard l(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    if (impl_->sweeper.joinable()) impl_->sweeper.join();
    std::unique_lock l(impl_->out_mu);
    impl_->out_cv.wait(l, [&] { return impl_->outstanding == 0; });
}

bool file_upload_service::configured() const noexcept { return impl_->opts.storage.has_value(); }

std::size_t file_upload_service::active_uploads(const store::identity_key& device) const {
    std::lock_guard l(impl_->mu);
    std::size_t n = 0;
    const auto t = impl_->clock_now();
    for (auto& [_, c] : impl_->correlations)
        if (c.device == device && c.expiry > t) ++n;
    return n;
}

void file_upload_service::begin_upload(const store::identity_key& device, std::string blob_name,
                                       handler<upload_grant> done) {
    auto& m = *impl_;
    if (!m.opts.storage || !m.opts.client)
        return done(error{errc::not_found, "File upload is not configured on this hub: start twinhubd with "
                                           "--storage-connection-string (see README, File upload)."});
    if (blob_name.empty() || blob_name.size() > 1024)
        return done(error{errc::invalid_argument, "blobName must have 1 to 1024 characters."});
    for (unsigned char c : blob_name)
        if (c < 0x20 || c == 0x7f || c == '?' || c == '#' || c == '\\')
            return done(error{errc::invalid_argument, "blobName must not contain control characters, '?', '#' or '\\'."});
    if (blob_name.front() == '/' || blob_name.find("//") != std::string::npos || blob_name.back() == '/' ||
        blob_name.back() == '.')
        return done(error{errc::invalid_argument, "blobName must not start or end with '/', end with '.', or contain '//'."});
    bool ready = false;
    {
        std::lock_guard l(m.mu);
        const auto t = m.clock_now();
        std::erase_if(m.correlations, [&](auto& kv) { return kv.second.expiry <= t && !kv.second.finishing; });
        std::size_t active = 0;
        for (auto& [_, c] : m.correlations)
            if (c.device == device) ++active;
        if (active >= m.opts.max_active_per_device)
            return done(error{errc::throttled, "The device has " + std::to_string(active) +
                                                   " file uploads in progress, the most IoT Hub allows; notify "
                                                   "the hub of their outcome first."});
        ready = m.container_ready;
    }
    auto grant = [this, device, blob_name = std::move(blob_name), done]() {
        auto& m = *impl_;
        upload_grant g;
        g.correlation_id = random_hex(24);
        g.host_name = m.opts.storage->host_name();
        g.container_name = m.opts.storage->container;
        g.blob_name = device.device_id + "/" + blob_name;
        const auto t = m.clock_now();
        const auto expiry = t + m.opts.sas_ttl;
        g.sas_token = "?" + blob_service_sas(*m.opts.storage, g.blob_name, "rw", expiry);
        {
            std::lock_guard l(m.mu);
            m.correlations[g.correlation_id] = impl::correlation{device, g.blob_name, expiry, false};
        }
        done(std::move(g));
    };
    if (ready) return grant();
    const auto& a = *m.opts.storage;
    m.opts.client->create_container(
        a.blob_endpoint + "/" + a.container + "?restype=container&" +
            container_account_sas(a, "c", m.clock_now() + std::chrono::minutes(10)),
        [this, grant = std::move(grant), done](result<void> r) {
            if (!r)
                return done(error{errc::connection_failed,
                                  "The hub cannot reach its storage account to create the file upload container: " +
                                      r.error().message});
            {
                std::lock_guard l(impl_->mu);
                impl_->container_ready = true;
            }
            grant();
        });
}

void file_upload_service::finish_upload(const store::identity_key& device, upload_status status, handler<void> done) {
    auto& m = *impl_;
    if (!m.opts.storage || !m.opts.client)
        return done(error{errc::not_found, "File upload is not configured on this hub."});
    std::string blob;
    {
        std::lock_guard l(m.mu);
        auto it = m.correlations.find(status.correlation_id);
        if (it == m.correlations.end() || !(it->second.device == device) || it->second.finishing)
            return done(error{errc::message_lock_lost, "The correlationId is not one this device was given."});
        if (it->second.expiry <= m.clock_now()) {
            m.correlations.erase(it);
            return done(error{errc::precondition_failed, "The correlationId has expired."});
        }
        if (!status.is_success) {
            log::info("files.upload_failed", {{"device", device.device_id}, {"status", status.status_code}});
            m.correlations.erase(it);
            return done(result<void>{});
        }
        it->second.finishing = true;
        blob = it->second.blob_name;
    }
    const std::string url = m.blob_url(blob);
    const std::string read_url = url + "?" + blob_service_sas(*m.opts.storage, blob, "r", m.clock_now() + std::chrono::minutes(10));
    m.opts.client->blob_properties_of(read_url, [this, corr = status.correlation_id, device, blob, url,
                                                 done](result<blob_properties> props) {
        auto& m = *impl_;
        if (!props) {
            std::lock_guard l(m.mu);
            if (auto it = m.correlations.find(corr); it != m.correlations.end()) it->second.finishing = false;
            return done(error{errc::connection_failed, "The uploaded blob cannot be read from storage: " + props.error().message});
        }
        file_notification n;
        {
            std::lock_guard l(m.mu);
            n.sequence_number = m.next_seq++;
        }
        const auto t = m.clock_now();
        n.device_id = device.device_id;
        n.blob_name = blob;
        n.blob_uri = url;
        n.blob_size = props->size;
        n.last_updated_time = props->last_modified.empty() ? format_time(t) : props->last_modified;
        n.enqueued_time = format_time(t);
        n.expiry_ns = ns_of(t + m.opts.notification_ttl);
        {
            std::lock_guard l(m.out_mu);
            ++m.outstanding;
        }
        m.hub.put_setting(setting_key(n.sequence_number), to_doc(n), [this, n, corr, done](result<void> r) {
            auto& m = *impl_;
            struct release {
                impl& m;
                ~release() {
                    std::lock_guard l(m.out_mu);
                    if (--m.outstanding == 0) m.out_cv.notify_all();
                }
            } guard{m};
            std::vector<std::shared_ptr<std::function<void()>>> fs;
            {
                std::lock_guard l(m.mu);
                auto it = m.correlations.find(corr);
                if (!r) {
                    if (it != m.correlations.end()) it->second.finishing = false;
                } else {
                    if (it != m.correlations.end()) m.correlations.erase(it);
                    m.queue.emplace(n.sequence_number, impl::entry{n, {}, {}});
                    fs = m.subscribers_copy();
                }
            }
            impl::notify(fs);
            done(r);
        });
    });
}

file_upload_service::subscription file_upload_service::subscribe(std::function<void()> notify) {
    auto f = std::make_shared<std::function<void()>>(std::move(notify));
    bool now = false;
    subscription s;
    {
        std::lock_guard l(impl_->mu);
        s = impl_->next_sub++;
        impl_->subscribers.emplace(s, f);
        for (auto& [_, e] : impl_->queue)
            if (e.lock.empty()) now = true;
    }
    if (now) (*f)();
    return s;
}

void file_upload_service::unsubscribe(subscription s) {
    std::lock_guard l(impl_->mu);
    impl_->subscribers.erase(s);
}

std::optional<locked_file_notification> file_upload_service::lock_next(std::chrono::milliseconds lock_duration) {
    auto& m = *impl_;
    std::lock_guard l(m.mu);
    const auto t = m.clock_now();
    for (auto it = m.queue.begin(); it != m.queue.end();) {
        if (!it->second.lock.empty()) {
            ++it;
            continue;
        }
        if (it->second.n.expiry_ns <= ns_of(t)) {
            m.drop(it->first, "expired");
            it = m.queue.erase(it);
            continue;
        }
        locked_file_notification out;
        out.lock_token = new_token();
        out.notification = it->second.n;
        it->second.lock = out.lock_token;
        it->second.lock_expiry = t + lock_duration;
        m.locks.emplace(out.lock_token, it->first);
        return out;
    }
    return std::nullopt;
}

void file_upload_service::complete(std::string_view lock_token, handler<void> done) {
    auto& m = *impl_;
    std::uint64_t seq = 0;
    {
        std::lock_guard l(m.mu);
        auto it = m.locks.find(lock_token);
        if (it == m.locks.end())
            return done(error{errc::message_lock_lost, "The notification's lock token is unknown or its lock expired."});
        seq = it->second;
        m.locks.erase(it);
        m.queue.erase(seq);
    }
    m.hub.put_setting(setting_key(seq), "", std::move(done));
}

result<void> file_upload_service::abandon(std::string_view lock_token) {
    auto& m = *impl_;
    std::vector<std::shared_ptr<std::function<void()>>> fs;
    {
        std::lock_guard l(m.mu);
        auto it = m.locks.find(lock_token);
        if (it == m.locks.end())
            return error{errc::message_lock_lost, "The notification's lock token is unknown or its lock expired."};
        auto q = m.queue.find(it->second);
        if (q != m.queue.end()) m.end_lock(q);
        else m.locks.erase(it);
        fs = m.subscribers_copy();
    }
    impl::notify(fs);
    return {};
}

std::size_t file_upload_service::notification_count() const {
    std::lock_guard l(impl_->mu);
    return impl_->queue.size();
}

void file_upload_service::sweep() {
    auto& m = *impl_;
    std::vector<std::shared_ptr<std::function<void()>>> fs;
    {
        std::lock_guard l(m.mu);
        const auto t = m.clock_now();
        bool freed = false;
        for (auto it = m.queue.begin(); it != m.queue.end();) {
            auto next = std::next(it);
            if (!it->second.lock.empty() && it->second.lock_expiry <= t) {
                m.end_lock(it);
                freed = true;
            } else if (it->second.lock.empty() && it->second.n.expiry_ns <= ns_of(t)) {
                m.drop(it->first, "expired");
                m.queue.erase(it);
            }
            it = next;
        }
        std::erase_if(m.correlations, [&](auto& kv) { return kv.second.expiry <= t && !kv.second.finishing; });
        if (freed) fs = m.subscribers_copy();
    }
    impl::notify(fs);
}

}  // namespace twinhub::service
