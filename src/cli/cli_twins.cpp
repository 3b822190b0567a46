#include "cli/cli_common.hpp"
#include "cli/progress.hpp"

#include <boost/json/array.hpp>

namespace twinhub::cli {

void add_twin_commands(CLI::App& app, cli_state& s) {
    auto& a = s.a;
    auto run = [&s](CLI::App* c, std::function<int()> f) { s.run(c, std::move(f)); };
    auto& device_id = s.device_id;
    auto& module_id = s.module_id;
    auto& desired = s.desired;
    auto& tags = s.tags;
    auto& json_doc = s.json_doc;
    auto& sql = s.sql;
    auto& top = s.top;
    auto& method_name = s.method_name;
    auto& method_payload = s.method_payload;
    auto& method_timeout = s.method_timeout;
    auto& connect_timeout = s.connect_timeout;
    auto dev_opt = [&s](CLI::App* c) { s.dev_opt(c); };
    auto mod_opt = [&s](CLI::App* c) { s.mod_opt(c); };
    auto etag_opt = [&s](CLI::App* c) { s.etag_opt(c); };

    // ---- device-twin / module-twin ----
    auto twin_commands = [&](CLI::App* group, bool module) {
        group->require_subcommand(1);
        auto* c = leaf(group, "show", module ? "Show a module twin" : "Show a device twin", a);
        dev_opt(c);
        if (module) mod_opt(c);
        run(c, [&, module] {
            auto hub = open_hub(a);
            auto r = module ? hub.get_module_twin(device_id, module_id) : hub.get_twin(device_id);
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(group, "update",
                 "Merge-patch the twin's desired properties and/or tags (null deletes a key); prints the new twin", a);
        dev_opt(c);
        if (module) mod_opt(c);
        c->add_option("--desired", desired, "Desired properties patch, JSON object or @file, e.g. '{\"telemetryInterval\": 10}'");
        c->add_option("--tags", tags, "Tags patch, JSON object or @file");
        etag_opt(c);
        run(c, [&, module]() -> int {
            if (desired.empty() && tags.empty()) throw usage_error{"give --desired and/or --tags"};
            boost::json::object patch;
            if (!desired.empty()) patch["properties"] = boost::json::object{{"desired", parse_json_object_arg("--desired", desired)}};
            if (!tags.empty()) patch["tags"] = parse_json_object_arg("--tags", tags);
            auto hub = open_hub(a);
            auto r = module ? hub.update_module_twin(device_id, module_id, patch, s.e()) : hub.update_twin(device_id, patch, s.e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
        c = leaf(group, "replace", "Replace the twin's tags and desired properties with those of a whole twin document", a);
        dev_opt(c);
        if (module) mod_opt(c);
        c->add_option("-j,--json", json_doc, "Twin document, JSON object or @file: {\"tags\":{...},\"properties\":{\"desired\":{...}}}")
            ->required();
        etag_opt(c);
        run(c, [&, module]() -> int {
            auto doc = parse_json_object_arg("--json", json_doc);
            auto hub = open_hub(a);
            auto r = module ? hub.replace_module_twin(device_id, module_id, doc, s.e()) : hub.replace_twin(device_id, doc, s.e());
            if (!r) return fail(r.error());
            print(r->json);
            return exit_ok;
        });
    };
    twin_commands(app.add_subcommand("device-twin", "Manage device twins"), false);
    twin_commands(app.add_subcommand("module-twin", "Manage module twins"), true);

    // ---- query ----
    {
        auto* c = leaf(&app, "query", "Query twins with the IoT Hub query language; prints a JSON array", a);
        c->add_option("-q,--query-command", sql, "e.g. \"SELECT * FROM devices WHERE tags.location = 'ship'\"")->required();
        c->add_option("--top", top, "At most this many results (default: all)");
        run(c, [&] {
            // Page by page (as query_all does) so a terminal sees the rows arrive.
            auto hub = open_hub(a);
            const std::size_t max = top > 0 ? static_cast<std::size_t>(top) : 0;
            progress bar("query", "rows");
            boost::json::array all;
            std::string continuation;
            for (;;) {
                int size = 100;
                if (max != 0 && max - all.size() < static_cast<std::size_t>(size)) size = static_cast<int>(max - all.size());
                auto page = hub.query(sql, size, continuation);
                if (!page) return fail(page.error());
                for (auto& item : page->items) {
                    if (max != 0 && all.size() >= max) break;
                    all.push_back(std::move(item));
                }
                bar.update(all.size(), max);
                if (!page->continuation || page->continuation->empty() || (max != 0 && all.size() >= max)) break;
                continuation = *page->continuation;
            }
            bar.finish(all.size());
            print(all);
            return exit_ok;
        });
    }

    // ---- direct methods ----
    auto method_commands = [&](bool module) {
        auto* c = leaf(&app, module ? "invoke-module-method" : "invoke-device-method",
                       module ? "Invoke a direct method on a module; prints {\"status\", \"payload\"}"
                              : "Invoke a direct method on a device; prints {\"status\", \"payload\"}",
                       a);
        dev_opt(c);
        if (module) mod_opt(c);
        c->add_option("--mn,--method-name", method_name, "Method name")->required();
        c->add_option("--mp,--method-payload", method_payload, "JSON payload or @file")->capture_default_str();
        c->add_option("--to,--timeout", method_timeout, "Seconds to wait for the answer (5-300)")->capture_default_str();
        c->add_option("--ct,--connect-timeout", connect_timeout, "Seconds to wait for the device to connect")
            ->capture_default_str();
        run(c, [&, module] {
            twinhub::method_invocation call;
            call.method_name = method_name;
            call.payload = parse_json_arg("--method-payload", method_payload);
            call.response_timeout_seconds = method_timeout;
            call.connect_timeout_seconds = connect_timeout;
            auto hub = open_hub(a);
            auto r = module ? hub.invoke_module_method(device_id, module_id, call) : hub.invoke_device_method(device_id, call);
            if (!r) return fail(r.error());
            print(boost::json::object{{"status", r->status}, {"payload", r->payload}});
            return exit_ok;
        });
    };
    method_commands(false);
    method_commands(true);

}

}  // namespace twinhub::cli
