#include "query/query_parser.hpp"

#include "common/text.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace twinhub::query {

const char* query_plan::item_type() const noexcept {
    if (from == collection::jobs) return "deviceJob";
    return select_all ? "twin" : "raw";
}

namespace {

constexpr std::uint32_t max_depth = max_expression_depth;

enum class tok : std::uint8_t {
    end, ident, number, string, lparen, rparen, lbracket, rbracket, comma, dot,
    star, plus, minus, slash, percent, eq, ne, lt, gt, le, ge,
};

struct token {
    tok kind = tok::end;
    std::size_t pos = 0;
    std::string_view raw;  // the source text of the token
    std::string text;      // decoded string literal
    double number = 0;
};

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '@'; }
bool ident_char(char c) { return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

std::string where_text(std::string_view sql, std::size_t pos) {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos && i < sql.size(); ++i) {
        if (sql[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return "position " + std::to_string(pos) + " (line " + std::to_string(line) + ", column " + std::to_string(col) + ")";
}

error syntax_error(std::string_view sql, std::size_t pos, std::string what) {
    return {errc::invalid_argument, "Syntax error at " + where_text(sql, pos) + ": " + std::move(what)};
}

error type_error(std::string_view sql, std::size_t pos, std::string what) {
    return {errc::invalid_argument, "Type error at " + where_text(sql, pos) + ": " + std::move(what)};
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// ---------------------------------------------------------------------------------------------
// Lexer

result<std::vector<token>> lex(std::string_view sql) {
    std::vector<token> out;
    std::size_t i = 0;
    const std::size_t n = sql.size();
    while (true) {
        while (i < n && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
        token t;
        t.pos = i;
        if (i == n) {
            t.kind = tok::end;
            out.push_back(std::move(t));
            return out;
        }
        const char c = sql[i];
        if (ident_start(c)) {
            std::size_t j = i + 1;
            while (j < n && ident_char(sql[j])) ++j;
            t.kind = tok::ident;
            t.raw = sql.substr(i, j - i);
            i = j;
        } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                   (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
            std::size_t j = i;
            if (c == '0' && j + 1 < n && (sql[j + 1] == 'x' || sql[j + 1] == 'X')) {
                j += 2;
                const std::size_t digits = j;
                double v = 0;
                while (j < n && hex_value(sql[j]) >= 0) v = v * 16 + hex_value(sql[j++]);
                if (j == digits) return syntax_error(sql, i, "expected hexadecimal digits after '0x'");
                t.number = v;
            } else {
                while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
                if (j < n && sql[j] == '.') {
                    ++j;
                    while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
                }
                if (j < n && (sql[j] == 'e' || sql[j] == 'E')) {
                    std::size_t k = j + 1;
                    if (k < n && (sql[k] == '+' || sql[k] == '-')) ++k;
                    if (k < n && std::isdigit(static_cast<unsigned char>(sql[k]))) {
                        j = k;
                        while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
                    }
                }
                // std::from_chars for double is available in libstdc++ 11+.
                double v = 0;
                auto [p, ec] = std::from_chars(sql.data() + i, sql.data() + j, v);
                if (ec != std::errc() || p != sql.data() + j || !std::isfinite(v))
                    return syntax_error(sql, i, "invalid number '" + std::string(sql.substr(i, j - i)) + "'");
                t.number = v;
            }
            if (j < n && ident_char(sql[j]))
                return syntax_error(sql, i, "invalid number '" + std::string(sql.substr(i, j - i + 1)) + "'");
            t.kind = tok::number;
            t.raw = sql.substr(i, j - i);
            i = j;
        } else if (c == '\'' || c == '"') {
            std::size_t j = i + 1;
            std::string s;
            bool closed = false;
            while (j < n) {
                const char d = sql[j];
                if (d == c) {
                    closed = true;
                    ++j;
                    break;
                }
                if (d == '\\') {
                    if (j + 1 >= n) break;
                    const char e = sql[j + 1];
                    if (e == '\'' || e == '"' || e == '\\' || e == '/') {
                        s += e;
                        j += 2;
                    } else if (e == 'u') {
                        std::uint32_t cp = 0;
                        for (std::size_t k = 0; k < 4; ++k) {
                            const int h = j + 2 + k < n ? hex_value(sql[j + 2 + k]) : -1;
                            if (h < 0) return syntax_error(sql, j, "expected 4 hexadecimal digits after \\u");
                            cp = cp * 16 + static_cast<std::uint32_t>(h);
                        }
                        j += 6;
                        // A UTF-16 surrogate pair written as two escapes.
                        if (cp >= 0xD800 && cp <= 0xDBFF && j + 5 < n && sql[j] == '\\' && sql[j + 1] == 'u') {
                            std::uint32_t lo = 0;
                            bool ok = true;
                            for (std::size_t k = 0; k < 4; ++k) {
                                const int h = hex_value(sql[j + 2 + k]);
                                if (h < 0) ok = false;
                                lo = lo * 16 + static_cast<std::uint32_t>(h < 0 ? 0 : h);
                            }
                            if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                j += 6;
                            }
                        }
                        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
                        append_utf8(s, cp);
                    } else {
                        return syntax_error(sql, j,
                                            "invalid escape '\\" + std::string(1, e) +
                                                "' in string (allowed: \\' \\\" \\\\ \\uXXXX)");
                    }
                } else {
                    s += d;
                    ++j;
                }
            }
            if (!closed) return syntax_error(sql, i, "unterminated string literal");
            t.kind = tok::string;
            t.raw = sql.substr(i, j - i);
            t.text = std::move(s);
            i = j;
        } else {
            auto one = [&](tok k) {
                t.kind = k;
                t.raw = sql.substr(i, 1);
                ++i;
            };
            auto two = [&](tok k) {
                t.kind = k;
                t.raw = sql.substr(i, 2);
                i += 2;
            };
            const char d = i + 1 < n ? sql[i + 1] : '\0';
            switch (c) {
                case '(': one(tok::lparen); break;
                case ')': one(tok::rparen); break;
                case '[': one(tok::lbracket); break;
                case ']': one(tok::rbracket); break;
                case ',': one(tok::comma); break;
                case '.': one(tok::dot); break;
                case '*': one(tok::star); break;
                case '+': one(tok::plus); break;
                case '-': one(tok::minus); break;
                case '/': one(tok::slash); break;
                case '%': one(tok::percent); break;
                case '=': one(tok::eq); break;
                case '!':
                    if (d == '=') {
                        two(tok::ne);
                        break;
                    }
                    return syntax_error(sql, i, "unexpected character '!' (did you mean '!='?)");
                case '<':
                    if (d == '=') two(tok::le);
                    else if (d == '>') two(tok::ne);
                    else one(tok::lt);
                    break;
                case '>':
                    if (d == '=') two(tok::ge);
                    else one(tok::gt);
                    break;
                default: {
                    std::string shown;
                    if (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F) shown = std::string(1, c);
                    else {
                        static const char* hex = "0123456789ABCDEF";
                        shown = std::string("\\x") + hex[(static_cast<unsigned char>(c) >> 4) & 0xF] +
                                hex[static_cast<unsigned char>(c) & 0xF];
                    }
                    return syntax_error(sql, i, "unexpected character '" + shown + "'");
                }
            }
        }
        out.push_back(std::move(t));
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

const char* const reserved[] = {"select", "from", "where", "group", "by", "and", "or", "not",
                                "in", "nin", "as", "top"};

bool is_reserved(std::string_view w) {
    for (const char* r : reserved)
        if (iequals(w, r)) return true;
    return false;
}

std::string json_text(const boost::json::value& v) { return boost::json::serialize(v); }

const char* type_name(const boost::json::value& v) {
    switch (v.kind()) {
        case boost::json::kind::null: return "null";
        case boost::json::kind::bool_: return "boolean";
        case boost::json::kind::string: return "string";
        case boost::json::kind::array: return "array";
        case boost::json::kind::object: return "object";
        default: return "number";
    }
}

const char* op_text(binary_op op) {
    switch (op) {
        case binary_op::add: return "+";
        case binary_op::sub: return "-";
        case binary_op::mul: return "*";
        case binary_op::div: return "/";
        case binary_op::mod: return "%";
        case binary_op::eq: return "=";
        case binary_op::ne: return "!=";
        case binary_op::lt: return "<";
        case binary_op::gt: return ">";
        case binary_op::le: return "<=";
        case binary_op::ge: return ">=";
        case binary_op::logical_and: return "AND";
        case binary_op::logical_or: return "OR";
    }
    return "?";
}

class parser {
public:
    parser(std::string_view sql, std::vector<token> toks) : sql_(sql), toks_(std::move(toks)) {}

    result<query_plan> run() {
        plan_.text = std::string(sql_);
        if (auto r = parse_select(); !r) return r.error();
        if (auto r = parse_from(); !r) return r.error();
        if (accept_keyword("where")) {
            in_where_ = true;
            auto e = parse_expression();
            in_where_ = false;
            if (!e) return e.error();
            plan_.where = std::move(*e);
        }
        if (at_keyword("group")) {
            const std::size_t pos = peek().pos;
            advance();
            if (!accept_keyword("by")) return expected("BY");
            do {
                if (peek().kind != tok::ident || is_reserved(peek().raw)) return expected("a property path");
                auto p = parse_path();
                if (!p) return p.error();
                plan_.group_by.push_back(p->path);
            } while (accept(tok::comma));
            if (plan_.select_all)
                return type_error(sql_, pos, "GROUP BY needs a projection list with aggregates, not SELECT *");
        }
        if (peek().kind != tok::end) {
            if (plan_.where || !plan_.group_by.empty()) return expected("end of query");
            return expected("WHERE, GROUP BY or end of query");
        }
        if (auto r = check_projections(); !r) return r.error();
        return std::move(plan_);
    }

private:
    // ---- token helpers ----
    const token& peek(std::size_t ahead = 0) const {
        const std::size_t i = std::min(pos_ + ahead, toks_.size() - 1);
        return toks_[i];
    }
    void advance() {
        if (pos_ + 1 < toks_.size()) ++pos_;
    }
    bool accept(tok k) {
        if (peek().kind != k) return false;
        advance();
        return true;
    }
    bool at_keyword(std::string_view kw, std::size_t ahead = 0) const {
        return peek(ahead).kind == tok::ident && iequals(peek(ahead).raw, kw);
    }
    bool accept_keyword(std::string_view kw) {
        if (!at_keyword(kw)) return false;
        advance();
        return true;
    }
    std::string found() const {
        const token& t = peek();
        if (t.kind == tok::end) return "end of query";
        std::string raw(t.raw.substr(0, 40));
        return "'" + raw + (t.raw.size() > 40 ? "...'" : "'");
    }
    error expected(std::string what) const {
        return syntax_error(sql_, peek().pos, "expected " + what + ", found " + found());
    }

    // ---- clauses ----
    result<void> parse_select() {
        if (!accept_keyword("select")) return expected("SELECT");
        if (at_keyword("top")) {
            advance();
            const token& t = peek();
            if (t.kind != tok::number) return expected("a number after TOP");
            if (t.number < 0 || t.number != std::floor(t.number) || t.number > 9007199254740992.0)
                return type_error(sql_, t.pos, "TOP needs a non-negative integer, found " + std::string(t.raw));
            plan_.top = static_cast<std::uint64_t>(t.number);
            advance();
        }
        if (accept(tok::star)) {
            plan_.select_all = true;
            return {};
        }
        std::size_t unnamed = 0;
        do {
            if (peek().kind == tok::end || at_keyword("from")) return expected("a projection or '*'");
            projection p;
            in_projection_ = true;
            auto e = parse_expression();
            in_projection_ = false;
            if (!e) return e.error();
            p.value = std::move(*e);
            p.has_aggregate = contains_aggregate(p.value);
            if (accept_keyword("as")) {
                const token& a = peek();
                if (a.kind == tok::ident && !is_reserved(a.raw)) p.name = std::string(a.raw);
                else if (a.kind == tok::string) p.name = a.text;
                else return expected("an alias after AS");
                if (p.name.empty()) return type_error(sql_, a.pos, "an alias cannot be empty");
                p.named_by_alias = true;
                advance();
            } else if (p.value.kind == expr_kind::path) {
                const auto& segs = plan_.paths[p.value.path].segments;
                p.name = segs.back().index ? plan_.paths[p.value.path].text : segs.back().name;
            } else {
                p.name = "$" + std::to_string(++unnamed);
            }
            plan_.projections.push_back(std::move(p));
        } while (accept(tok::comma));
        return {};
    }

    result<void> parse_from() {
        if (!accept_keyword("from")) return expected("FROM");
        if (!at_keyword("devices")) return expected("'devices' or 'devices.modules'");
        advance();
        plan_.from = collection::devices;
        if (accept(tok::dot)) {
            if (accept_keyword("modules")) plan_.from = collection::modules;
            else if (accept_keyword("jobs")) plan_.from = collection::jobs;
            else return expected("'modules' or 'jobs' after 'devices.'");
        }
        return {};
    }

    // Aggregates may appear in SELECT only; non-aggregated paths of an aggregate query must be
    // grouped.
    result<void> check_projections() {
        bool any_aggregate = false;
        for (auto& p : plan_.projections) any_aggregate = any_aggregate || p.has_aggregate;
        plan_.aggregated = any_aggregate || !plan_.group_by.empty();
        for (std::size_t i = 0; i < plan_.projections.size(); ++i) {
            for (std::size_t j = 0; j < i; ++j)
                if (plan_.projections[j].name == plan_.projections[i].name)
                    return type_error(sql_, plan_.projections[i].value.position,
                                      "two projections are named '" + plan_.projections[i].name +
                                          "'; give one another name with AS");
        }
        if (!plan_.aggregated) return {};
        for (auto& p : plan_.projections) {
            if (auto bad = ungrouped_path(p.value)) {
                const auto& path = plan_.paths[bad->path];
                if (plan_.group_by.empty())
                    return type_error(sql_, bad->position,
                                      "'" + path.text +
                                          "' cannot be selected together with aggregates unless the query "
                                          "groups by it (GROUP BY " + path.text + ")");
                return type_error(sql_, bad->position,
                                  "'" + path.text + "' must appear in GROUP BY or inside an aggregate");
            }
        }
        return {};
    }

    const expr* ungrouped_path(const expr& e) const {
        if (e.kind == expr_kind::aggregate) return nullptr;
        if (e.kind == expr_kind::path || e.kind == expr_kind::is_defined) {
            if (std::find(plan_.group_by.begin(), plan_.group_by.end(), e.path) == plan_.group_by.end()) return &e;
            return nullptr;
        }
        for (auto& c : e.children)
            if (auto b = ungrouped_path(c)) return b;
        return nullptr;
    }

    static bool contains_aggregate(const expr& e) {
        if (e.kind == expr_kind::aggregate) return true;
        for (auto& c : e.children)
            if (contains_aggregate(c)) return true;
        return false;
    }

    // ---- expressions ----
    static std::uint32_t height(const std::vector<expr>& children) {
        std::uint32_t h = 0;
        for (auto& c : children) h = std::max(h, c.depth);
        return h + 1;
    }

    result<expr> finish(expr e) {
        e.depth = height(e.children);
        if (e.depth > max_depth)
            return syntax_error(sql_, e.position, "expression nested too deeply (more than " + std::to_string(max_depth) + " levels)");
        return e;
    }

    result<expr> make_binary(binary_op op, expr l, expr r, std::size_t pos) {
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

    struct depth_guard {
        std::uint32_t& d;
        explicit depth_guard(std::uint32_t& x) : d(x) { ++d; }
        ~depth_guard() { --d; }
    };

    result<expr> parse_expression() {
        depth_guard g(recursion_);
        if (recursion_ > max_depth) return syntax_error(sql_, peek().pos, "expression nested too deeply");
        return parse_or();
    }

    result<expr> parse_or() {
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

    result<expr> parse_and() {
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

    result<expr> parse_not() {
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

    result<expr> parse_comparison() {
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

    result<expr> parse_additive() {
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

    result<expr> parse_multiplicative() {
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

    result<expr> parse_unary() {
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

    // A number constant as a JSON value: integral values within 2^53 become int64 so that they
    // print as integers.
    static boost::json::value number_value(double d) {
        if (d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) return static_cast<std::int64_t>(d);
        return d;
    }

    result<boost::json::value> parse_array_constant() {
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

    result<expr> parse_primary() {
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

    result<expr> parse_call() {
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

    static std::string upper(std::string_view s) {
        std::string r(s);
        for (auto& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return r;
    }

    struct parsed_path {
        std::size_t path;
    };

    // ident ( '.' ident | '[' string ']' | '[' integer ']' )*; a leading "devices." (and
    // "devices.modules."/"devices.jobs.") collection prefix is dropped.
    result<parsed_path> parse_path() {
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

    std::string_view sql_;
    std::vector<token> toks_;
    std::size_t pos_ = 0;
    query_plan plan_;
    std::uint32_t recursion_ = 0;
    bool in_where_ = false;
    bool in_projection_ = false;
    bool in_aggregate_ = false;
};

}  // namespace

result<query_plan> parse(std::string_view sql) {
    if (sql.size() > max_query_length)
        return error{errc::invalid_argument, "Query is " + std::to_string(sql.size()) + " characters long; the limit is " +
                                                 std::to_string(max_query_length)};
    auto toks = lex(sql);
    if (!toks) return toks.error();
    parser p(sql, std::move(*toks));
    return p.run();
}

}  // namespace twinhub::query
