// Bounds that keep a hostile or broken server from exhausting our memory.
#pragma once

#include <cstddef>

namespace akv::resp {

struct limits {
    std::size_t max_depth = 32;                       // nesting of aggregates
    std::size_t max_bulk_length = 512u * 1024 * 1024; // Redis's own proto-max-bulk-len default
    std::size_t max_aggregate_length = 1u << 30;      // elements of one array/map/set/push
};

} // namespace akv::resp
