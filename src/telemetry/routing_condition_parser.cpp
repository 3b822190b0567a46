// Parser of route conditions: recursive descent with bounded depth over the on-demand lexer of
// routing_condition_lexer.cpp (path members after '.' are lexed with the rules of property names).
#include "telemetry/routing_condition.hpp"
#include "telemetry/routing_condition_ast.hpp"
#include "telemetry/routing_condition_lexer.hpp"
#include "telemetry/routing_lookup.hpp"

#include <cstdint>
#include <string>
#include <utility>

namespace twinhub::telemetry {
namespace {

using detail::fn;
using detail::iequals;
using detail::is_space;
using detail::node;
using detail::op;
using detail::tok;
using detail::token;

std::string where_text(std::string_view text, std::size_t pos) {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return "position " + std::to_string(pos) + " (line " + std::to_string(line) + ", column " + std::to_string(col) +
           ")";
}

struct function_spec {
    const char* name;
    fn f;
    int min_args, max_args;  // max_args < 0: unbounded
};

// The routing functions of Azure's query language page; STARTSWITH/ENDSWITH are the spellings of
// older revisions of that page.
constexpr function_spec functions[] = {
    {"IS_DEFINED", fn::is_defined, 1, 1},
    {"IS_NULL", fn::is_null, 1, 1},
    {"IS_BOOL", fn::is_bool, 1, 1},
    {"IS_NUMBER", fn::is_number, 1, 1},
    {"IS_STRING", fn::is_string, 1, 1},
    {"IS_OBJECT", fn::is_object, 1, 1},
    {"IS_ARRAY", fn::is_array, 1, 1},
    {"IS_PRIMITIVE", fn::is_primitive, 1, 1},
    {"AS_NUMBER", fn::as_number, 1, 1},
    {"ABS", fn::abs, 1, 1},
    {"EXP", fn::exp, 1, 1},
    {"POWER", fn::power, 2, 2},
    {"SQUARE", fn::square, 1, 1},
    {"CEILING", fn::ceiling, 1, 1},
    {"FLOOR", fn::floor, 1, 1},
    {"SIGN", fn::sign, 1, 1},
    {"SQRT", fn::sqrt, 1, 1},
    {"CONCAT", fn::concat, 2, -1},
    {"LENGTH", fn::length, 1, 1},
    {"LOWER", fn::lower, 1, 1},
    {"UPPER", fn::upper, 1, 1},
    {"SUBSTRING", fn::substring, 2, 3},
    {"INDEX_OF", fn::index_of, 2, 2},
    {"STARTS_WITH", fn::starts_with, 2, 2},
    {"STARTSWITH", fn::starts_with, 2, 2},
    {"ENDS_WITH", fn::ends_with, 2, 2},
    {"ENDSWITH", fn::ends_with, 2, 2},
    {"CONTAINS", fn::contains, 2, 2},
};

class parser {
public:
    explicit parser(std::string_view text) : text_(text) {}

    result<node> run() {
        advance(0);
        auto root = parse_or();
        if (!root) return root.error();
        if (cur_.kind != tok::end) return unexpected(cur_, "expected AND, OR or the end of the condition");
        return root;
    }

private:
    std::string_view text_;
    token cur_;
    std::uint32_t depth_ = 0;

    error syntax_error(std::size_t pos, std::string what) const {
        return {errc::invalid_argument, "Syntax error at " + where_text(text_, pos) + ": " + std::move(what)};
    }

    // "expected X, found Y", or the lexer's complaint when Y is malformed.
    error unexpected(const token& t, const std::string& expected) const {
        if (t.kind == tok::bad) return syntax_error(t.pos, t.error + " in " + describe(t));
        return syntax_error(t.pos, expected + ", found " + describe(t));
    }

    static std::string describe(const token& t) {
        if (t.kind == tok::end) return "the end of the condition";
        std::string_view s = t.text.substr(0, 32);
        return "'" + std::string(s) + (t.text.size() > 32 ? "...'" : "'");
    }

    // --- lexer ---

