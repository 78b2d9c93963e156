// The queue's Lua scripts (task_queue/lua/*.lua), each with lib.lua in front.
#pragma once

#include <akv/script.hpp>

namespace akv::queue::scripts {
const script& enqueue();
const script& claim();
const script& complete();
const script& retry();
const script& renew();
const script& recover();
const script& handback();
const script& promote();
const script& cancel();
const script& remove();
const script& requeue();
const script& leader();
const script& fire_periodic();
} // namespace akv::queue::scripts

#include <akv/response.hpp>

#include <vector>

namespace akv::queue::scripts {
struct call {
    const script* s = nullptr;
    std::vector<std::string> keys;
    std::vector<std::string> args;
};
inline call make_call(const script& s, std::string key) {
    call c;
    c.s = &s;
    c.keys.push_back(std::move(key));
    return c;
}
inline call make_call(const script& s, std::string key, std::string key2) {
    call c = make_call(s, std::move(key));
    c.keys.push_back(std::move(key2));
    return c;
}
// Runs every call in one round trip (one pipeline of EVALSHAs); a call the server did not
// know (NOSCRIPT: it did not run) runs again alone with EVAL. A reply per call, in order.
asio::awaitable<generic_response> run_all(client& c, const std::vector<call>& calls);
// The reply of a call, or throws system_error(script_error) naming the script and queue.
const resp::value& reply(const generic_response& r, std::size_t i, std::string_view what);
} // namespace akv::queue::scripts
