#include <akv/queue/event_log.hpp>

#include <akv/error.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/queue/job.hpp>
#include <akv/queue/queue_keys.hpp>

#include <charconv>

namespace akv::queue {

namespace {

// "<ms>-<seq>": the server's clock when the entry was added.
std::int64_t time_of(std::string_view position) {
    std::int64_t ms = 0;
    std::from_chars(position.data(), position.data() + position.size(), ms);
    return ms;
}

std::vector<job_event> events_of(std::vector<messaging::stream_entry> entries) {
    std::vector<job_event> out;
    out.reserve(entries.size());
    for (auto& e : entries) {
        const std::string* name = e.field("event");
        const std::string* ids = e.field("ids");
        if (!name || !ids) continue;
        job_event ev;
        ev.event = *name;
        for (std::size_t at = 0; at < ids->size();) {
            std::size_t end = ids->find(' ', at);
            if (end == std::string::npos) end = ids->size();
            if (end > at) ev.ids.emplace_back(ids->substr(at, end - at));
            at = end + 1;
        }
        if (const std::string* text = e.field("text")) ev.text = *text;
        ev.at_ms = time_of(e.id);
        ev.position = std::move(e.id);
        out.push_back(std::move(ev));
    }
    return out;
}

void check_position(const std::string& queue, const std::string& after) {
    const auto dash = after.find('-');
    const std::string_view ms = std::string_view(after).substr(0, dash);
    const bool digits = !ms.empty() && ms.find_first_not_of("0123456789") == std::string::npos;
    const bool seq = dash == std::string::npos ||
                     (dash + 1 < after.size() &&
                      after.find_first_not_of("0123456789", dash + 1) == std::string::npos);
    if (!digits || !seq)
        throw_error(error::invalid_config, "queue \"" + queue + "\": event position \"" + after +
                                               "\" is not a stream id (\"0\", \"<ms>-<seq>\")");
}

} // namespace

event_log::event_log(client& c, std::string queue)
    : client_(c)
    , queue_(std::move(queue))
    , stream_(queue_keys(queue_).journal) {
    validate_queue_name(queue_);
}

asio::awaitable<std::vector<job_event>> event_log::read(std::string after, std::size_t count) {
    check_position(queue_, after);
    request req;
    const std::string from = after == "0" ? std::string("-") : "(" + after;
    req.push("XRANGE", stream_, from, "+", "COUNT", std::max<std::size_t>(count, 1));
    response<resp::value> resp;
    co_await client_.exec(req, resp);
    co_return events_of(messaging::entries_from(std::move(std::get<0>(resp).value())));
}

asio::awaitable<std::vector<job_event>> event_log::wait(std::string after, std::size_t count,
                                                        std::chrono::milliseconds timeout) {
    check_position(queue_, after);
    request req;
    req.push("XREAD", "COUNT", std::max<std::size_t>(count, 1), "BLOCK",
             std::max<std::int64_t>(timeout.count(), 1), "STREAMS", stream_, after);
    response<resp::value> resp;
    co_await client_.exec(req, resp);
    auto& reply = std::get<0>(resp).value();
    if (reply.is_null()) co_return std::vector<job_event>{};
    co_return events_of(messaging::entries_from(std::move(reply)));
}

asio::awaitable<std::string> event_log::last_position() {
    request req;
    req.push("XREVRANGE", stream_, "+", "-", "COUNT", 1);
    response<resp::value> resp;
    co_await client_.exec(req, resp);
    auto newest = messaging::entries_from(std::move(std::get<0>(resp).value()));
    co_return newest.empty() ? std::string("0-0") : std::move(newest.front().id);
}

} // namespace akv::queue
