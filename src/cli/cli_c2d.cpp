#include "cli/cli_common.hpp"

#include "common/encoding.hpp"

#include <chrono>
#include <iostream>

namespace twinhub::cli {
namespace {

// --props "a=1;b=2" (az's format): pairs split at ';', each at its first '='.
std::vector<std::pair<std::string, std::string>> parse_props(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string_view rest = text;
    while (!rest.empty()) {
        auto semi = rest.find(';');
        std::string_view pair = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw usage_error{"--props must look like \"key0=value0;key1=value1\"; got '" + std::string(pair) + "'"};
        out.emplace_back(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
    }
    return out;
}

// A random (version 4) UUID, the message id az gives a C2D message that names none.
std::string new_uuid() {
    std::string b = twinhub::random_bytes(16);
    b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += hex[(static_cast<unsigned char>(b[i]) >> 4) & 0xf];
        s += hex[static_cast<unsigned char>(b[i]) & 0xf];
    }
    return s;
}

boost::json::object feedback_json(const twinhub::feedback_record& r) {
    boost::json::object o{{"originalMessageId", r.original_message_id},
                          {"description", r.description},
                          {"deviceGenerationId", r.device_generation_id},
                          {"deviceId", r.device_id}};
    if (!r.module_id.empty()) o["moduleId"] = r.module_id;
    o["enqueuedTimeUtc"] = r.enqueued_time_utc;
    o["statusCode"] = r.status_code;
    return o;
}

// az iot device c2d-message receive's shape: {"data", "properties": {"system", "app"}, "etag"}.
boost::json::object received_json(const twinhub::received_c2d_message& m) {
    boost::json::object system;
    auto put = [&](const char* k, const std::string& v) {
        if (!v.empty()) system[k] = v;
    };
    put("iothub-messageid", m.message_id);
    put("iothub-correlationid", m.correlation_id);
    if (m.sequence_number) system["iothub-sequencenumber"] = std::to_string(m.sequence_number);
    put("iothub-enqueuedtime", m.enqueued_time_utc);
    put("iothub-expiry", m.expiry_time_utc);
    system["iothub-deliverycount"] = std::to_string(m.delivery_count);
    put("iothub-to", m.to);
    put("iothub-userid", m.user_id);
    put("iothub-ack", m.ack);
    put("content-type", m.content_type);
    put("content-encoding", m.content_encoding);
    boost::json::object app;
    for (const auto& [k, v] : m.properties) app[k] = v;
    return {{"data", m.body}, {"properties", {{"system", std::move(system)}, {"app", std::move(app)}}}, {"etag", m.lock_token}};
}

}  // namespace

void add_c2d_commands(CLI::App& app, cli_state& s) {
    auto& a = s.a;
    auto run = [&s](CLI::App* c, std::function<int()> f) { s.run(c, std::move(f)); };
    auto& device_id = s.device_id;
    auto& module_id = s.module_id;
    auto& data = s.data;
    auto& props = s.props;
    auto& ack = s.ack;
    auto& mid = s.mid;
    auto& cid = s.cid;
    auto& ct = s.ct;
    auto& ce = s.ce;
    auto& lock_token = s.lock_token;
    auto& expiry_ms = s.expiry_ms;
    auto& wait = s.wait;
    auto& settle_complete = s.settle_complete;
    auto& settle_abandon = s.settle_abandon;
    auto& settle_reject = s.settle_reject;
    auto& wait_timeout = s.wait_timeout;
    auto dev_opt = [&s](CLI::App* c) { s.dev_opt(c); };

    // ---- c2d-message (az iot device c2d-message) ----
    {
        auto* g = app.add_subcommand("c2d-message", "Cloud-to-device messages: send and purge (service side), "
                                                    "receive/complete/abandon/reject (device HTTPS API)");
        g->require_subcommand(1);

        auto* c = leaf(g, "send",
                       "Send a C2D message over AMQP (port 5671: --amqp-port or env TWINHUB_AMQP_PORT). With --wait, "
                       "print the feedback record for it once the device settled it (feedback batches read while "
                       "waiting are accepted, as az does)",
                       a);
        dev_opt(c);
        c->add_option("-m,--module-id", module_id, "Module id: send to the module (a twinhub extension)");
        c->add_option("--data,--da", data, "Message body")->capture_default_str();
        c->add_option("--props,--properties,-p", props, "Application properties: \"key0=value0;key1=value1\"");
        c->add_option("--ack", ack, "Feedback to ask for (iothub-ack): none | positive | negative | full")
            ->check(CLI::IsMember({"none", "positive", "negative", "full"}));
        c->add_option("--mid,--message-id", mid, "Message id (default: a new UUID)");
        c->add_option("--cid,--correlation-id", cid, "Correlation id");
        c->add_option("--ct,--content-type", ct, "Content type, e.g. application/json");
        c->add_option("--ce,--content-encoding", ce, "Content encoding")->capture_default_str();
        c->add_option("--expiry,--expiry-time-utc", expiry_ms, "Absolute expiry, milliseconds since the Unix epoch");
        c->add_flag("--wait,-w", wait, "Wait for the feedback record (needs --ack positive, negative or full)");
        c->add_option("--to,--timeout", wait_timeout, "With --wait: seconds to wait for the feedback")->capture_default_str();
        c->add_option("--amqp-port", a.amqp_port, "AMQP port when it is not 5671 (default: env TWINHUB_AMQP_PORT)");
        run(c, [&]() -> int {
            twinhub::c2d_message m(data);
            m.message_id = mid.empty() ? new_uuid() : mid;
            m.correlation_id = cid;
            m.content_type = ct;
            m.content_encoding = ce;
            if (expiry_ms > 0)
                m.expiry_time = std::chrono::system_clock::time_point{std::chrono::milliseconds(expiry_ms)};
            if (!ack.empty()) m.ack = *twinhub::parse_c2d_ack(ack);
            m.properties = parse_props(props);
            if (wait && (m.ack == twinhub::c2d_ack::none))
                throw usage_error{"--wait needs --ack positive, negative or full: the hub sends feedback only when asked"};
            auto sc = open_amqp(a);
            auto r = module_id.empty() ? sc.send(device_id, m) : sc.send(device_id, module_id, m);
            if (!r) return fail(r.error());
            if (!wait) return exit_ok;
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_timeout);
            while (std::chrono::steady_clock::now() < deadline) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
                auto batch = sc.receive_feedback(std::min<std::chrono::milliseconds>(left, std::chrono::seconds(5)));
                if (!batch) return fail(batch.error());
                for (const auto& rec : *batch) {
                    if (rec.original_message_id != m.message_id) continue;
                    print(feedback_json(rec));
                    return exit_ok;
                }
            }
            std::cerr << "twinhub: Timeout: no feedback for message '" << m.message_id << "' within " << wait_timeout
                      << " s (the device has not settled it)\n";
            return exit_failed;
        });

