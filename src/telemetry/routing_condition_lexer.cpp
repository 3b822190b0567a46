// Lexer of route conditions (routing_condition_lexer.hpp).
#include "telemetry/routing_condition_lexer.hpp"
#include "telemetry/routing_lookup.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <utility>

namespace twinhub::telemetry::detail {
namespace {

bool is_digit(char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
}
bool ident_char(char c) {
    return ident_start(c) || is_digit(c);
}

// Characters that end a path member: Azure forbids whitespace and ()<>@,;:\"/?={} in property
// names and paths; '.', '[', ']' structure the path, and the operator characters end it so that
// `$body.a+1` is arithmetic.
bool key_char(char c) {
    if (is_space(c)) return false;
    switch (c) {
        case '(':
        case ')':
        case '<':
        case '>':
        case '@':
        case ',':
        case ';':
        case ':':
        case '\\':
        case '"':
        case '/':
        case '?':
        case '=':
        case '{':
        case '}':
        case '[':
        case ']':
        case '.':
        case '\'':
        case '+':
        case '*':
        case '%':
        case '!':
        case '-': return false;
        default: return static_cast<unsigned char>(c) >= 0x20;
    }
}

struct lexer {
    std::string_view text_;

    token lex(std::size_t i) const {
        while (i < text_.size() && is_space(text_[i])) ++i;
        token t;
        t.pos = i;
        if (i >= text_.size()) {
            t.end = i;
            return t;
        }
        const char c = text_[i];
        std::size_t j = i + 1;
        auto done = [&](tok k) {
            t.kind = k;
            t.end = j;
            t.text = text_.substr(i, j - i);
            return t;
        };
        switch (c) {
            case '(': return done(tok::lparen);
            case ')': return done(tok::rparen);
            case '[': return done(tok::lbracket);
            case ']': return done(tok::rbracket);
            case ',': return done(tok::comma);
            case '.': return done(tok::dot);
            case '+':
            case '-':
            case '*':
            case '/':
            case '%':
            case '=': return done(tok::oper);
            case '<':
                if (j < text_.size() && (text_[j] == '=' || text_[j] == '>')) ++j;
                return done(tok::oper);
            case '>':
                if (j < text_.size() && text_[j] == '=') ++j;
                return done(tok::oper);
            case '!':
                if (j < text_.size() && text_[j] == '=') {
                    ++j;
                    return done(tok::oper);
                }
                t.error = "'!' must be followed by '=' (use NOT for negation)";
                return done(tok::bad);
            case '\'':
            case '"': return lex_string(i);
            default: break;
        }
        if (is_digit(c)) return lex_number(i);
        if (ident_start(c)) {
            while (j < text_.size()) {
                if (ident_char(text_[j])) {
                    ++j;
                } else if (text_[j] == '-' && j + 1 < text_.size() && ident_start(text_[j + 1])) {
                    j += 2;  // `$iothub-enqueuedtime`, `processing-path`: a '-' between letters joins
                } else {
                    break;
                }
            }
            return done(tok::ident);
        }
        t.error = "unexpected character";
        return done(tok::bad);
    }

