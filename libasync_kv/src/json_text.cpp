#include <akv/error.hpp>
#include <akv/json_text.hpp>

#include <boost/json/serialize.hpp>

#include <cmath>

namespace akv {

namespace {
// The first non-finite number at or below `v`: where it is ("" for `v` itself) and what.
const char* find_non_finite(const boost::json::value& v, std::string& path) {
    if (v.is_double()) {
        const double d = v.get_double();
        if (std::isnan(d)) return "NaN";
        if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
        return nullptr;
    }
    if (v.is_array()) {
        const auto& a = v.get_array();
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (const char* found = find_non_finite(a[i], path)) {
                path.insert(0, "[" + std::to_string(i) + "]");
                return found;
            }
        }
    } else if (v.is_object()) {
        for (const auto& [key, member] : v.get_object()) {
            if (const char* found = find_non_finite(member, path)) {
                path.insert(0, "." + std::string(key));
                return found;
            }
        }
    }
    return nullptr;
}
} // namespace

std::string json_text(const boost::json::value& v, std::string_view what) {
    std::string path;
    if (const char* found = find_non_finite(v, path))
        throw_error(error::type_mismatch, std::string(what) + path + " is " + found +
                                              ", which JSON cannot hold: nothing was written");
    return boost::json::serialize(v);
}

} // namespace akv