        c = leaf(g, "purge", "Remove every message queued for a device (or, with -m, a module); prints the count", a);
        dev_opt(c);
        c->add_option("-m,--module-id", module_id, "Module id: purge the module's queue (a twinhub extension)");
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.purge_c2d_messages(device_id, module_id);
            if (!r) return fail(r.error());
            boost::json::object o{{"totalMessagesPurged", r->total_messages_purged}, {"deviceId", r->device_id}};
            if (r->module_id.empty()) o["moduleId"] = nullptr;
            else o["moduleId"] = r->module_id;
            print(o);
            return exit_ok;
        });

        c = leaf(g, "receive",
                 "Receive the next C2D message as the device (device HTTPS API; the policy needs DeviceConnect); "
                 "prints {\"data\", \"properties\": {\"system\", \"app\"}, \"etag\"}, nothing when the queue is empty",
                 a);
        dev_opt(c);
        auto* cm = c->add_flag("--complete", settle_complete, "Complete the message at once");
        auto* ab = c->add_flag("--abandon", settle_abandon, "Abandon the message at once");
        auto* rj = c->add_flag("--reject", settle_reject, "Reject the message at once");
        cm->excludes(ab)->excludes(rj);
        ab->excludes(rj);
        run(c, [&] {
            auto hub = open_hub(a);
            auto r = hub.receive_c2d_message(device_id);
            if (!r) return fail(r.error());
            if (!*r) return exit_ok;
            const auto& m = **r;
            if (settle_complete || settle_abandon || settle_reject) {
                auto s = settle_complete ? hub.complete_c2d_message(device_id, m.lock_token)
                         : settle_abandon ? hub.abandon_c2d_message(device_id, m.lock_token)
                                          : hub.reject_c2d_message(device_id, m.lock_token);
                if (!s) return fail(s.error());
            }
            print(received_json(m));
            return exit_ok;
        });

        auto settle_command = [&](const char* name, const char* what, int kind) {
            auto* s = leaf(g, name, what, a);
            dev_opt(s);
            s->add_option("--lock-token,--etag,-e", lock_token, "The lock token: the etag that receive printed")->required();
            run(s, [&, kind] {
                auto hub = open_hub(a);
                auto r = kind == 0   ? hub.complete_c2d_message(device_id, lock_token)
                         : kind == 1 ? hub.abandon_c2d_message(device_id, lock_token)
                                     : hub.reject_c2d_message(device_id, lock_token);
                if (!r) return fail(r.error());
                return exit_ok;
            });
        };
        settle_command("complete", "Complete a received message: it leaves the queue (Success feedback if asked)", 0);
        settle_command("abandon", "Abandon a received message: it goes back to the queue", 1);
        settle_command("reject", "Reject a received message: it is dead-lettered (Rejected feedback if asked)", 2);
    }

}

}  // namespace twinhub::cli
