#include "server/server.hpp"

#include "asio/io_pool.hpp"
#include "auth/connection_string.hpp"
#include "common/log.hpp"
#include "http/https_server.hpp"
#include "http/metrics_listener.hpp"
#include "methods/method_router.hpp"
#include "amqp/amqp_server.hpp"
#include "service/c2d_service.hpp"
#include "service/file_upload_service.hpp"
#include "server/storage_https.hpp"
#include "service/telemetry_service.hpp"
#include "methods/channel_set.hpp"
#include "server/remote_methods.hpp"
#include "store/cluster_link.hpp"
#include "mqtt/mqtt_method_channel.hpp"
#include "mqtt/mqtt_server.hpp"
#include "jobs/configuration_service.hpp"
#include "jobs/job_service.hpp"
#include "jobs/import_export_service.hpp"
#include "query/query_engine.hpp"
#include "server/data_dir.hpp"
#include "server/server_tls.hpp"
#include "service/hub_service.hpp"
#include "store/postgres_store.hpp"
#include "service/metrics.hpp"
#include "store/sqlite_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>

#include <unistd.h>

#include <chrono>
#include <future>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>

namespace twinhub::server {

namespace {

// The console's files: --console-dir, else "console" next to the executable (where the build puts
// it: build/bin/console); empty when neither holds index.html.
std::string console_dir(const config& c) {
    std::error_code ec;
    if (!c.console_dir.empty()) {
        if (!std::filesystem::exists(std::filesystem::path(c.console_dir) / "index.html", ec))
            log::warn("server.console_missing", {{"dir", c.console_dir}});
        return c.console_dir;
    }
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    auto dir = exe.parent_path() / "console";
    if (!std::filesystem::exists(dir / "index.html", ec)) return {};
    return dir.string();
}

}  // namespace

struct server::impl {
    config cfg;
    std::optional<data_dir_lock> dir_lock;  // before anything in the directory is read or written
    prepared_data_dir dir;
    std::unique_ptr<store::store> store;
    std::unique_ptr<service::hub_service> hub;
    std::unique_ptr<service::c2d_service> c2d;  // observes hub; destroyed before it
    std::unique_ptr<service::telemetry_service> telemetry;  // uses hub; destroyed before it
    std::unique_ptr<storage_https> storage;                // file upload's and import/export's storage client
    std::unique_ptr<jobs::import_export_service> import_export;  // uses hub and storage; stopped before storage goes
    std::unique_ptr<service::file_upload_service> files;  // uses hub and storage; destroyed before them
    std::unique_ptr<query::query_engine> queries;  // registered with hub; destroyed before it
    boost::asio::io_context ioc;
    // MQTT/TLS sessions: one io_context per thread (see io_pool.hpp); the shared `ioc` runs the
    // listeners, the HTTPS head (and MQTT over WebSocket), timers and signals.
    io_pool mqtt_pool;
    boost::asio::ssl::context tls{boost::asio::ssl::context::tls_server};
    boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
    std::unique_ptr<http::https_server> https;
    std::unique_ptr<methods::method_router> methods;
    std::unique_ptr<remote_methods> cross_node_methods;  // several nodes: uses methods and store
    std::unique_ptr<mqtt::mqtt_server> mqtt;
    std::unique_ptr<mqtt::mqtt_method_channel> method_channel;
    std::unique_ptr<amqp::amqp_server> amqp;
    std::unique_ptr<jobs::job_service> jobs;  // uses hub, queries, methods; destroyed before them
    std::unique_ptr<jobs::configuration_service> configurations;
    std::unique_ptr<http::metrics_listener> metrics_http;  // --metrics-port
    methods::channel_set method_channels;  // MQTT, then AMQP
    bool stopped = false;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::int64_t commits_in_flight_at_stop = 0;
    std::int64_t connected_at_stop = 0;

    explicit impl(const config& c) : cfg(c), ioc(static_cast<int>(c.threads)), mqtt_pool(c.threads) {}

    // The one server context: the HTTPS head (and MQTT over WebSocket behind it) and the MQTT/TLS
    // head both terminate TLS with it.
    // The certificate is the one issued by the hub's CA, or the configured tls files.
    void configure_tls() {
        apply_server_tls_policy(tls);
        const bool own = !cfg.tls_certificate_file.empty();
        const std::string cert = own ? cfg.tls_certificate_file : dir.dir.server_certificate().string();
        const std::string key = own ? cfg.tls_key_file : dir.dir.server_key().string();
        boost::system::error_code ec;
        tls.use_certificate_chain_file(cert, ec);
        if (!ec) tls.use_private_key_file(key, boost::asio::ssl::context::pem, ec);
        if (ec) throw std::runtime_error("cannot load the server certificate " + cert + " and key " + key + ": " + ec.message());
    }

