#include "assets.hpp"

#include <gateway_client_files.hpp>

namespace akv::gateway::assets {

const file* find(std::string_view path) noexcept {
    static const file page{client_files::index_html, "text/html; charset=utf-8"};
    static const file script{client_files::akv_js, "text/javascript; charset=utf-8"};
    static const file module{client_files::akv_mjs, "text/javascript; charset=utf-8"};
    if (path == "/" || path == "/index.html") return &page;
    if (path == "/akv.js") return &script;
    if (path == "/akv.mjs") return &module;
    return nullptr;
}

} // namespace akv::gateway::assets
