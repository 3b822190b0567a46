#include "proto/iothub/property_bag.hpp"

#include "common/encoding.hpp"

namespace twinhub::iothub {
namespace {

void add_pair(std::string& out, std::string_view key, std::string_view value) {
    if (!out.empty()) out += '&';
    out += percent_encode(key);
    out += '=';
    out += percent_encode(value);
}

std::string decode_or_raw(std::string_view s) {
    auto d = percent_decode(s);
    return d ? std::move(*d) : std::string(s);
}

// Calls f(pair) for each non-empty '&'-separated pair.
template <class F>
void for_each_pair(std::string_view bag, F&& f) {
    while (!bag.empty()) {
        auto amp = bag.find('&');
        std::string_view pair = bag.substr(0, amp);
        bag = amp == std::string_view::npos ? std::string_view{} : bag.substr(amp + 1);
        if (!pair.empty() && !f(pair)) return;
    }
}

void classify(property_bag& out, std::string key, std::string value) {
    if (key.starts_with("$."))
        out.system.emplace_back(std::move(key), std::move(value));
    else
        out.application.emplace_back(std::move(key), std::move(value));
}

}  // namespace

std::string encode_property_bag(const property_bag& bag) {
    std::string out;
    for (const auto& [k, v] : bag.system) add_pair(out, k, v);
    for (const auto& [k, v] : bag.application) add_pair(out, k, v);
    return out;
}

result<property_bag> decode_property_bag(std::string_view bag) {
    property_bag out;
    std::optional<error> failure;
    for_each_pair(bag, [&](std::string_view pair) {
        auto eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq));
        std::optional<std::string> value =
            eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
        if (!key || !value) {
            failure = error{errc::invalid_argument,
                            "Property bag pair '" + std::string(pair) + "' has a malformed percent escape."};
            return false;
        }
        if (!key->empty()) classify(out, std::move(*key), std::move(*value));
        return true;
    });
    if (failure) return *failure;
    return out;
}

property_bag decode_property_bag_lenient(std::string_view bag) {
    property_bag out;
    for_each_pair(bag, [&](std::string_view pair) {
        auto eq = pair.find('=');
        std::string key = decode_or_raw(pair.substr(0, eq));
        std::string value = eq == std::string_view::npos ? std::string() : decode_or_raw(pair.substr(eq + 1));
        classify(out, std::move(key), std::move(value));
        return true;
    });
    return out;
}

}  // namespace twinhub::iothub
