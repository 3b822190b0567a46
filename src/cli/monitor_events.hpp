// twinhub monitor-events: az iot hub monitor-events on the C++ SDK's event_consumer. Streams one
// JSON object per device-to-cloud event on stdout, in az's shape:
//   {"event": {"origin": <device>, "module": <module>, "interface": "", "component": "",
//              "properties": {"system": {...}, "application": {...}}, "annotations": {...},
//              "payload": <JSON when the content type is application/json, else text>}}
// with "properties" only for --props sys/app/all and "annotations" only for anno/all.
// Thread safety: single-threaded command code.
#pragma once

#include "twinhub/event_consumer.hpp"

#include <boost/json/object.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::cli {

struct monitor_args {
    std::string device_pattern;  // -d: device id, '*' and '?' wildcards
    std::string module_pattern;  // -m: module id, same wildcards
    std::string consumer_group = "$Default";
    std::vector<std::string> props;   // sys, app, anno, all
    int timeout = 300;                // seconds; 0: until interrupted
    long long enqueued_time_ms = -1;  // --enqueued-time; -1: use `start`
    std::string start = "latest";     // latest | earliest
};

// Adds monitor-events' own options to `c`.
void add_monitor_options(CLI::App* c, monitor_args& m);

// Runs the monitor; returns the exit code. `fail` prints an SDK error and gives its exit code.
int monitor_events(const monitor_args& m, const std::string& login, service_options options,
                   const std::function<int(const error&)>& fail);

// Glob match: '*' any run (also empty), '?' one character; everything else literal.
bool wildcard_match(std::string_view pattern, std::string_view text);

// The az-shaped JSON of one event.
boost::json::object event_json(const event_data& e, bool sys, bool app, bool anno);

}  // namespace twinhub::cli
