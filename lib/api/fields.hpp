// The strict reader of one request object used by lib/api's parsers (codec.cpp): each read names
// the field in its error (`"PortBindings"[0]."HostPort": expected a string, got number`), and
// no_others() names every field nobody read. Errors are ErrorKind::InvalidArgument.
// Also the lenient readers of answers (namespace lenient). Internal to lib/api. Threading: one
// object per parse; borrows the JSON, which must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.hpp"

namespace cnetd::api {

using json = nlohmann::json;

// Reads fields of one request object, remembering which were consumed so leftovers can be named.
class Fields {
public:
    // `where` prefixes field names in messages: `"PortBindings"[0].` gives
    // `"PortBindings"[0]."HostPort": expected a string, got number`.
    explicit Fields(const json& obj, std::string where = {})
        : obj_(obj), where_(std::move(where)) {}

    Result<std::string> required_string(const char* key) {
        if (!obj_.contains(key))
            return Error::invalid(fmt::format("{}\"{}\": required", where_, key));
        return optional_string(key);
    }

    Result<std::string> optional_string(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return std::string();
        if (!it->is_string())
            return Error::invalid(
                fmt::format("{}\"{}\": expected a string, got {}", where_, key, it->type_name()));
        return it->get<std::string>();
    }

    Result<bool> optional_bool(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return false;
        if (!it->is_boolean())
            return Error::invalid(
                fmt::format("\"{}\": expected a boolean, got {}", key, it->type_name()));
        return it->get<bool>();
    }

    // A JSON integer within `int` (0 when absent).
    Result<int> optional_int(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return 0;
        if (!it->is_number_integer())
            return Error::invalid(
                fmt::format("{}\"{}\": expected an integer, got {}", where_, key, it->type_name()));
        if (it->is_number_unsigned()
                ? it->get<uint64_t>() > uint64_t(INT32_MAX)
                : (it->get<int64_t>() < INT32_MIN || it->get<int64_t>() > INT32_MAX))
            return Error::invalid(fmt::format("{}\"{}\": {} is out of range ({} to {})", where_,
                                              key, it->dump(), INT32_MIN, INT32_MAX));
        return static_cast<int>(it->get<int64_t>());
    }

    Result<std::map<std::string, std::string>> optional_string_map(const char* key) {
        seen_.push_back(key);
        std::map<std::string, std::string> out;
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return out;
        if (!it->is_object())
            return Error::invalid(
                fmt::format("\"{}\": expected an object of strings, got {}", key, it->type_name()));
        for (const auto& [k, v] : it->items()) {
            if (!v.is_string())
                return Error::invalid(
                    fmt::format("\"{}\".\"{}\": expected a string, got {}", key, k, v.type_name()));
            out.emplace(k, v.get<std::string>());
        }
        return out;
    }

    Result<std::vector<std::string>> optional_string_array(const char* key) {
        seen_.push_back(key);
        std::vector<std::string> out;
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return out;
        if (!it->is_array())
            return Error::invalid(
                fmt::format("\"{}\": expected an array of strings, got {}", key, it->type_name()));
        for (size_t i = 0; i < it->size(); ++i) {
            const json& v = (*it)[i];
            if (!v.is_string())
                return Error::invalid(
                    fmt::format("\"{}\"[{}]: expected a string, got {}", key, i, v.type_name()));
            out.push_back(v.get<std::string>());
        }
        return out;
    }

    // The array at `key` (null/absent: an empty array); each element is the caller's to check.
    Result<json> optional_array(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return json::array();
        if (!it->is_array())
            return Error::invalid(
                fmt::format("\"{}\": expected an array, got {}", key, it->type_name()));
        return *it;
    }

    // Every field not read so far, in one message: `unknown fields "Foo", "bar"`.
    Result<void> no_others() const {
        std::vector<std::string> unknown;
        for (const auto& [k, v] : obj_.items()) {
            bool known = false;
            for (const char* s : seen_) known = known || k == s;
            if (!known) unknown.push_back(fmt::format("\"{}\"", k));
        }
        if (unknown.empty()) return ok();
        std::string list;
        for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
        return Error::invalid(
            fmt::format("unknown field{} {}", unknown.size() == 1 ? "" : "s", list));
    }

private:
    const json& obj_;
    std::string where_;
    std::vector<const char*> seen_;
};

// The lenient readers of answers (codec.hpp's from_json): the value at `key` when `j` is an object
// holding it with the right type, else the type's default.
namespace lenient {

inline std::string str(const json& j, const char* key) {
    auto it = j.is_object() ? j.find(key) : j.end();
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
inline bool boolean(const json& j, const char* key) {
    auto it = j.is_object() ? j.find(key) : j.end();
    return it != j.end() && it->is_boolean() && it->get<bool>();
}
inline uint64_t number(const json& j, const char* key) {
    auto it = j.is_object() ? j.find(key) : j.end();
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}
inline std::vector<std::string> strings(const json& j, const char* key) {
    std::vector<std::string> out;
    auto it = j.is_object() ? j.find(key) : j.end();
    if (it == j.end() || !it->is_array()) return out;
    for (const auto& s : *it)
        if (s.is_string()) out.push_back(s.get<std::string>());
    return out;
}
inline std::map<std::string, std::string> strmap(const json& j, const char* key) {
    std::map<std::string, std::string> out;
    auto it = j.is_object() ? j.find(key) : j.end();
    if (it == j.end() || !it->is_object()) return out;
    for (const auto& [k, v] : it->items())
        if (v.is_string()) out.emplace(k, v.get<std::string>());
    return out;
}
inline const json& member(const json& j, const char* key) {
    static const json null;
    auto it = j.is_object() ? j.find(key) : j.end();
    return it != j.end() ? *it : null;
}

}  // namespace lenient

}  // namespace cnetd::api
