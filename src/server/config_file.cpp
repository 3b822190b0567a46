// twinhubd's configuration file (docs/configuration.md): JSON with comments, checked key by key
// against the schema, every error naming the file, the line and the dotted key.
#include "common/log.hpp"
#include "server/config.hpp"

#include <boost/json/parse_options.hpp>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <map>

namespace twinhub::server {
namespace json = boost::json;

namespace {

// Lines of every key (and array element) of JSON text that Boost.JSON accepted with comments and
// trailing commas, by dotted path; remembers the first path given twice in one object.
class line_map {
public:
    explicit line_map(std::string_view t) : t_(t) { value(""); }
    int line_of(const std::string& path) const {
        for (std::string p = path;;) {
            if (auto it = lines_.find(p); it != lines_.end()) return it->second;
            auto cut = p.find_last_of(".[");
            if (cut == std::string::npos) return 1;
            p.resize(cut);
        }
    }
    // The first key given twice in one object (empty: none), and the line of its second occurrence.
    const std::string& duplicate() const { return duplicate_; }
    int duplicate_line() const { return duplicate_line_; }

private:
    char at(std::size_t i) const { return i < t_.size() ? t_[i] : '\0'; }
    void space() {
        while (i_ < t_.size()) {
            char c = t_[i_];
            if (c == '\n') ++line_, ++i_;
            else if (std::isspace(static_cast<unsigned char>(c))) ++i_;
            else if (c == '/' && at(i_ + 1) == '/') {
                while (i_ < t_.size() && t_[i_] != '\n') ++i_;
            } else if (c == '/' && at(i_ + 1) == '*') {
                i_ += 2;
                while (i_ < t_.size() && !(t_[i_] == '*' && at(i_ + 1) == '/')) line_ += t_[i_++] == '\n';
                i_ += 2;
            } else break;
        }
    }
    // A string's text; escapes other than \" and \\ are kept as written (keys the schema knows
    // have none, and an unknown key is reported by its parsed name anyway).
    std::string string() {
        std::string s;
        ++i_;
        while (i_ < t_.size() && t_[i_] != '"') {
            if (t_[i_] == '\\' && i_ + 1 < t_.size()) {
                char e = t_[i_ + 1];
                if (e == '"' || e == '\\' || e == '/') s += e;
                else s.append(t_.substr(i_, 2));
                i_ += 2;
            } else s += t_[i_++];
        }
        ++i_;
        return s;
    }
    void value(const std::string& path) {
        space();
        char c = at(i_);
        if (c == '{') {
            ++i_;
            for (space(); i_ < t_.size() && t_[i_] != '}'; space()) {
                int line = line_;
                std::string key = string();
                std::string p = path.empty() ? key : path + "." + key;
                if (!lines_.emplace(p, line).second && duplicate_.empty()) duplicate_ = p, duplicate_line_ = line;
                space();
                ++i_;  // ':'
                value(p);
                space();
                if (at(i_) == ',') ++i_;
            }
            ++i_;
        } else if (c == '[') {
            ++i_;
            int n = 0;
            for (space(); i_ < t_.size() && t_[i_] != ']'; space()) {
                std::string p = path + "[" + std::to_string(n++) + "]";
                lines_.emplace(p, line_);
                value(p);
                space();
                if (at(i_) == ',') ++i_;
            }
            ++i_;
        } else if (c == '"') {
            string();
        } else {
            while (i_ < t_.size() && !std::strchr(",]} \t\r\n/", t_[i_])) ++i_;
        }
    }

    std::string_view t_;
    std::size_t i_ = 0;
    int line_ = 1;
    std::map<std::string, int> lines_;
    std::string duplicate_;
    int duplicate_line_ = 0;
};

class reader {
public:
    reader(const std::string& file, const line_map& lines) : file_(file), lines_(lines) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw config_error("config error: " + file_ + ":" + std::to_string(lines_.line_of(key)) + ": " + key + ": " + what);
    }
    std::string origin(const std::string& key) const { return file_ + ":" + std::to_string(lines_.line_of(key)); }

