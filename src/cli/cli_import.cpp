// twinhub device-identity import: many device identities from a file, in bulk requests of up to
// 100 (POST /devices, the registry's bulk API), with progress on a terminal.
#include "cli/cli_common.hpp"
#include "cli/progress.hpp"

#include <boost/json/parse.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace twinhub::cli {
namespace {

// A JSON array of ExportImportDevice objects, or JSON lines (one object a line, as IoT Hub's export
// job writes devices.txt). Throws usage_error naming the line that is not an object.
boost::json::array read_devices(const std::string& path) {
    std::string text;
    if (path == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw usage_error{"cannot read --input file '" + path + "'"};
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const auto first = text.find_first_not_of(" \t\r\n");
    boost::system::error_code ec;
    if (first != std::string::npos && text[first] == '[') {
        auto v = boost::json::parse(text, ec);
        if (ec || !v.is_array()) throw usage_error{"--input is not a JSON array of devices (" + ec.message() + ")"};
        return std::move(v.as_array());
    }
    boost::json::array out;
    std::istringstream lines(text);
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto v = boost::json::parse(line, ec);
        if (ec || !v.is_object())
            throw usage_error{"--input line " + std::to_string(n) + " is not a JSON object (a device): " + line.substr(0, 80)};
        out.push_back(std::move(v));
    }
    return out;
}

}  // namespace

void add_import_command(CLI::App* device_identity, cli_state& s) {
    auto* c = leaf(device_identity, "import",
                   "Create (or update, delete: importMode) many device identities from a JSON array or JSON lines of "
                   "ExportImportDevice objects ({\"id\": \"d1\", \"importMode\": \"create\", ...}; importMode defaults "
                   "to create), in bulk requests; prints {\"total\", \"succeeded\", \"failed\", \"errors\"}. Progress "
                   "goes to stderr when it is a terminal",
                   s.a);
    c->add_option("-i,--input", s.input, "File of devices, or - for standard input")->required();
    c->add_option("--batch-size", s.batch_size, "Devices per bulk request (1-100)")->capture_default_str()->check(CLI::Range(1, 100));
    s.run(c, [&s]() -> int {
        auto devices = read_devices(s.input);
        for (auto& d : devices) {
            auto* o = d.if_object();
            if (!o) throw usage_error{"--input holds something that is not a device object"};
            if (!o->contains("importMode")) (*o)["importMode"] = "create";
        }
        auto hub = open_hub(s.a);
        progress bar("import", "devices");
        const std::size_t total = devices.size();
        bar.update(0, total);
        boost::json::array errors;
        std::size_t done = 0;
        for (std::size_t i = 0; i < total; i += static_cast<std::size_t>(s.batch_size)) {
            boost::json::array batch;
            for (std::size_t j = i; j < total && j < i + static_cast<std::size_t>(s.batch_size); ++j) batch.push_back(devices[j]);
            auto r = hub.bulk(batch);
            if (!r) {
                // Nothing of this batch was written; the ones before it were.
                std::cerr << "twinhub: stopped after " << done << " of " << total << " devices\n";
                return fail(r.error());
            }
            if (auto* e = r->if_contains("errors"); e && e->is_array())
                for (auto& x : e->as_array()) errors.push_back(x);
            done += batch.size();
            bar.update(done, total);
        }
        bar.finish(done);
        const std::size_t failed = errors.size();
        print(boost::json::object{{"total", total}, {"succeeded", total - failed}, {"failed", failed}, {"errors", std::move(errors)}});
        return failed == 0 ? exit_ok : exit_failed;
    });
}

}  // namespace twinhub::cli
