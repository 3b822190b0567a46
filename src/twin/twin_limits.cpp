#include "twin/twin_limits.hpp"

#include <string>

namespace twinhub::twin {
namespace json = boost::json;
namespace {

// Long keys in messages are cut so a 1 KB key does not flood the error text.
void append_shortened(std::string& out, std::string_view s) {
    if (s.size() <= 64) {
        out += s;
        return;
    }
    std::size_t n = 60;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // do not split UTF-8
    out += s.substr(0, n);
    out += "...";
}

std::string shorten(std::string_view s) {
    std::string out;
    append_shortened(out, s);
    return out;
}

// The validators share one path string: a step appends ".key" or "[i]" and truncates it after.
void push_key(std::string& path, std::string_view key) {
    path += '.';
    append_shortened(path, key);
}

void push_index(std::string& path, std::size_t i) {
    path += '[';
    path += std::to_string(i);
    path += ']';
}

error invalid(std::string m) { return error{errc::invalid_argument, std::move(m)}; }

// UTF-8 length without C0 controls (U+0000-U+001F) and C1 controls (U+0080-U+009F, 0xC2 0x80-0x9F).
std::size_t counted_length(std::string_view s) {
    // Fast path, no C1 control characters (U+0080-U+009F, encoded C2 80-C2 9F) possible: count
    // the bytes from U+0020 up, in a loop the compiler vectorizes.
    if (s.find('\xC2') == std::string_view::npos) {
        std::size_t n = 0;
        for (char ch : s) n += static_cast<unsigned char>(ch) >= 0x20 ? 1 : 0;
        return n;
    }
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20) continue;
        if (c == 0xC2 && i + 1 < s.size()) {
            auto d = static_cast<unsigned char>(s[i + 1]);
            if (d >= 0x80 && d <= 0x9F) { ++i; continue; }
        }
        ++n;
    }
    return n;
}

result<void> validate_key(std::string_view key, std::string_view parent) {
    if (key.size() > max_key_bytes) {
        return invalid("Property or tag name '" + shorten(key) + "' in '" + std::string(parent) + "' is " +
                       std::to_string(key.size()) + " bytes long; the maximum is 1024.");
    }
    for (std::size_t i = 0; i < key.size(); ++i) {
        auto c = static_cast<unsigned char>(key[i]);
        const char* bad = nullptr;
        if (c < 0x20 || c == 0x7F) bad = "a control character";
        else if (c == 0xC2 && i + 1 < key.size() && static_cast<unsigned char>(key[i + 1]) >= 0x80 &&
                 static_cast<unsigned char>(key[i + 1]) <= 0x9F)
            bad = "a control character";
        else if (c == '.') bad = "'.'";
        else if (c == '$') bad = "'$'";
        else if (c == ' ') bad = "a space";
        if (bad) {
            return invalid("Property or tag name '" + shorten(key) + "' in '" + std::string(parent) + "' contains " +
                           bad + "; names must not contain '.', '$', spaces or control characters.");
        }
    }
    return {};
}

result<void> validate_value(const json::value& v, std::string& path, int level, bool in_array);

// The members of an object at nesting level `level`. In a twin section (not in an array) a null
// member is a delete, and each non-object value is held to the per-property size limit; in an
// array, members are values like any other (a null is refused).
result<void> validate_members(const json::object& o, std::string& path, int level, bool in_array) {
    const std::size_t mark = path.size();
    for (const auto& kv : o) {
        if (auto r = validate_key(kv.key(), path); !r) return r;
        if (!in_array && kv.value().is_null()) continue;  // a delete
        push_key(path, kv.key());
        auto r = validate_value(kv.value(), path, level + 1, in_array);
        if (r && !in_array && !kv.value().is_object()) {
            auto size = value_size(kv.value());
            if (size > max_property_bytes)
                r = invalid("Value of '" + path + "' is " + std::to_string(size) + " bytes; the maximum is 4096.");
        }
        path.resize(mark);
        if (!r) return r;
    }
    return {};
}

// `level` is the nesting level of v itself (a member of the section root is level 1). `path` names
// v; it is the same string on return.
result<void> validate_value(const json::value& v, std::string& path, int level, bool in_array) {
    switch (v.kind()) {
    case json::kind::null:
        return invalid("Value of Property or Tag cannot be null. Error in Property/Tag '" + path + "'.");
    case json::kind::bool_:
    case json::kind::double_:
        return {};
    case json::kind::int64:
        if (v.get_int64() < min_integer || v.get_int64() > max_integer) {
            return invalid("Value of '" + path +
                           "' is out of range; integers must lie between -4503599627370496 and 4503599627370495.");
        }
        return {};
    case json::kind::uint64:
        if (v.get_uint64() > static_cast<std::uint64_t>(max_integer)) {
            return invalid("Value of '" + path +
                           "' is out of range; integers must lie between -4503599627370496 and 4503599627370495.");
        }
        return {};
    case json::kind::string:
        if (v.get_string().size() > max_string_bytes) {
            return invalid("String value of '" + path + "' is " + std::to_string(v.get_string().size()) +
                           " bytes long; the maximum is 4096.");
        }
        return {};
    case json::kind::object:
        if (level > max_depth) {
            return invalid("'" + path + "' is nested too deeply; objects and arrays may nest at most 10 levels.");
        }
        return validate_members(v.get_object(), path, level, false);
    case json::kind::array: {
        if (level > max_depth) {
            return invalid("'" + path + "' is nested too deeply; objects and arrays may nest at most 10 levels.");
        }
        const auto& a = v.get_array();
        const std::size_t mark = path.size();
        for (std::size_t i = 0; i < a.size(); ++i) {
            const auto& e = a[i];
            push_index(path, i);
            result<void> r;
            if (e.is_object()) {
                r = level + 1 > max_depth
                        ? invalid("'" + path + "' is nested too deeply; objects and arrays may nest at most 10 levels.")
                        : validate_members(e.get_object(), path, level + 1, true);
            } else {
                r = validate_value(e, path, level + 1, true);
            }
            path.resize(mark);
            if (!r) return r;
        }
        return {};
    }
    }
    return {};
}

}  // namespace

result<void> validate_patch(const json::object& patch, std::string_view path) {
    std::string p;
    p.reserve(path.size() + 64);
    p.append(path);
    return validate_members(patch, p, 0, false);
}

std::size_t value_size(const json::value& v) {
    switch (v.kind()) {
    case json::kind::null: return 0;
    case json::kind::bool_: return 4;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return 8;
    case json::kind::string: return counted_length(v.get_string());
    case json::kind::object: return section_size(v.get_object());
    case json::kind::array: {
        std::size_t n = 0;
        for (const auto& e : v.get_array()) n += value_size(e);
        return n;
    }
    }
    return 0;
}

std::size_t section_size(const json::object& section) {
    std::size_t n = 0;
    for (const auto& kv : section) n += kv.key().size() + value_size(kv.value());
    return n;
}

result<void> check_section_size(const json::object& section, std::string_view path, std::size_t max) {
    auto size = section_size(section);
    if (size > max) {
        return invalid("Twin section '" + std::string(path) + "' would be " + std::to_string(size) +
                       " bytes; the maximum is " + std::to_string(max) + ".");
    }
    return {};
}

}  // namespace twinhub::twin
