#include "query/query_parser_impl.hpp"

#include "common/text.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace twinhub::query::detail {

result<expr> parser::finish(expr e) {
    e.depth = height(e.children);
    if (e.depth > max_depth)
        return syntax_error(sql_, e.position, "expression nested too deeply (more than " + std::to_string(max_depth) + " levels)");
    return e;
}

result<expr> parser::make_binary(binary_op op, expr l, expr r, std::size_t pos) {
    const bool arithmetic = op == binary_op::add || op == binary_op::sub || op == binary_op::mul ||
                            op == binary_op::div || op == binary_op::mod;
    const bool ordering = op == binary_op::lt || op == binary_op::gt || op == binary_op::le || op == binary_op::ge;
    for (const expr* side : {&l, &r}) {
        if (side->kind != expr_kind::constant || side->undefined) continue;
        const auto& v = side->constant;
        if (arithmetic && !v.is_number())
            return type_error(sql_, side->position,
                              std::string("operator '") + op_text(op) + "' needs numbers, found " + type_name(v) + " " + json_text(v));
        if ((ordering || op == binary_op::eq || op == binary_op::ne) && (v.is_array() || v.is_object()))
            return type_error(sql_, side->position,
                              std::string("operator '") + op_text(op) + "' compares primitive values only, found " + type_name(v));
    }
    expr e;
    e.kind = expr_kind::binary;
    e.op = op;
    e.position = pos;
    e.children.push_back(std::move(l));
    e.children.push_back(std::move(r));
    return finish(std::move(e));
}

result<expr> parser::parse_expression() {
    depth_guard g(recursion_);
    if (recursion_ > max_depth) return syntax_error(sql_, peek().pos, "expression nested too deeply");
    return parse_or();
}

result<expr> parser::parse_or() {
    auto l = parse_and();
    if (!l) return l;
    while (at_keyword("or")) {
        const std::size_t pos = peek().pos;
        advance();
        auto r = parse_and();
        if (!r) return r;
        auto e = make_binary(binary_op::logical_or, std::move(*l), std::move(*r), pos);
        if (!e) return e;
        l = std::move(e);
    }
    return l;
}

result<expr> parser::parse_and() {
    auto l = parse_not();
    if (!l) return l;
    while (at_keyword("and")) {
        const std::size_t pos = peek().pos;
        advance();
        auto r = parse_not();
        if (!r) return r;
        auto e = make_binary(binary_op::logical_and, std::move(*l), std::move(*r), pos);
        if (!e) return e;
        l = std::move(e);
    }
    return l;
}

result<expr> parser::parse_not() {
    if (at_keyword("not")) {
        const std::size_t pos = peek().pos;
        advance();
        depth_guard g(recursion_);
        if (recursion_ > max_depth) return syntax_error(sql_, pos, "expression nested too deeply");
        auto inner = parse_not();
        if (!inner) return inner;
        expr e;
        e.kind = expr_kind::logical_not;
        e.position = pos;
        e.children.push_back(std::move(*inner));
        return finish(std::move(e));
    }
    return parse_comparison();
}

result<expr> parser::parse_comparison() {
    auto l = parse_additive();
    if (!l) return l;
    const token& t = peek();
    std::optional<binary_op> op;
    switch (t.kind) {
        case tok::eq: op = binary_op::eq; break;
        case tok::ne: op = binary_op::ne; break;
        case tok::lt: op = binary_op::lt; break;
        case tok::gt: op = binary_op::gt; break;
        case tok::le: op = binary_op::le; break;
        case tok::ge: op = binary_op::ge; break;
        default: break;
    }
    if (op) {
        const std::size_t pos = t.pos;
        advance();
        auto r = parse_additive();
        if (!r) return r;
        return make_binary(*op, std::move(*l), std::move(*r), pos);
    }
    bool negated = false;
    std::size_t pos = t.pos;
    if (at_keyword("not") && at_keyword("in", 1)) {
        advance();
        negated = true;
    }
    if (at_keyword("in") || at_keyword("nin")) {
        negated = negated != at_keyword("nin");
        advance();
        if (peek().kind != tok::lbracket) return expected("an array constant such as ['a', 'b']");
        auto list = parse_array_constant();
        if (!list) return list.error();
        expr e;
        e.kind = expr_kind::in_list;
        e.negated = negated;
        e.position = pos;
        e.constant = std::move(*list);
        e.children.push_back(std::move(*l));
        return finish(std::move(e));
    }
    if (negated) return expected("IN");
    return l;
}

result<expr> parser::parse_additive() {
    auto l = parse_multiplicative();
    if (!l) return l;
    while (peek().kind == tok::plus || peek().kind == tok::minus) {
        const binary_op op = peek().kind == tok::plus ? binary_op::add : binary_op::sub;
        const std::size_t pos = peek().pos;
        advance();
        auto r = parse_multiplicative();
        if (!r) return r;
        auto e = make_binary(op, std::move(*l), std::move(*r), pos);
        if (!e) return e;
        l = std::move(e);
    }
    return l;
}

