#include "common/json_print.hpp"

#include <boost/json/serialize.hpp>

namespace twinhub {
namespace {

void print(const boost::json::value& v, std::string& out, int indent) {
    auto pad = [&](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
    if (const auto* o = v.if_object()) {
        if (o->empty()) {
            out += "{}";
            return;
        }
        out += "{\n";
        bool first = true;
        for (const auto& kv : *o) {
            if (!first) out += ",\n";
            first = false;
            pad(indent + 1);
            out += boost::json::serialize(boost::json::value(kv.key()));
            out += ": ";
            print(kv.value(), out, indent + 1);
        }
        out += "\n";
        pad(indent);
        out += "}";
    } else if (const auto* a = v.if_array()) {
        if (a->empty()) {
            out += "[]";
            return;
        }
        out += "[\n";
        bool first = true;
        for (const auto& e : *a) {
            if (!first) out += ",\n";
            first = false;
            pad(indent + 1);
            print(e, out, indent + 1);
        }
        out += "\n";
        pad(indent);
        out += "]";
    } else {
        out += boost::json::serialize(v);
    }
}

}  // namespace

std::string pretty_json(const boost::json::value& v) {
    std::string out;
    print(v, out, 0);
    return out;
}

}  // namespace twinhub