    void advance(std::size_t from) { cur_ = detail::lex(text_, from); }
    void next() { advance(cur_.end); }
    token lex(std::size_t from) const { return detail::lex(text_, from); }
    bool lex_key(std::size_t from, std::string& key, std::size_t& end) const {
        return detail::lex_key(text_, from, key, end);
    }

    bool is_keyword(const token& t, std::string_view kw) const { return t.kind == tok::ident && iequals(t.text, kw); }
    bool is_oper(const token& t, std::string_view o) const { return t.kind == tok::oper && t.text == o; }

    // --- grammar ---

    struct depth_guard {
        std::uint32_t& d;
        explicit depth_guard(std::uint32_t& depth) : d(depth) { ++d; }
        ~depth_guard() { --d; }
    };

    error too_deep(std::size_t pos) const {
        return syntax_error(
            pos, "expression nested too deeply (more than " + std::to_string(max_condition_depth) + " levels)");
    }

    static node make(node::kind k, std::size_t pos) {
        node n;
        n.k = k;
        n.position = pos;
        return n;
    }

    // A binary node; `chain` counts how long a left-deep chain has grown so that `1 + 1 + ...`
    // stays within the evaluator's recursion bound too.
    result<node> binary(op o, std::size_t pos, node lhs, node rhs, std::uint32_t& chain) {
        if (++chain + depth_ > max_condition_depth) return too_deep(pos);
        node n = make(node::kind::binary, pos);
        n.o = o;
        n.args.push_back(std::move(lhs));
        n.args.push_back(std::move(rhs));
        return n;
    }

    // OR and AND chains become one n-ary node, so that a long `a OR b OR ...` costs no depth.
    result<node> parse_or() {
        depth_guard g(depth_);
        if (depth_ > max_condition_depth) return too_deep(cur_.pos);
        return parse_chain(op::logical_or);
    }

    result<node> parse_chain(op o) {
        const bool is_or = o == op::logical_or;
        auto first = is_or ? parse_chain(op::logical_and) : parse_not();
        if (!first) return first;
        if (!is_keyword(cur_, is_or ? "OR" : "AND")) return first;
        node n = make(node::kind::binary, cur_.pos);
        n.o = o;
        n.args.push_back(std::move(*first));
        while (is_keyword(cur_, is_or ? "OR" : "AND")) {
            next();
            auto rhs = is_or ? parse_chain(op::logical_and) : parse_not();
            if (!rhs) return rhs;
            n.args.push_back(std::move(*rhs));
        }
        return n;
    }

    result<node> parse_not() {
        if (!is_keyword(cur_, "NOT")) return parse_comparison();
        depth_guard g(depth_);
        if (depth_ > max_condition_depth) return too_deep(cur_.pos);
        std::size_t pos = cur_.pos;
        next();
        auto operand = parse_not();
        if (!operand) return operand;
        node n = make(node::kind::unary, pos);
        n.o = op::logical_not;
        n.args.push_back(std::move(*operand));
        return n;
    }

    static bool comparison_op(const token& t, op& o) {
        if (t.kind != tok::oper) return false;
        if (t.text == "=")
            o = op::eq;
        else if (t.text == "!=" || t.text == "<>")
            o = op::ne;
        else if (t.text == "<")
            o = op::lt;
        else if (t.text == "<=")
            o = op::le;
        else if (t.text == ">")
            o = op::gt;
        else if (t.text == ">=")
            o = op::ge;
        else
            return false;
        return true;
    }

    result<node> parse_comparison() {
        auto lhs = parse_additive();
        if (!lhs) return lhs;
        std::uint32_t chain = 0;
        op o{};
        while (comparison_op(cur_, o)) {
            std::size_t pos = cur_.pos;
            next();
            auto rhs = parse_additive();
            if (!rhs) return rhs;
            auto n = binary(o, pos, std::move(*lhs), std::move(*rhs), chain);
            if (!n) return n;
            lhs = std::move(n);
        }
        return lhs;
    }

