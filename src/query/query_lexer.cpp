#include "query/query_lexer.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace twinhub::query::detail {


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

namespace {

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

}  // namespace

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

}  // namespace twinhub::query::detail
