#include <akv/kv/lru_dict.hpp>

#include "lua_scripts.hpp"

namespace akv::kv::detail {

// Immutable after construction: safe to share between threads.
const script& lru_set_script() {
    static const script s(lua::kv_lru_set);
    return s;
}

const script& lru_get_script() {
    static const script s(lua::kv_lru_get);
    return s;
}

} // namespace akv::kv::detail
