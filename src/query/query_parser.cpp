#include "query/query_parser.hpp"

#include "common/text.hpp"
#include "query/query_parser_impl.hpp"

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

namespace detail {




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

result<query_plan> parser::run() {
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

result<void> parser::parse_select() {
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

result<void> parser::parse_from() {
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

result<void> parser::check_projections() {
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

const expr* parser::ungrouped_path(const expr& e) const {
    if (e.kind == expr_kind::aggregate) return nullptr;
    if (e.kind == expr_kind::path || e.kind == expr_kind::is_defined) {
        if (std::find(plan_.group_by.begin(), plan_.group_by.end(), e.path) == plan_.group_by.end()) return &e;
        return nullptr;
    }
    for (auto& c : e.children)
        if (auto b = ungrouped_path(c)) return b;
    return nullptr;
}

bool parser::contains_aggregate(const expr& e) {
    if (e.kind == expr_kind::aggregate) return true;
    for (auto& c : e.children)
        if (contains_aggregate(c)) return true;
    return false;
}

std::uint32_t parser::height(const std::vector<expr>& children) {
    std::uint32_t h = 0;
    for (auto& c : children) h = std::max(h, c.depth);
    return h + 1;
}

}  // namespace detail

using detail::parser;
using detail::lex;


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