    token lex_number(std::size_t i) const {
        token t;
        t.pos = i;
        std::size_t j = i;
        if (text_[i] == '0' && i + 1 < text_.size() && (text_[i + 1] == 'x' || text_[i + 1] == 'X')) {
            j = i + 2;
            std::uint64_t v = 0;
            std::size_t start = j;
            while (j < text_.size() && std::isxdigit(static_cast<unsigned char>(text_[j]))) ++j;
            auto r = std::from_chars(text_.data() + start, text_.data() + j, v, 16);
            t.end = j;
            t.text = text_.substr(i, j - i);
            if (j == start || r.ec != std::errc{}) {
                t.kind = tok::bad;
                t.error = "malformed hexadecimal number";
            } else {
                t.kind = tok::number;
                t.number = static_cast<double>(v);
            }
            return t;
        }
        while (j < text_.size() && is_digit(text_[j])) ++j;
        if (j + 1 < text_.size() && text_[j] == '.' && is_digit(text_[j + 1])) {
            ++j;
            while (j < text_.size() && is_digit(text_[j])) ++j;
        }
        if (j < text_.size() && (text_[j] == 'e' || text_[j] == 'E')) {
            std::size_t k = j + 1;
            if (k < text_.size() && (text_[k] == '+' || text_[k] == '-')) ++k;
            if (k < text_.size() && is_digit(text_[k])) {
                j = k;
                while (j < text_.size() && is_digit(text_[j])) ++j;
            }
        }
        t.end = j;
        t.text = text_.substr(i, j - i);
        if (j < text_.size() && ident_char(text_[j])) {
            t.kind = tok::bad;
            t.end = j + 1;
            t.text = text_.substr(i, t.end - i);
            t.error = "malformed number";
            return t;
        }
        double v = 0;
        auto r = std::from_chars(text_.data() + i, text_.data() + j, v);
        if (r.ec != std::errc{} || r.ptr != text_.data() + j) {
            t.kind = tok::bad;
            t.error = "number out of range";
            return t;
        }
        t.kind = tok::number;
        t.number = v;
        return t;
    }

    static int hex_value(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    bool read_u4(std::size_t at, std::uint32_t& v) const {
        if (at + 4 > text_.size()) return false;
        v = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            int h = hex_value(text_[at + k]);
            if (h < 0) return false;
            v = v * 16 + static_cast<std::uint32_t>(h);
        }
        return true;
    }

    token lex_string(std::size_t i) const {
        token t;
        t.pos = i;
        const char quote = text_[i];
        std::size_t j = i + 1;
        auto bad = [&](std::size_t end, std::string why) {
            t.kind = tok::bad;
            t.end = end;
            t.text = text_.substr(i, end - i);
            t.error = std::move(why);
            return t;
        };
        while (true) {
            if (j >= text_.size()) return bad(j, "unterminated string literal");
            const char c = text_[j];
            if (c == quote) {
                ++j;
                break;
            }
            if (c != '\\') {
                t.str += c;
                ++j;
                continue;
            }
            if (j + 1 >= text_.size()) return bad(j + 1, "unterminated string literal");
            const char e = text_[j + 1];
            if (e == '\'' || e == '"' || e == '\\') {
                t.str += e;
                j += 2;
            } else if (e == 'u') {
                std::uint32_t cp = 0;
                if (!read_u4(j + 2, cp)) return bad(j + 2, "\\u must be followed by 4 hexadecimal digits");
                j += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    std::uint32_t lo = 0;
                    if (j + 1 < text_.size() && text_[j] == '\\' && text_[j + 1] == 'u' && read_u4(j + 2, lo) &&
                        lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        j += 6;
                    } else {
                        return bad(j, "unpaired UTF-16 surrogate in \\u escape");
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return bad(j, "unpaired UTF-16 surrogate in \\u escape");
                }
                append_utf8(t.str, cp);
            } else {
                return bad(j + 2, "unsupported escape '\\" + std::string(1, e) + "' (allowed: \\' \\\" \\\\ \\uXXXX)");
            }
        }
        t.kind = tok::string;
        t.end = j;
        t.text = text_.substr(i, j - i);
        return t;
    }

    // A path member after '.': a property name, which may start with a digit or '$' ($metadata).
    bool lex_key(std::size_t from, std::string& key, std::size_t& end) const {
        std::size_t j = from;
        while (j < text_.size()) {
            if (key_char(text_[j])) {
                ++j;
            } else if (text_[j] == '-' && j > from && j + 1 < text_.size() && ident_start(text_[j + 1])) {
                j += 2;
            } else {
                break;
            }
        }
        if (j == from) return false;
        key.assign(text_.substr(from, j - from));
        end = j;
        return true;
    }
};

}  // namespace

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

token lex(std::string_view text, std::size_t i) {
    return lexer{text}.lex(i);
}

bool lex_key(std::string_view text, std::size_t from, std::string& key, std::size_t& end) {
    return lexer{text}.lex_key(from, key, end);
}

}  // namespace twinhub::telemetry::detail
