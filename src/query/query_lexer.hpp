// The lexer of the IoT Hub query language (private to src/query): tokens with their source
// positions, and the positioned syntax/type errors the parser reports.
#pragma once

#include "common/errc.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::query::detail {

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

bool ident_start(char c);
bool ident_char(char c);
// "position N (line L, column C)" of a byte offset in `sql`.
std::string where_text(std::string_view sql, std::size_t pos);
error syntax_error(std::string_view sql, std::size_t pos, std::string what);
error type_error(std::string_view sql, std::size_t pos, std::string what);
// Tokens of `sql`, ending with tok::end; a syntax error for a bad literal or character.
result<std::vector<token>> lex(std::string_view sql);

}  // namespace twinhub::query::detail
