// The lexer of route conditions: tokens, and path members after '.', which follow the looser rules
// of property names. Internal to twinhub_telemetry_routing; never throws.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace twinhub::telemetry::detail {

enum class tok { end, ident, number, string, lparen, rparen, lbracket, rbracket, comma, dot, oper, bad };

struct token {
    tok kind = tok::end;
    std::size_t pos = 0, end = 0;
    std::string_view text;
    double number = 0;
    std::string str;    // decoded string literal
    std::string error;  // tok::bad: what is wrong
};

bool is_space(char c);
bool ident_start(char c);

// The token at or after byte i of text (tok::end past the end, tok::bad with `error` set when the
// bytes there are no token).
token lex(std::string_view text, std::size_t i);

// A path member starting exactly at `from` (no blanks skipped): a property name, which may start
// with a digit or '$' ($metadata). False when there is none; otherwise key and the end offset.
bool lex_key(std::string_view text, std::size_t from, std::string& key, std::size_t& end);

}  // namespace twinhub::telemetry::detail
