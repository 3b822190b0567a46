// Evaluation of compiled route conditions, and the body decoding that $body references rely on.
// Semantics (docs/compatibility.md, "Message routing"): values are undefined, null, Boolean,
// number, string, array or object; a reference that resolves to nothing is undefined; operators
// and functions given operands of the wrong type yield undefined; AND/OR are three-valued.
#include "telemetry/routing_condition.hpp"
#include "telemetry/routing_condition_ast.hpp"
#include "telemetry/routing_lookup.hpp"

#include <boost/json/parse.hpp>

#include <charconv>
#include <cmath>
#include <string>

namespace twinhub::telemetry {
namespace {

using detail::fn;
using detail::node;
using detail::op;

struct operand {
    enum class type { undefined, null, boolean, number, string, array, object } t = type::undefined;
    bool b = false;
    double n = 0;
    std::string s;
    const boost::json::value* j = nullptr;  // arrays and objects: points into the body or the twin
};

using type = operand::type;

operand make_bool(bool b) {
    operand o;
    o.t = type::boolean;
    o.b = b;
    return o;
}

operand make_number(double n) {
    operand o;
    if (!std::isfinite(n)) return o;  // overflow, sqrt(-1): undefined, never inf/NaN
    o.t = type::number;
    o.n = n;
    return o;
}

operand make_string(std::string s) {
    operand o;
    o.t = type::string;
    o.s = std::move(s);
    return o;
}

operand from_json(const boost::json::value* v) {
    operand o;
    if (!v) return o;
    switch (v->kind()) {
        case boost::json::kind::null: o.t = type::null; break;
        case boost::json::kind::bool_: return make_bool(v->get_bool());
        case boost::json::kind::int64: return make_number(static_cast<double>(v->get_int64()));
        case boost::json::kind::uint64: return make_number(static_cast<double>(v->get_uint64()));
        case boost::json::kind::double_: return make_number(v->get_double());
        case boost::json::kind::string: return make_string(std::string(v->get_string()));
        case boost::json::kind::array:
            o.t = type::array;
            o.j = v;
            break;
        case boost::json::kind::object:
            o.t = type::object;
            o.j = v;
            break;
    }
    return o;
}

operand from_literal(const detail::literal& l) {
    switch (l.t) {
        case detail::literal::type::undefined: return {};
        case detail::literal::type::null: {
            operand o;
            o.t = type::null;
            return o;
        }
        case detail::literal::type::boolean: return make_bool(l.b);
        case detail::literal::type::number: return make_number(l.n);
        case detail::literal::type::string: return make_string(l.s);
    }
    return {};
}

const boost::json::value* walk(const boost::json::value* v, const std::vector<detail::segment>& path) {
    for (const auto& s : path) {
        if (!v) return nullptr;
        if (s.is_index) {
            const auto* a = v->if_array();
            v = a && s.index < a->size() ? &(*a)[s.index] : nullptr;
        } else {
            v = detail::find_member(*v, s.key);
        }
    }
    return v;
}

operand reference(const node& n, condition_input& in) {
    const routing_message& m = in.message();
    switch (n.ref) {
        case detail::ref_kind::app_property: {
            const std::string* v = detail::find_app_property(m, n.name);
            return v ? make_string(*v) : operand{};
        }
        case detail::ref_kind::system_property: {
            if (const std::string* v = detail::find_system_property(m, n.name)) return make_string(*v);
            // Azure: a '$' name that is no system property is looked up among the app properties.
            const std::string* v = detail::find_app_property(m, n.name);
            return v ? make_string(*v) : operand{};
        }
        case detail::ref_kind::body: {
            // "$body" alone or "$body[0]": Azure evaluates queries on the whole body as undefined.
            if (n.path.empty() || n.path.front().is_index) return {};
            return from_json(walk(in.body(), n.path));
        }
        case detail::ref_kind::twin: return from_json(walk(m.twin, n.path));
    }
    return {};
}

std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

// Byte offset of code point `cp` in s (s.size() when past the end).
std::size_t byte_offset(std::string_view s, std::size_t cp) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
            if (seen == cp) return i;
            ++seen;
        }
    }
    return s.size();
}

