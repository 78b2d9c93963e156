// The browser client and demo page, compiled in (client/*), so a bare gateway serves them.
#pragma once

#include <string_view>

namespace akv::gateway::assets {

struct file {
    std::string_view body;
    std::string_view content_type;
};

// The built-in file at `path` ("/", "/akv.js", "/akv.mjs"), or nullptr.
const file* find(std::string_view path) noexcept;

} // namespace akv::gateway::assets