    std::string string(const std::string& key, const json::value& v) const {
        if (!v.is_string()) fail(key, "must be a string, not " + kind(v));
        return std::string(v.as_string());
    }
    bool boolean(const std::string& key, const json::value& v) const {
        if (!v.is_bool()) fail(key, "must be true or false, not " + kind(v));
        return v.as_bool();
    }
    std::int64_t integer(const std::string& key, const json::value& v, std::int64_t lo, std::int64_t hi) const {
        std::int64_t n = 0;
        if (v.is_int64()) n = v.as_int64();
        else if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(hi)) n = static_cast<std::int64_t>(v.as_uint64());
        else if (v.is_uint64()) n = hi + 1;
        else fail(key, "must be an integer, not " + kind(v));
        if (n < lo || n > hi) fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " + std::to_string(n));
        return n;
    }
    unsigned short port(const std::string& key, const json::value& v, std::int64_t lo = 1) const {
        return static_cast<unsigned short>(integer(key, v, lo, 65535));
    }
    std::vector<std::string> strings(const std::string& key, const json::value& v) const {
        if (!v.is_array()) fail(key, "must be an array of strings, not " + kind(v));
        std::vector<std::string> out;
        for (std::size_t i = 0; i < v.as_array().size(); ++i) {
            std::string k = key + "[" + std::to_string(i) + "]";
            out.push_back(string(k, v.as_array()[i]));
            if (out.back().empty()) fail(k, "must not be empty");
        }
        return out;
    }
    // An object whose members each have a setter; a member without one is an unknown key.
    using setters = std::map<std::string, std::function<void(const std::string& key, const json::value&)>, std::less<>>;
    void object(const std::string& key, const json::value& v, const setters& s) const {
        if (!v.is_object()) fail(key.empty() ? std::string("(top level)") : key, "must be an object, not " + kind(v));
        for (const auto& [name, member] : v.as_object()) {
            std::string k = key.empty() ? std::string(name) : key + "." + std::string(name);
            auto it = s.find(std::string_view(name));
            if (it == s.end()) {
                std::string known;
                for (const auto& [n, f] : s) known += (known.empty() ? "" : ", ") + n;
                fail(k, "unknown key (known here: " + known + ")");
            }
            it->second(k, member);
        }
    }

    static std::string kind(const json::value& v) {
        switch (v.kind()) {
        case json::kind::null: return "null";
        case json::kind::bool_: return "a boolean";
        case json::kind::int64:
        case json::kind::uint64: return "an integer";
        case json::kind::double_: return "a number with a fraction";
        case json::kind::string: return "a string";
        case json::kind::array: return "an array";
        case json::kind::object: return "an object";
        }
        return "?";
    }

private:
    const std::string& file_;
    const line_map& lines_;
};

// Event Hubs' rule (telemetry_service.hpp): 1-50 of letters, digits, '.', '-', '_', starting and
// ending with a letter or digit.
bool valid_consumer_group(const std::string& n) {
    if (n.empty() || n.size() > 50) return false;
    for (char c : n)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return false;
    return std::isalnum(static_cast<unsigned char>(n.front())) && std::isalnum(static_cast<unsigned char>(n.back()));
}

}  // namespace