    result<node> parse_additive() {
        auto lhs = parse_multiplicative();
        if (!lhs) return lhs;
        std::uint32_t chain = 0;
        while (is_oper(cur_, "+") || is_oper(cur_, "-")) {
            op o = cur_.text == "+" ? op::add : op::sub;
            std::size_t pos = cur_.pos;
            next();
            auto rhs = parse_multiplicative();
            if (!rhs) return rhs;
            auto n = binary(o, pos, std::move(*lhs), std::move(*rhs), chain);
            if (!n) return n;
            lhs = std::move(n);
        }
        return lhs;
    }

    result<node> parse_multiplicative() {
        auto lhs = parse_unary();
        if (!lhs) return lhs;
        std::uint32_t chain = 0;
        while (is_oper(cur_, "*") || is_oper(cur_, "/") || is_oper(cur_, "%")) {
            op o = cur_.text == "*" ? op::mul : cur_.text == "/" ? op::div : op::mod;
            std::size_t pos = cur_.pos;
            next();
            auto rhs = parse_unary();
            if (!rhs) return rhs;
            auto n = binary(o, pos, std::move(*lhs), std::move(*rhs), chain);
            if (!n) return n;
            lhs = std::move(n);
        }
        return lhs;
    }

    result<node> parse_unary() {
        if (!is_oper(cur_, "-") && !is_oper(cur_, "+")) return parse_primary();
        depth_guard g(depth_);
        if (depth_ > max_condition_depth) return too_deep(cur_.pos);
        op o = cur_.text == "-" ? op::neg : op::pos;
        std::size_t pos = cur_.pos;
        next();
        auto operand = parse_unary();
        if (!operand) return operand;
        node n = make(node::kind::unary, pos);
        n.o = o;
        n.args.push_back(std::move(*operand));
        return n;
    }

    result<node> parse_primary() {
        const std::size_t pos = cur_.pos;
        switch (cur_.kind) {
            case tok::bad:
            case tok::end: return unexpected(cur_, "expected an operand");
            case tok::number: {
                node n = make(node::kind::literal, pos);
                n.lit.t = detail::literal::type::number;
                n.lit.n = cur_.number;
                next();
                return n;
            }
            case tok::string: {
                node n = make(node::kind::literal, pos);
                n.lit.t = detail::literal::type::string;
                n.lit.s = std::move(cur_.str);
                next();
                return n;
            }
            case tok::lparen: {
                next();
                auto inner = parse_or();
                if (!inner) return inner;
                if (cur_.kind != tok::rparen)
                    return unexpected(cur_, "expected ')' to close the '(' at position " + std::to_string(pos));
                next();
                return inner;
            }
            case tok::lbracket: return syntax_error(pos, "array literals are not supported in route conditions");
            case tok::ident: break;
            default: return unexpected(cur_, "expected an operand");
        }
        const std::string_view word = cur_.text;
        using lt = detail::literal::type;
        for (auto [kw, type, b] :
             {std::tuple{"true", lt::boolean, true}, std::tuple{"false", lt::boolean, false},
              std::tuple{"null", lt::null, false}, std::tuple{"undefined", lt::undefined, false}}) {
            if (iequals(word, kw)) {
                node n = make(node::kind::literal, pos);
                n.lit.t = type;
                n.lit.b = b;
                next();
                return n;
            }
        }
        for (const char* kw : {"AND", "OR", "NOT"})
            if (iequals(word, kw)) return syntax_error(pos, "expected an operand, found " + describe(cur_));
        token after = lex(cur_.end);
        if (after.kind == tok::lparen) return parse_call(after);
        return parse_reference();
    }