std::optional<int> compare(const operand& a, const operand& b) {
    if (a.t != b.t) return std::nullopt;
    switch (a.t) {
        case type::number: return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
        case type::string: {
            int c = a.s.compare(b.s);
            return c < 0 ? -1 : c > 0 ? 1 : 0;
        }
        default: return std::nullopt;
    }
}

std::optional<bool> equal(const operand& a, const operand& b) {
    if (a.t != b.t || a.t == type::undefined) return std::nullopt;
    switch (a.t) {
        case type::null: return true;
        case type::boolean: return a.b == b.b;
        case type::number: return a.n == b.n;
        case type::string: return a.s == b.s;
        case type::array:
        case type::object: return *a.j == *b.j;
        default: return std::nullopt;
    }
}

operand eval(const node& n, condition_input& in);

operand binary(const node& n, condition_input& in) {
    if (n.o == op::logical_and || n.o == op::logical_or) {
        // Three-valued: false AND x is false, true OR x is true; otherwise any non-Boolean operand
        // makes the result undefined. Evaluated left to right, stopping at the deciding operand.
        const bool is_and = n.o == op::logical_and;
        bool undefined = false;
        for (const auto& arg : n.args) {
            operand v = eval(arg, in);
            if (v.t != type::boolean)
                undefined = true;
            else if (v.b != is_and)
                return v;
        }
        return undefined ? operand{} : make_bool(is_and);
    }
    operand l = eval(n.args[0], in);
    operand r = eval(n.args[1], in);
    switch (n.o) {
        case op::eq: {
            auto e = equal(l, r);
            return e ? make_bool(*e) : operand{};
        }
        case op::ne: {
            auto e = equal(l, r);
            return e ? make_bool(!*e) : operand{};
        }
        case op::lt:
        case op::le:
        case op::gt:
        case op::ge: {
            auto c = compare(l, r);
            if (!c) return {};
            if (n.o == op::lt) return make_bool(*c < 0);
            if (n.o == op::le) return make_bool(*c <= 0);
            if (n.o == op::gt) return make_bool(*c > 0);
            return make_bool(*c >= 0);
        }
        default: break;
    }
    if (l.t != type::number || r.t != type::number) return {};
    switch (n.o) {
        case op::add: return make_number(l.n + r.n);
        case op::sub: return make_number(l.n - r.n);
        case op::mul: return make_number(l.n * r.n);
        case op::div: return r.n == 0 ? operand{} : make_number(l.n / r.n);
        case op::mod: return r.n == 0 ? operand{} : make_number(std::fmod(l.n, r.n));
        default: return {};
    }
}