result<expr> parser::parse_multiplicative() {
    auto l = parse_unary();
    if (!l) return l;
    while (peek().kind == tok::star || peek().kind == tok::slash || peek().kind == tok::percent) {
        const binary_op op = peek().kind == tok::star    ? binary_op::mul
                             : peek().kind == tok::slash ? binary_op::div
                                                         : binary_op::mod;
        const std::size_t pos = peek().pos;
        advance();
        auto r = parse_unary();
        if (!r) return r;
        auto e = make_binary(op, std::move(*l), std::move(*r), pos);
        if (!e) return e;
        l = std::move(e);
    }
    return l;
}

result<expr> parser::parse_unary() {
    if (peek().kind == tok::minus || peek().kind == tok::plus) {
        const bool minus = peek().kind == tok::minus;
        const std::size_t pos = peek().pos;
        advance();
        depth_guard g(recursion_);
        if (recursion_ > max_depth) return syntax_error(sql_, pos, "expression nested too deeply");
        auto inner = parse_unary();
        if (!inner) return inner;
        if (inner->kind == expr_kind::constant && !inner->undefined) {
            if (!inner->constant.is_number())
                return type_error(sql_, inner->position,
                                  std::string("unary '") + (minus ? "-" : "+") + "' needs a number, found " +
                                      type_name(inner->constant));
            if (minus) inner->constant = -inner->constant.to_number<double>();
            inner->position = pos;
            return inner;
        }
        if (!minus) return inner;
        expr e;
        e.kind = expr_kind::negate;
        e.position = pos;
        e.children.push_back(std::move(*inner));
        return finish(std::move(e));
    }
    return parse_primary();
}

boost::json::value parser::number_value(double d) {
    if (d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) return static_cast<std::int64_t>(d);
    return d;
}

result<boost::json::value> parser::parse_array_constant() {
    const std::size_t open = peek().pos;
    advance();  // '['
    boost::json::array a;
    if (accept(tok::rbracket)) return boost::json::value(std::move(a));
    do {
        bool minus = false;
        if (peek().kind == tok::minus) {
            minus = true;
            advance();
        }
        const token& t = peek();
        if (t.kind == tok::number) a.emplace_back(number_value(minus ? -t.number : t.number));
        else if (minus) return expected("a number after '-'");
        else if (t.kind == tok::string) a.emplace_back(t.text);
        else if (at_keyword("true")) a.emplace_back(true);
        else if (at_keyword("false")) a.emplace_back(false);
        else if (at_keyword("null")) a.emplace_back(nullptr);
        else return expected("a constant in the array");
        advance();
        if (a.size() > 10000) return syntax_error(sql_, open, "array constant has more than 10000 elements");
    } while (accept(tok::comma));
    if (!accept(tok::rbracket)) return expected("',' or ']'");
    return boost::json::value(std::move(a));
}

result<expr> parser::parse_primary() {
    const token& t = peek();
    expr e;
    e.position = t.pos;
    switch (t.kind) {
        case tok::number:
            e.constant = number_value(t.number);
            advance();
            return e;
        case tok::string:
            e.constant = boost::json::string(t.text);
            advance();
            return e;
        case tok::lparen: {
            advance();
            auto inner = parse_expression();
            if (!inner) return inner;
            if (!accept(tok::rparen)) return expected("')'");
            return inner;
        }
        case tok::lbracket: {
            auto a = parse_array_constant();
            if (!a) return a.error();
            e.constant = std::move(*a);
            return e;
        }
        case tok::ident: break;
        default: return expected("an expression");
    }
    if (peek(1).kind == tok::lparen) return parse_call();
    if (at_keyword("true") || at_keyword("false")) {
        e.constant = at_keyword("true");
        advance();
        return e;
    }
    if (at_keyword("null")) {
        e.constant = nullptr;
        advance();
        return e;
    }
    if (at_keyword("undefined")) {
        e.undefined = true;
        advance();
        return e;
    }
    if (is_reserved(t.raw)) return expected("an expression");
    auto p = parse_path();
    if (!p) return p.error();
    e.kind = expr_kind::path;
    e.path = p->path;
    return e;
}

