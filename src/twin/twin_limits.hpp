// The validation limits of twin sections (spec 4.4): key rules, value types, integer range, string
// length, nesting depth, per-property and per-section size with the hub's size algorithm.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace twinhub::twin {

inline constexpr std::size_t max_key_bytes = 1024;
inline constexpr std::size_t max_string_bytes = 4096;
inline constexpr std::size_t max_property_bytes = 4096;  // size of one leaf value (array or scalar)
inline constexpr int max_depth = 10;                      // object/array levels below the section root
inline constexpr std::size_t max_tags_bytes = 8 * 1024;
inline constexpr std::size_t max_properties_bytes = 32 * 1024;  // desired, reported, each
inline constexpr std::int64_t min_integer = -4503599627370496;
inline constexpr std::int64_t max_integer = 4503599627370495;

// Validates a merge patch (or a replacement) for one section. `path` names the section in messages
// ("tags", "properties.desired", "properties.reported"). Object members may be null (a delete);
// nulls inside arrays are rejected. The caller strips the read-only root keys ($metadata,
// $version) first. Fails with invalid_argument naming the offending property path.
//
// Rules (spec 4.4): keys are <= 1024 UTF-8 bytes and contain no C0/C1 control characters, '.',
// '$' or ' '; values are bool, number, string, object or array; integers lie within
// [-4503599627370496, 4503599627370495]; strings are <= 4096 UTF-8 bytes; objects and arrays nest
// at most 10 levels below the section root (the section object itself is level 0); every leaf
// value (scalar or array) has a size (algorithm below) <= 4096 bytes.
result<void> validate_patch(const boost::json::object& patch, std::string_view path);

// Size of a section by the hub's algorithm: the sum over all properties of the UTF-8 length of the
// key plus the value size; strings count their UTF-8 bytes except C0/C1 control characters,
// numbers 8, booleans 4, objects the sum of their members, arrays the sum of their elements.
std::size_t section_size(const boost::json::object& section);
std::size_t value_size(const boost::json::value& v);

// Fails with invalid_argument when section_size(section) > max, e.g.
// "Twin section 'properties.desired' would be 32770 bytes; the maximum is 32768."
result<void> check_section_size(const boost::json::object& section, std::string_view path, std::size_t max);

}  // namespace twinhub::twin
