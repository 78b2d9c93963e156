// resp::value: a reply of any shape as an owned tree, for callers that do not know its type.
#pragma once

#include <akv/resp/type.hpp>

#include <string>
#include <vector>

namespace akv::resp {

struct value {
    type data_type = type::null;
    std::string str;             // scalars, as on the wire ("txt:" kept on verbatim strings)
    std::vector<value> elements; // aggregates; a map holds key, value, key, value, ...

    bool is_null() const noexcept { return data_type == type::null; }
    bool is_error() const noexcept { return resp::is_error(data_type); }
    bool is_aggregate() const noexcept { return resp::is_aggregate(data_type); }

    friend bool operator==(const value&, const value&) = default;
};

} // namespace akv::resp