    void stop() {
        if (stopped) return;
        stopped = true;
        log::info("server.stopping");
        auto& m = service::metrics();
        commits_in_flight_at_stop = m.commits_in_flight.load();
        connected_at_stop = hub ? static_cast<std::int64_t>(hub->connected_device_count()) : 0;
        m.https_bound = m.mqtt_bound = m.amqp_bound = false;  // readiness fails while draining
        if (metrics_http) metrics_http->stop();
        if (mqtt) mqtt->stop();
        if (amqp) amqp->stop();
        if (methods) methods->stop();
        if (https) https->stop();
        signals.cancel();
        ioc.stop();
    }
};

server::server(const config& c) : impl_(std::make_unique<impl>(c)) {
    auto& m = *impl_;
    m.dir_lock.emplace(c.data_dir);
    m.dir = prepare_data_dir(c.data_dir, c.host_names);
    if (c.store.empty()) {
        auto st = store::open_sqlite_store(m.dir.dir.store_file());
        if (!st)
            throw std::runtime_error("cannot open the store " + m.dir.dir.store_file().string() + ": " + st.error().message);
        m.store = std::move(*st);
    } else {
        // The URL may carry a password: never in messages or logs.
        auto st = store::open_postgres_store(c.store);
        if (!st) throw std::runtime_error("cannot open the PostgreSQL store: " + st.error().message);
        m.store = std::move(*st);
        log::info("store.opened", {{"backend", "postgresql"}});
    }
    service::hub_options hopts;
    hopts.event_partitions = c.partitions;
    auto hub = service::hub_service::open(*m.store, hopts);
    if (!hub) throw std::runtime_error("cannot load the hub state: " + hub.error().message);
    m.hub = std::move(*hub);
    m.queries = std::make_unique<query::query_engine>(m.hub->twins());  // before serving: loads every twin
    auto c2d = service::c2d_service::open(*m.store, *m.hub);
    if (!c2d) throw std::runtime_error("cannot load the cloud-to-device queues: " + c2d.error().message);
    m.c2d = std::move(*c2d);
    {
        service::telemetry_options to;
        to.retention = c.retention;
        to.hub_name = auth::event_hub_name(m.dir.host_names.front());
        // Routing: inline in the configuration file (not re-read), else the routing file, watched.
        if (!c.routing) to.routing_file = c.routing_file.empty() ? m.dir.dir.root / "routing.json" : std::filesystem::path(c.routing_file);
        std::error_code fe;
        if (!c.routing_file.empty() && !std::filesystem::exists(to.routing_file, fe))
            throw std::runtime_error("config error: telemetry.routing_file: " + c.routing_file + " does not exist");
        m.telemetry = std::make_unique<service::telemetry_service>(*m.hub, to);
        if (c.routing)
            if (auto r = m.telemetry->configure_routing(*c.routing); !r)
                throw std::runtime_error("config error: " + c.routing_origin + ": telemetry.routing: " + r.error().message);
        for (const auto& name : c.consumer_groups) {
            std::promise<result<service::telemetry_service::consumer_group>> p;
            auto f = p.get_future();
            m.telemetry->create_consumer_group(name, [&p](result<service::telemetry_service::consumer_group> g) {
                p.set_value(std::move(g));
            });
            if (auto g = f.get(); !g)
                throw std::runtime_error("config error: " + c.consumer_groups_origin + ": telemetry.consumer_groups: '" + name +
                                         "': " + g.error().message);
        }
    }
    {
        service::file_upload_options fo;
        fo.sas_ttl = c.file_upload_sas_ttl;
        // Import/export jobs reach the user's containers through their SAS URIs: the client is
        // there with or without the hub's own storage account.
        std::vector<std::filesystem::path> cas{m.dir.dir.ca_certificate()};
        if (!c.storage_ca_file.empty()) cas.emplace_back(c.storage_ca_file);
        m.storage = std::make_unique<storage_https>(std::move(cas));
        if (!c.storage_connection_string.empty()) {
            auto a = service::parse_storage_connection_string(c.storage_connection_string, c.storage_container);
            if (!a) throw std::runtime_error("--storage-connection-string: " + a.error().message);
            fo.storage = std::move(*a);
            fo.client = m.storage.get();
        }
        auto files = service::file_upload_service::open(*m.hub, std::move(fo));
        if (!files) throw std::runtime_error("cannot load the file upload notifications: " + files.error().message);
        m.files = std::move(*files);
    }
    m.configure_tls();
    m.methods = std::make_unique<methods::method_router>(m.ioc);

    mqtt::mqtt_options mo;
    mo.host_names = m.dir.host_names;
    mo.bind_address = c.bind_address;
    mo.port = c.mqtt_port;
    mo.fault_injection = c.fault_injection;
    mo.session_context = [&m]() -> boost::asio::io_context& { return m.mqtt_pool.next(); };
    m.mqtt = std::make_unique<mqtt::mqtt_server>(m.ioc, m.tls, *m.hub, mo);
    m.mqtt->set_c2d_service(m.c2d.get());
    m.method_channel = std::make_unique<mqtt::mqtt_method_channel>(*m.methods, *m.mqtt);
    if (auto r = m.mqtt->start(); !r) throw std::runtime_error(r.error().message);
    service::metrics().mqtt_bound = true;

    amqp::amqp_options ao;
    ao.host_names = m.dir.host_names;
    ao.bind_address = c.bind_address;
    ao.port = c.amqp_port;
    ao.fault_injection = c.fault_injection;
    ao.event_hub_name = auth::event_hub_name(m.dir.host_names.front());
    ao.session_context = [&m]() -> boost::asio::io_context& { return m.mqtt_pool.next(); };
    m.amqp = std::make_unique<amqp::amqp_server>(m.ioc, m.tls, *m.hub, ao);
    m.amqp->set_method_router(m.methods.get());
    m.amqp->set_c2d_service(m.c2d.get());
    m.amqp->set_telemetry_service(m.telemetry.get());
    m.amqp->set_file_upload_service(m.files.get());
    m.method_channels.add(m.method_channel.get());
    m.method_channels.add(&m.amqp->method_channel());
    if (auto* link = dynamic_cast<store::cluster_link*>(m.store.get())) {
        m.cross_node_methods = std::make_unique<remote_methods>(*link, *m.methods);
        m.method_channels.add(m.cross_node_methods.get());
    }
    m.methods->set_channel(&m.method_channels);
    if (auto r = m.amqp->start(); !r) throw std::runtime_error(r.error().message);
    service::metrics().amqp_bound = true;

    m.jobs = std::make_unique<jobs::job_service>(*m.hub, *m.queries, m.methods.get());
    m.queries->set_job_rows([j = m.jobs.get()] { return j->device_job_rows(); });
    m.jobs->start();
    m.configurations = std::make_unique<jobs::configuration_service>(*m.hub, *m.queries);
    m.configurations->start();
    m.import_export = std::make_unique<jobs::import_export_service>(*m.hub, *m.storage);
    m.import_export->start();

    http::https_options ho;
    ho.host_names = m.dir.host_names;
    ho.bind_address = c.bind_address;
    ho.port = c.https_port;
    ho.methods = m.methods.get();
    ho.queries = m.queries.get();
    ho.c2d = m.c2d.get();
    ho.telemetry = m.telemetry.get();
    ho.jobs = m.jobs.get();
    ho.configurations = m.configurations.get();
    ho.metrics_token = c.metrics_token;
    ho.store_file = m.dir.dir.store_file().string();
    ho.data_dir = m.dir.dir.root.string();
    ho.console_dir = c.console ? console_dir(c) : std::string();
    ho.files = m.files.get();
    ho.import_export = m.import_export.get();
    net::websocket_handlers ws{{"mqtt", m.mqtt->websocket_handler()}, {"AMQPWSB10", m.amqp->websocket_handler()}};
    m.https = std::make_unique<http::https_server>(m.ioc, m.tls, *m.hub, ho, std::move(ws));
    if (auto r = m.https->start(); !r) throw std::runtime_error(r.error().message);
    service::metrics().https_bound = true;
    if (c.metrics_port != 0) {
        http::metrics_listener_options mlo;
        mlo.bind_address = c.metrics_bind;
        mlo.port = c.metrics_port;
        mlo.store_file = ho.store_file;
        mlo.methods = m.methods.get();
        m.metrics_http = std::make_unique<http::metrics_listener>(m.ioc, *m.hub, mlo);
        if (auto r = m.metrics_http->start(); !r) throw std::runtime_error(r.error().message);
    }

    m.signals.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (!ec) {
            log::info("server.signal", {{"signal", sig}});
            impl_->stop();
        }
    });

    const std::string& host = m.dir.host_names.front();
    if (m.dir.first_start) {
        for (const auto& p : m.hub->policies()) {
            if (p.key_name != "iothubowner") continue;
            std::cout << "twinhub: new hub created in " << std::filesystem::absolute(c.data_dir).lexically_normal().string() << "\n"
                      << "Connection string (iothubowner): "
                      << (make_output_private(STDOUT_FILENO)
                              ? auth::format_service_connection_string(host, p.key_name, p.primary_key)
                              : std::string("not printed: standard output is a file that others can read"))
                      << "\n"
                      << "CA certificate: " << std::filesystem::absolute(m.dir.dir.ca_certificate()).lexically_normal().string() << "\n"
                      << "Show it again with: twinhub hub connection-string show --data-dir " << c.data_dir.string()
                      << std::endl;
        }
    }
    // The one-line start summary (the store URL only redacted: it may hold a password).
    std::string names;
    for (const auto& n : m.dir.host_names) names += (names.empty() ? "" : ",") + n;
    const std::string store_desc = c.store.empty() ? "sqlite:" + std::filesystem::absolute(m.dir.dir.store_file()).lexically_normal().string()
                                                   : redact_url(c.store);
    log::info("server.ready", {{"host_names", names},
                               {"https_port", static_cast<std::int64_t>(c.https_port)},
                               {"mqtt_port", static_cast<std::int64_t>(c.mqtt_port)},
                               {"amqp_port", static_cast<std::int64_t>(c.amqp_port)},
                               {"bind", c.bind_address},
                               {"data_dir", std::filesystem::absolute(c.data_dir).lexically_normal().string()},
                               {"store", store_desc},
                               {"config", c.config_file.empty() ? std::string("none") : c.config_file},
                               {"tls", c.tls_certificate_file.empty() ? std::string("generated CA") : c.tls_certificate_file},
                               {"partitions", static_cast<std::int64_t>(m.hub->event_partition_count())},
                               {"retention_s", static_cast<std::int64_t>(c.retention.count())}, {"fault_injection", c.fault_injection},
                               {"file_upload", m.files->configured()},
                               {"threads", static_cast<std::int64_t>(c.threads)},
                               {"metrics_port", static_cast<std::int64_t>(c.metrics_port)},
                               {"console", ho.console_dir.empty() ? std::string("off") : "https://" + host + ":" +
                                                                        std::to_string(c.https_port) + "/console/"}});
}

