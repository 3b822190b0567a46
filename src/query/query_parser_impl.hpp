// The IoT Hub query language parser (private to src/query): a recursive-descent parser over the
// lexer's tokens producing a query_plan. query_parser.cpp holds the statement level (SELECT, FROM,
// WHERE, GROUP BY, projection checks), query_expression.cpp the expressions.
#pragma once

#include "common/text.hpp"
#include "query/query_lexer.hpp"
#include "query/query_parser.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::query::detail {

inline constexpr std::uint32_t max_depth = max_expression_depth;

bool is_reserved(std::string_view w);
std::string json_text(const boost::json::value& v);
const char* type_name(const boost::json::value& v);
const char* op_text(binary_op op);

class parser {
public:
    parser(std::string_view sql, std::vector<token> toks) : sql_(sql), toks_(std::move(toks)) {}

    result<query_plan> run();

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
    result<void> parse_select();

    result<void> parse_from();

    // Aggregates may appear in SELECT only; non-aggregated paths of an aggregate query must be
    // grouped.
    result<void> check_projections();

    const expr* ungrouped_path(const expr& e) const;

    static bool contains_aggregate(const expr& e);

    // ---- expressions ----
    static std::uint32_t height(const std::vector<expr>& children);

    result<expr> finish(expr e);

    result<expr> make_binary(binary_op op, expr l, expr r, std::size_t pos);

    struct depth_guard {
        std::uint32_t& d;
        explicit depth_guard(std::uint32_t& x) : d(x) { ++d; }
        ~depth_guard() { --d; }
    };

    result<expr> parse_expression();

    result<expr> parse_or();

    result<expr> parse_and();

    result<expr> parse_not();

    result<expr> parse_comparison();

    result<expr> parse_additive();

    result<expr> parse_multiplicative();

    result<expr> parse_unary();

    // A number constant as a JSON value: integral values within 2^53 become int64 so that they
    // print as integers.
    static boost::json::value number_value(double d);

    result<boost::json::value> parse_array_constant();

    result<expr> parse_primary();

    result<expr> parse_call();

    static std::string upper(std::string_view s);

    struct parsed_path {
        std::size_t path;
    };

    // ident ( '.' ident | '[' string ']' | '[' integer ']' )*; a leading "devices." (and
    // "devices.modules."/"devices.jobs.") collection prefix is dropped.
    result<parsed_path> parse_path();

    std::string_view sql_;
    std::vector<token> toks_;
    std::size_t pos_ = 0;
    query_plan plan_;
    std::uint32_t recursion_ = 0;
    bool in_where_ = false;
    bool in_projection_ = false;
    bool in_aggregate_ = false;
};

}  // namespace twinhub::query::detail
