#pragma once
// Typed access to tokenizer.json fields with errors that name the component and the field.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tokenizer/regex.h"
#include "util/error.h"

namespace dsa::tok {

using json = nlohmann::json;

inline const json& field(const json& obj, std::string_view key, std::string_view where) {
    if (!obj.is_object()) throw Error("{}: expected a JSON object", where);
    const auto it = obj.find(key);
    if (it == obj.end()) throw Error("{}: missing field '{}'", where, key);
    return *it;
}

inline std::string string_field(const json& obj, std::string_view key, std::string_view where) {
    const json& v = field(obj, key, where);
    if (!v.is_string()) throw Error("{}: field '{}' must be a string", where, key);
    return v.get<std::string>();
}

// Missing or null gives `fallback`.
inline bool bool_field(const json& obj, std::string_view key, bool fallback, std::string_view where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw Error("{}: field '{}' must be true or false", where, key);
    return it->get<bool>();
}

inline long long int_field(const json& obj, std::string_view key, long long fallback,
                           std::string_view where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_number_integer()) throw Error("{}: field '{}' must be an integer", where, key);
    return it->get<long long>();
}

inline std::string type_of(const json& obj, std::string_view where) {
    if (!obj.is_object()) throw Error("{}: expected a JSON object with a 'type'", where);
    return string_field(obj, "type", where);
}

// A {"String": "..."} or {"Regex": "..."} pattern as used by Split, Replace and the Replace decoder;
// strings match literally, regexes use Oniguruma syntax.
inline Regex pattern_field(const json& obj, std::string_view where) {
    const json& p = field(obj, "pattern", where);
    if (p.is_object() && p.contains("String") && p["String"].is_string())
        return Regex(Regex::escape(p["String"].get<std::string>()), RegexDialect::Oniguruma);
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string())
        return Regex(p["Regex"].get<std::string>(), RegexDialect::Oniguruma);
    throw Error("{}: field 'pattern' must be {{\"String\": ...}} or {{\"Regex\": ...}}", where);
}

}  // namespace dsa::tok