server::~server() {
    auto& m = *impl_;
    m.stop();
    m.metrics_http.reset();
    m.https.reset();
    m.method_channel.reset();
    if (m.jobs) m.jobs->stop();
    if (m.configurations) m.configurations->stop();
    if (m.import_export) m.import_export->stop();
    if (m.mqtt) m.mqtt->set_c2d_service(nullptr);  // sessions may outlive the server; c2d goes below
    m.mqtt.reset();
    if (m.amqp) m.amqp->set_c2d_service(nullptr);
    if (m.amqp) m.amqp->set_telemetry_service(nullptr);
    if (m.amqp) m.amqp->set_file_upload_service(nullptr);
    m.methods.reset();
    m.jobs.reset();
    m.configurations.reset();
    m.c2d.reset();
    m.storage.reset();  // fails what is queued; its handlers still reach `files` and `import_export`
    m.import_export.reset();  // stopped above: its worker no longer waits for storage
    m.files.reset();
    m.telemetry.reset();
    m.queries.reset();
    m.hub.reset();
    if (m.store) m.store->close();
    // The one-line shutdown summary: what ran, and what the store flushed before closing (the
    // commits still queued when the stop began completed; every acknowledged write is durable).
    auto& mt = service::metrics();
    std::uint64_t commits = 0;
    for (const auto& b : mt.commit_latency_us.buckets) commits += b.load(std::memory_order_relaxed);
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - m.started);
    log::info("server.stopped", {{"uptime_s", static_cast<std::int64_t>(uptime.count())},
                                 {"commits", static_cast<std::int64_t>(commits)},
                                 {"commits_flushed_at_stop", m.commits_in_flight_at_stop},
                                 {"commit_failures", static_cast<std::int64_t>(mt.commit_failures.get())},
                                 {"connections_closed", m.connected_at_stop},
                                 {"telemetry_stored", static_cast<std::int64_t>(mt.d2c_telemetry_ingress_success.get())},
                                 {"store", m.cfg.store.empty() ? std::string("sqlite closed") : std::string("postgresql closed")}});
}

void server::run() {
    auto& m = *impl_;
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < m.cfg.threads; ++i) threads.emplace_back([&m] { m.ioc.run(); });
    m.mqtt_pool.start();
    m.ioc.run();
    for (auto& t : threads) t.join();
    m.mqtt_pool.stop();
}

void server::request_stop() {
    boost::asio::post(impl_->ioc, [this] { impl_->stop(); });
}

}  // namespace twinhub::server