result<expr> parser::parse_call() {
    const token name = peek();
    advance();  // name
    advance();  // '('
    expr e;
    e.position = name.pos;
    if (iequals(name.raw, "is_defined")) {
        if (peek().kind != tok::ident || is_reserved(peek().raw) || peek(1).kind == tok::lparen) {
            const std::size_t at = peek().pos;
            if (peek().kind == tok::rparen || peek().kind == tok::end) return expected("a property path");
            // Parse it anyway for a precise message about what was given.
            auto arg = parse_expression();
            if (!arg) return arg;
            return type_error(sql_, at, "IS_DEFINED expects a property path such as properties.reported.x");
        }
        auto p = parse_path();
        if (!p) return p.error();
        if (!accept(tok::rparen)) return expected("')'");
        e.kind = expr_kind::is_defined;
        e.path = p->path;
        return e;
    }
    std::optional<aggregate_fn> fn;
    if (iequals(name.raw, "count")) fn = aggregate_fn::count;
    else if (iequals(name.raw, "avg")) fn = aggregate_fn::avg;
    else if (iequals(name.raw, "sum")) fn = aggregate_fn::sum;
    else if (iequals(name.raw, "min")) fn = aggregate_fn::min;
    else if (iequals(name.raw, "max")) fn = aggregate_fn::max;
    if (!fn)
        return type_error(sql_, name.pos,
                          "unknown function '" + std::string(name.raw) +
                              "': twin queries support IS_DEFINED(path) and the aggregates COUNT(), AVG(), "
                              "SUM(), MIN(), MAX()");
    if (in_where_) return type_error(sql_, name.pos, "aggregate " + upper(name.raw) + "() is not allowed in WHERE");
    if (!in_projection_ || in_aggregate_)
        return type_error(sql_, name.pos, "aggregate " + upper(name.raw) + "() cannot be nested in another aggregate");
    e.kind = expr_kind::aggregate;
    e.fn = *fn;
    if (*fn == aggregate_fn::count) {
        accept(tok::star);  // COUNT(*) is accepted as COUNT()
        if (!accept(tok::rparen)) return expected("')' (COUNT() takes no argument)");
    } else {
        if (peek().kind == tok::rparen) return expected("an argument for " + upper(name.raw) + "()");
        in_aggregate_ = true;
        auto arg = parse_expression();
        in_aggregate_ = false;
        if (!arg) return arg;
        if (arg->kind == expr_kind::constant && !arg->undefined && !arg->constant.is_number() &&
            *fn != aggregate_fn::min && *fn != aggregate_fn::max)
            return type_error(sql_, arg->position, upper(name.raw) + "() needs numbers, found " + type_name(arg->constant));
        if (!accept(tok::rparen)) return expected("')'");
        e.children.push_back(std::move(*arg));
    }
    e.slot = plan_.aggregate_count++;
    return finish(std::move(e));
}

std::string parser::upper(std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return r;
}

result<parser::parsed_path> parser::parse_path() {
    property_path p;
    p.segments.push_back({std::string(peek().raw), std::nullopt});
    advance();
    while (true) {
        if (peek().kind == tok::dot) {
            advance();
            if (peek().kind != tok::ident) return expected("a property name after '.'");
            p.segments.push_back({std::string(peek().raw), std::nullopt});
            advance();
        } else if (peek().kind == tok::lbracket) {
            advance();
            const token& t = peek();
            if (t.kind == tok::string) {
                p.segments.push_back({t.text, std::nullopt});
            } else if (t.kind == tok::number && t.number >= 0 && t.number == std::floor(t.number) &&
                       t.number < 4294967296.0) {
                p.segments.push_back({std::string(), static_cast<std::size_t>(t.number)});
            } else {
                return expected("a property name in quotes or an array index");
            }
            advance();
            if (!accept(tok::rbracket)) return expected("']'");
        } else {
            break;
        }
        if (p.segments.size() > 64) return syntax_error(sql_, peek().pos, "property path longer than 64 segments");
    }
    if (p.segments.size() > 1 && !p.segments[0].index && iequals(p.segments[0].name, "devices")) {
        std::size_t drop = 1;
        if (p.segments.size() > 2 && !p.segments[1].index &&
            (iequals(p.segments[1].name, "modules") || iequals(p.segments[1].name, "jobs")))
            drop = 2;
        p.segments.erase(p.segments.begin(), p.segments.begin() + static_cast<std::ptrdiff_t>(drop));
    }
    for (auto& s : p.segments) {
        if (s.index) {
            p.text += "[" + std::to_string(*s.index) + "]";
        } else if (!s.name.empty() && ident_start(s.name[0]) &&
                   std::all_of(s.name.begin(), s.name.end(), ident_char)) {
            if (!p.text.empty()) p.text += '.';
            p.text += s.name;
        } else {
            p.text += "['" + s.name + "']";  // keeps tags['a.b'] apart from tags.a.b
        }
    }
    for (std::size_t i = 0; i < plan_.paths.size(); ++i)
        if (plan_.paths[i].text == p.text) return parsed_path{i};
    plan_.paths.push_back(std::move(p));
    return parsed_path{plan_.paths.size() - 1};
}

}  // namespace twinhub::query::detail
