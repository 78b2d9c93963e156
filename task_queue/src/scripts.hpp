// The queue's Lua scripts (task_queue/lua/*.lua), each with lib.lua in front.
#pragma once

#include <akv/response.hpp>
#include <akv/script.hpp>

#include <string_view>

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
const script& add_flow();
const script& apply();
const script& outbox();
const script& progress();
const script& heartbeat();
const script& workers();
const script& groups();
const script& group_limits();
const script& partitions();

// The reply of a call, or throws system_error(script_error) naming the script and queue.
const resp::value& reply(const generic_response& r, std::size_t i, std::string_view what);
} // namespace akv::queue::scripts
