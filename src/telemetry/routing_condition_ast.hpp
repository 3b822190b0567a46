// The syntax tree of a compiled route condition, shared by the parser (routing_condition_parser.cpp)
// and the evaluator (routing_condition.cpp). Internal to twinhub_telemetry_routing.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace twinhub::telemetry::detail {

enum class ref_kind {
    app_property,     // bare name: `level`, `a.b` (the name "a.b")
    system_property,  // `$contentType`, `$connectionDeviceId`, ... (falls back to an app property "$name")
    body,             // `$body.a.b[0]`
    twin,             // `$twin.tags.x`, `$twin.properties.desired.x`
};

enum class op {
    logical_or,
    logical_and,
    logical_not,
    eq,
    ne,
    lt,
    le,
    gt,
    ge,
    add,
    sub,
    mul,
    div,
    mod,
    neg,
    pos,
};

enum class fn {
    is_defined,
    is_null,
    is_bool,
    is_number,
    is_string,
    is_object,
    is_array,
    is_primitive,
    as_number,
    abs,
    exp,
    power,
    square,
    ceiling,
    floor,
    sign,
    sqrt,
    concat,
    length,
    lower,
    upper,
    substring,
    index_of,
    starts_with,
    ends_with,
    contains,
};

struct segment {
    std::string key;        // object member, when !is_index
    std::size_t index = 0;  // array element, when is_index
    bool is_index = false;
};

struct literal {
    enum class type { undefined, null, boolean, number, string } t = type::undefined;
    bool b = false;
    double n = 0;
    std::string s;
};

struct node {
    enum class kind { literal, reference, unary, binary, call } k = kind::literal;
    std::size_t position = 0;               // byte offset in the condition text, for messages
    literal lit;                            // kind::literal
    ref_kind ref = ref_kind::app_property;  // kind::reference
    std::string name;                       // app or system property name (system names keep their '$')
    std::vector<segment> path;              // $body / $twin members
    op o = op::logical_or;                  // kind::unary, kind::binary
    fn f = fn::is_defined;                  // kind::call
    std::vector<node> args;                 // operands (unary: 1, binary: 2, OR/AND: 2 or more) or call arguments
};

}  // namespace twinhub::telemetry::detail