std::string ascii_case(std::string s, bool upper) {
    for (char& c : s) {
        if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

operand call(const node& n, condition_input& in) {
    std::vector<operand> a;
    a.reserve(n.args.size());
    for (const auto& arg : n.args) a.push_back(eval(arg, in));
    auto all = [&](type t) {
        for (const auto& x : a)
            if (x.t != t) return false;
        return true;
    };
    switch (n.f) {
        case fn::is_defined: return make_bool(a[0].t != type::undefined);
        case fn::is_null: return make_bool(a[0].t == type::null);
        case fn::is_bool: return make_bool(a[0].t == type::boolean);
        case fn::is_number: return make_bool(a[0].t == type::number);
        case fn::is_string: return make_bool(a[0].t == type::string);
        case fn::is_object: return make_bool(a[0].t == type::object);
        case fn::is_array: return make_bool(a[0].t == type::array);
        case fn::is_primitive:
            return make_bool(a[0].t == type::null || a[0].t == type::boolean || a[0].t == type::number ||
                             a[0].t == type::string);
        case fn::as_number: {
            if (a[0].t == type::number) return a[0];
            if (a[0].t != type::string || a[0].s.empty()) return {};
            double v = 0;
            const char* b = a[0].s.data();
            const char* e = b + a[0].s.size();
            auto r = std::from_chars(b, e, v);
            return r.ec == std::errc{} && r.ptr == e ? make_number(v) : operand{};
        }
        default: break;
    }
    if (n.f == fn::concat || n.f == fn::length || n.f == fn::lower || n.f == fn::upper || n.f == fn::starts_with ||
        n.f == fn::ends_with || n.f == fn::contains || n.f == fn::index_of) {
        if (!all(type::string)) return {};
        const std::string& s = a[0].s;
        switch (n.f) {
            case fn::concat: {
                std::string out;
                for (const auto& x : a) out += x.s;
                return make_string(std::move(out));
            }
            case fn::length: return make_number(static_cast<double>(code_points(s)));
            case fn::lower: return make_string(ascii_case(s, false));
            case fn::upper: return make_string(ascii_case(s, true));
            case fn::starts_with: return make_bool(s.starts_with(a[1].s));
            case fn::ends_with: return make_bool(s.ends_with(a[1].s));
            case fn::contains: return make_bool(s.find(a[1].s) != std::string::npos);
            case fn::index_of: {
                auto at = s.find(a[1].s);
                return make_number(at == std::string::npos ? -1.0 : static_cast<double>(code_points(s.substr(0, at))));
            }
            default: return {};
        }
    }
    if (n.f == fn::substring) {
        if (a[0].t != type::string || a[1].t != type::number || (a.size() == 3 && a[2].t != type::number)) return {};
        const std::string& s = a[0].s;
        const double total = static_cast<double>(code_points(s));
        double start = std::trunc(a[1].n);
        if (start < 0) start = 0;
        if (start >= total) return make_string("");
        double len = a.size() == 3 ? std::trunc(a[2].n) : total - start;
        if (len <= 0) return make_string("");
        if (len > total - start) len = total - start;
        const std::size_t b = byte_offset(s, static_cast<std::size_t>(start));
        const std::size_t e = byte_offset(s, static_cast<std::size_t>(start + len));
        return make_string(s.substr(b, e - b));
    }
    if (!all(type::number)) return {};
    const double x = a[0].n;
    switch (n.f) {
        case fn::abs: return make_number(std::fabs(x));
        case fn::exp: return make_number(std::exp(x));
        case fn::power: return make_number(std::pow(x, a[1].n));
        case fn::square: return make_number(x * x);
        case fn::ceiling: return make_number(std::ceil(x));
        case fn::floor: return make_number(std::floor(x));
        case fn::sign: return make_number(x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0);
        case fn::sqrt: return x < 0 ? operand{} : make_number(std::sqrt(x));
        default: return {};
    }
}

operand eval(const node& n, condition_input& in) {
    switch (n.k) {
        case node::kind::literal: return from_literal(n.lit);
        case node::kind::reference: return reference(n, in);
        case node::kind::binary: return binary(n, in);
        case node::kind::call: return call(n, in);
        case node::kind::unary: {
            operand v = eval(n.args[0], in);
            if (n.o == op::logical_not) return v.t == type::boolean ? make_bool(!v.b) : operand{};
            if (v.t != type::number) return {};
            return n.o == op::neg ? make_number(-v.n) : v;
        }
    }
    return {};
}

}  // namespace

const boost::json::value* condition_input::body() {
    if (!body_done_) {
        body_done_ = true;
        body_ = parse_json_body(message_.body, message_.content_type, message_.content_encoding);
    }
    return body_ ? &*body_ : nullptr;
}

bool condition::matches(condition_input& in) const {
    if (!root_) return false;
    operand v = eval(*root_, in);
    return v.t == type::boolean && v.b;
}

}  // namespace twinhub::telemetry
