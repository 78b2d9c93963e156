// akv::script: a Lua script run by its SHA1 (EVALSHA), loaded again when the server does not
// know it (after a restart or SCRIPT FLUSH), so callers never see NOSCRIPT.
#pragma once

#include <akv/client.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace akv {

class script {
public:
    explicit script(std::string_view source);

    const std::string& source() const noexcept { return source_; }
    const std::string& sha1() const noexcept { return sha1_; }

    // Runs the script; its reply lands in `resp` (one slot). Server errors stay values there.
    // Keys and args: any ranges of request arguments (string_views avoid copies).
    template <class Keys, class Args, class Response>
    asio::awaitable<void> run(client& c, const Keys& keys, const Args& args, Response& resp) const {
        request req;
        req.push("EVALSHA", sha1_, std::size(keys), keys, args);
        co_await c.exec(req, resp);
        if (!needs_load(resp)) co_return;
        request eval;
        eval.push("EVAL", source_, std::size(keys), keys, args);
        co_await c.exec(eval, resp);
    }

private:
    template <class Response> static bool needs_load(const Response& resp) {
        const auto& slot = std::get<0>(resp);
        return slot.has_error() && slot.error().message.rfind("NOSCRIPT", 0) == 0;
    }

    std::string source_;
    std::string sha1_;
};

} // namespace akv