void apply_config_file(config& c, std::string_view text, const std::string& file) {
    json::parse_options po;
    po.allow_comments = true;
    po.allow_trailing_commas = true;
    json::stream_parser p({}, po);
    boost::system::error_code ec;
    std::size_t used = p.write(text.data(), text.size(), ec);
    if (!ec) p.finish(ec);
    if (ec) {
        std::size_t at = std::min(used, text.size());
        int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
        throw config_error("config error: " + file + ":" + std::to_string(line) + ": (syntax): not valid JSON: " + ec.message());
    }
    json::value root = p.release();
    line_map lines(text);
    reader r(file, lines);
    if (!lines.duplicate().empty())
        throw config_error("config error: " + file + ":" + std::to_string(lines.duplicate_line()) + ": " + lines.duplicate() +
                           ": given twice");

    auto period = [&r](const std::string& k, const json::value& v, std::chrono::seconds max) {
        std::string s = r.string(k, v);
        auto p = parse_retention(s);
        if (!p || *p > max)
            r.fail(k, "'" + s + "' is not a period between 1s and " + (max.count() == 86400 ? "24h" : "7d") + " (e.g. 90s, 12h, 1d)");
        return *p;
    };
    r.object("", root, {
        {"$schema", [&](auto& k, auto& v) { r.string(k, v); }},
        {"data_dir", [&](auto& k, auto& v) { c.data_dir = r.string(k, v); }},
        {"host_names", [&](auto& k, auto& v) { c.host_names = r.strings(k, v); }},
        {"bind", [&](auto& k, auto& v) { c.bind_address = r.string(k, v); }},
        {"threads", [&](auto& k, auto& v) { c.threads = static_cast<unsigned>(r.integer(k, v, 0, 1024)); }},
        {"log_level", [&](auto& k, auto& v) {
             c.log_level = r.string(k, v);
             log::level l;
             if (!log::parse_level(c.log_level, l)) r.fail(k, "'" + c.log_level + "' is not one of debug, info, warn, error, off");
         }},
        {"store", [&](auto& k, auto& v) {
             std::string s = r.string(k, v);
             if (s == "sqlite") s.clear();
             if (!s.empty() && s.rfind("postgresql://", 0) != 0 && s.rfind("postgres://", 0) != 0)
                 r.fail(k, "must be \"sqlite\" or a postgresql:// URL");
             c.store = s;
         }},
        {"fault_injection", [&](auto& k, auto& v) { c.fault_injection = r.boolean(k, v); }},
        {"ports", [&](auto& k, auto& v) {
             r.object(k, v, {{"https", [&](auto& k2, auto& v2) { c.https_port = r.port(k2, v2); }},
                             {"mqtt", [&](auto& k2, auto& v2) { c.mqtt_port = r.port(k2, v2); }},
                             {"amqp", [&](auto& k2, auto& v2) { c.amqp_port = r.port(k2, v2); }}});
         }},
        {"telemetry", [&](auto& k, auto& v) {
             r.object(k, v, {
                 {"partitions", [&](auto& k2, auto& v2) {
                      c.partitions = static_cast<unsigned>(r.integer(k2, v2, 0, 32));  // 0: 4, or what the hub has
                      if (c.partitions == 1) r.fail(k2, "must be 0 (the default) or between 2 and 32, not 1");
                  }},
                 {"retention", [&](auto& k2, auto& v2) { c.retention = period(k2, v2, std::chrono::hours(24 * 7)); }},
                 {"consumer_groups", [&](auto& k2, auto& v2) {
                      c.consumer_groups = r.strings(k2, v2);
                      for (std::size_t i = 0; i < c.consumer_groups.size(); ++i)
                          if (!valid_consumer_group(c.consumer_groups[i]))
                              r.fail(k2 + "[" + std::to_string(i) + "]",
                                     "'" + c.consumer_groups[i] + "' is not a consumer group name (1-50 letters, digits, "
                                     "'.', '-', '_', starting and ending with a letter or digit)");
                      if (c.consumer_groups.size() > 19) r.fail(k2, "at most 19 besides $Default");
                      c.consumer_groups_origin = r.origin(k2);
                  }},
                 {"routing", [&](auto& k2, auto& v2) {
                      if (!v2.is_object()) r.fail(k2, "must be an object (ARM's \"routing\" shape), not " + reader::kind(v2));
                      c.routing = v2;
                      c.routing_origin = r.origin(k2);
                  }},
                 {"routing_file", [&](auto& k2, auto& v2) { c.routing_file = r.string(k2, v2); }},
             });
             if (c.routing && !c.routing_file.empty()) r.fail(k + ".routing_file", "give telemetry.routing or telemetry.routing_file, not both");
         }},
        {"metrics", [&](auto& k, auto& v) {
             r.object(k, v, {{"port", [&](auto& k2, auto& v2) { c.metrics_port = r.port(k2, v2, 0); }},
                             {"bind", [&](auto& k2, auto& v2) { c.metrics_bind = r.string(k2, v2); }},
                             {"token", [&](auto& k2, auto& v2) { c.metrics_token = r.string(k2, v2); }}});
         }},
        {"console", [&](auto& k, auto& v) {
             r.object(k, v, {{"enabled", [&](auto& k2, auto& v2) { c.console = r.boolean(k2, v2); }},
                             {"dir", [&](auto& k2, auto& v2) { c.console_dir = r.string(k2, v2); }}});
         }},
        {"tls", [&](auto& k, auto& v) {
             r.object(k, v, {{"certificate_file", [&](auto& k2, auto& v2) { c.tls_certificate_file = r.string(k2, v2); }},
                             {"key_file", [&](auto& k2, auto& v2) { c.tls_key_file = r.string(k2, v2); }}});
             if (c.tls_certificate_file.empty() != c.tls_key_file.empty())
                 r.fail(k, "give both certificate_file and key_file, or neither");
         }},
        {"file_upload", [&](auto& k, auto& v) {
             r.object(k, v, {
                 {"storage_connection_string", [&](auto& k2, auto& v2) { c.storage_connection_string = r.string(k2, v2); }},
                 {"container", [&](auto& k2, auto& v2) { c.storage_container = r.string(k2, v2); }},
                 {"ca_file", [&](auto& k2, auto& v2) { c.storage_ca_file = r.string(k2, v2); }},
                 {"sas_ttl", [&](auto& k2, auto& v2) { c.file_upload_sas_ttl = period(k2, v2, std::chrono::hours(24)); }},
             });
         }},
    });
}

}  // namespace twinhub::server