    result<node> parse_call(const token& lparen) {
        const std::size_t pos = cur_.pos;
        const std::string name(cur_.text);
        const function_spec* spec = nullptr;
        for (const auto& f : functions)
            if (iequals(name, f.name)) spec = &f;
        if (!spec) return syntax_error(pos, "unknown function '" + name + "'");
        depth_guard g(depth_);
        if (depth_ > max_condition_depth) return too_deep(pos);
        node n = make(node::kind::call, pos);
        n.f = spec->f;
        advance(lparen.end);
        if (cur_.kind != tok::rparen) {
            while (true) {
                auto arg = parse_or();
                if (!arg) return arg;
                n.args.push_back(std::move(*arg));
                if (n.args.size() > 64)
                    return syntax_error(cur_.pos, "too many arguments to " + std::string(spec->name));
                if (cur_.kind == tok::comma) {
                    next();
                    continue;
                }
                if (cur_.kind == tok::rparen) break;
                return unexpected(cur_, "expected ',' or ')' in the arguments of " + std::string(spec->name));
            }
        }
        next();
        const int count = static_cast<int>(n.args.size());
        if (count < spec->min_args || (spec->max_args >= 0 && count > spec->max_args)) {
            std::string want = spec->min_args == spec->max_args ? std::to_string(spec->min_args)
                               : spec->max_args < 0
                                   ? "at least " + std::to_string(spec->min_args)
                                   : std::to_string(spec->min_args) + " or " + std::to_string(spec->max_args);
            return syntax_error(pos, std::string(spec->name) + " takes " + want + " argument" +
                                         (want == "1" ? "" : "s") + ", found " + std::to_string(count));
        }
        return n;
    }

    result<node> parse_reference() {
        const std::size_t pos = cur_.pos;
        node n = make(node::kind::reference, pos);
        const std::string head(cur_.text);
        if (iequals(head, "$body")) {
            n.ref = detail::ref_kind::body;
        } else if (iequals(head, "$twin")) {
            n.ref = detail::ref_kind::twin;
        } else if (head[0] == '$') {
            n.ref = detail::ref_kind::system_property;
        } else {
            n.ref = detail::ref_kind::app_property;
        }
        n.name = head;
        next();
        while (cur_.kind == tok::dot || cur_.kind == tok::lbracket) {
            if (n.path.size() >= 64) return syntax_error(cur_.pos, "property path too long (more than 64 members)");
            if (cur_.kind == tok::dot) {
                detail::segment s;
                std::size_t end = 0;
                if (!lex_key(cur_.end, s.key, end))
                    return syntax_error(cur_.end,
                                        "expected a property name after '.', found " + describe(lex(cur_.end)));
                n.path.push_back(std::move(s));
                advance(end);
                continue;
            }
            const std::size_t bracket = cur_.pos;
            next();
            if (cur_.kind != tok::number || cur_.number < 0 ||
                cur_.number != static_cast<double>(static_cast<std::uint64_t>(cur_.number)) || cur_.number > 1e9)
                return unexpected(cur_, "expected an array index (a non-negative integer) after '['");
            detail::segment s;
            s.is_index = true;
            s.index = static_cast<std::size_t>(cur_.number);
            n.path.push_back(std::move(s));
            next();
            if (cur_.kind != tok::rbracket)
                return unexpected(cur_, "expected ']' to close the '[' at position " + std::to_string(bracket));
            next();
        }
        if (n.ref == detail::ref_kind::app_property || n.ref == detail::ref_kind::system_property) {
            // Properties are flat strings: `a.b` names the property "a.b".
            for (const auto& s : n.path) {
                if (s.is_index)
                    return syntax_error(pos,
                                        "'" + head + "' is a message property (a string); it has no array elements");
                n.name += '.';
                n.name += s.key;
            }
            n.path.clear();
        }
        return n;
    }
};

}  // namespace

result<condition> condition::compile(std::string_view text) {
    if (text.size() > max_condition_length)
        return error{errc::invalid_argument, "condition is " + std::to_string(text.size()) + " bytes long; at most " +
                                                 std::to_string(max_condition_length) + " are allowed"};
    condition c;
    c.text_.assign(text);
    bool blank = true;
    for (char ch : text) blank = blank && is_space(ch);
    node root;
    if (blank) {
        root.k = node::kind::literal;
        root.lit.t = detail::literal::type::boolean;
        root.lit.b = true;
    } else {
        auto parsed = parser(text).run();
        if (!parsed) return parsed.error();
        root = std::move(*parsed);
    }
    c.root_ = std::make_shared<const node>(std::move(root));
    return c;
}

}  // namespace twinhub::telemetry
