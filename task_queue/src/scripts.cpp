#include "scripts.hpp"

#include "queue_lua_scripts.hpp"

namespace akv::queue::scripts {

// Function-local constants: built once, immutable after.
#define AKV_QUEUE_SCRIPT(name)                                                                     \
    const script& name() {                                                                         \
        static const script s(lua::lib, lua::name);                                                \
        return s;                                                                                  \
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
AKV_QUEUE_SCRIPT(add_flow)
AKV_QUEUE_SCRIPT(apply)
AKV_QUEUE_SCRIPT(outbox)
AKV_QUEUE_SCRIPT(progress)
AKV_QUEUE_SCRIPT(heartbeat)
AKV_QUEUE_SCRIPT(workers)
AKV_QUEUE_SCRIPT(groups)
AKV_QUEUE_SCRIPT(group_limits)
AKV_QUEUE_SCRIPT(partitions)
#undef AKV_QUEUE_SCRIPT

const resp::value& reply(const generic_response& r, std::size_t i, std::string_view what) {
    if (i >= r.size())
        throw_error(error::script_error, std::string(what) + ": no reply");
    if (r[i].has_error())
        throw_error(error::script_error, std::string(what) + ": " + r[i].error().message);
    return r[i].value();
}

} // namespace akv::queue::scripts
