#include "scripts.hpp"

#include "queue_lua_scripts.hpp"

namespace akv::queue::scripts {

namespace {
script with_lib(std::string_view body) {
    std::string source(lua::lib);
    source += body;
    return script(source);
}
} // namespace

// Function-local constants: built once, immutable after.
#define AKV_QUEUE_SCRIPT(name)                                                                 \
    const script& name() {                                                                     \
        static const script s = with_lib(lua::name);                                           \
        return s;                                                                              \
    }
AKV_QUEUE_SCRIPT(enqueue)
AKV_QUEUE_SCRIPT(claim)
AKV_QUEUE_SCRIPT(complete)
AKV_QUEUE_SCRIPT(retry)
AKV_QUEUE_SCRIPT(renew)
AKV_QUEUE_SCRIPT(recover)
AKV_QUEUE_SCRIPT(handback)
AKV_QUEUE_SCRIPT(promote)
AKV_QUEUE_SCRIPT(cancel)
AKV_QUEUE_SCRIPT(remove)
AKV_QUEUE_SCRIPT(requeue)
AKV_QUEUE_SCRIPT(leader)
AKV_QUEUE_SCRIPT(fire_periodic)
#undef AKV_QUEUE_SCRIPT

} // namespace akv::queue::scripts

namespace akv::queue::scripts {

asio::awaitable<generic_response> run_all(client& c, const std::vector<call>& calls) {
    request req;
    for (const auto& k : calls)
        req.push("EVALSHA", k.s->sha1(), k.keys.size(), k.keys, k.args);
    generic_response resp;
    co_await c.exec(req, resp);
    for (std::size_t i = 0; i < calls.size() && i < resp.size(); ++i) {
        if (!resp[i].has_error() || resp[i].error().message.rfind("NOSCRIPT", 0) != 0) continue;
        const auto& k = calls[i];
        request eval;
        eval.push("EVAL", k.s->source(), k.keys.size(), k.keys, k.args);
        generic_response again;
        co_await c.exec(eval, again);
        resp[i] = std::move(again.at(0));
    }
    co_return resp;
}

const resp::value& reply(const generic_response& r, std::size_t i, std::string_view what) {
    if (i >= r.size())
        throw_error(error::script_error, std::string(what) + ": no reply");
    if (r[i].has_error())
        throw_error(error::script_error, std::string(what) + ": " + r[i].error().message);
    return r[i].value();
}

} // namespace akv::queue::scripts
