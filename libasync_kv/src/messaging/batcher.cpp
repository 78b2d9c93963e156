#include <akv/messaging/batcher.hpp>
#include <akv/script.hpp>

#include "lua_scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>

namespace akv::messaging {

namespace {
const script& commit_script() {
    static const script s(lua::messaging_commit_batch); // immutable after construction
    return s;
}
} // namespace

batcher::batcher(client& c, batcher_options options, batch_handler handler)
    : client_(c)
    , options_(std::move(options))
    , handler_(std::move(handler))
    , group_(c, options_.group) {
    if (options_.max_batch == 0) options_.max_batch = 1;
    // The commit writes the outputs and acks the inputs in one Lua call: one slot.
    if (c.get_config().topology == config::mode::cluster)
        require_same_slot("batcher", "input stream", options_.group.stream, "output stream",
                          options_.output_stream);
}

asio::awaitable<std::vector<stream_entry>> batcher::collect() {
    std::vector<stream_entry> batch;
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_claim_) {
        next_claim_ = now + options_.claim_every;
        batch = co_await group_.claim_stale(options_.max_batch);
        stats_.reclaimed += batch.size();
    }
    // Up to max_batch entries, or whatever came within max_wait. Nothing yet: block until an
    // entry comes (it wakes the read at once). Filling: Redis times a BLOCK out only every
    // ~100 ms, so a short block would hold a ready batch that long when no more come; read
    // what is there without blocking instead, and wait between tries on our own clock.
    const auto deadline = now + options_.max_wait;
    asio::steady_timer pause(co_await asio::this_coro::executor);
    while (batch.size() < options_.max_batch && !stopping_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 && !batch.empty()) break;
        const auto block = batch.empty() ? std::max(left, std::chrono::milliseconds(1))
                                         : std::chrono::milliseconds(0);
        auto more = co_await group_.read(options_.max_batch - batch.size(), block);
        if (more.empty()) {
            if (batch.empty()) break; // max_wait passed with nothing new
            pause.expires_after(std::min(left, std::chrono::milliseconds(1)));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        for (auto& e : more)
            batch.push_back(std::move(e));
    }
    co_return batch;
}

asio::awaitable<void> batcher::commit(std::span<const stream_entry> inputs,
                                      const std::vector<field_list>& outputs) {
    // Arguments as views of the entries and outputs: nothing is copied before the request.
    std::vector<std::string> counts;
    counts.reserve(2 + outputs.size());
    counts.push_back(std::to_string(inputs.size()));
    counts.push_back(std::to_string(outputs.size()));
    for (const auto& fields : outputs)
        counts.push_back(std::to_string(2 * fields.size()));

    std::vector<std::string_view> args;
    std::size_t values = 0;
    for (const auto& fields : outputs)
        values += 2 * fields.size();
    args.reserve(6 + inputs.size() + outputs.size() + values);
    const bool trim = options_.output_trim.by == trim_options::strategy::maxlen;
    args.push_back(options_.group.group);
    args.push_back(trim ? std::string_view(options_.output_trim.threshold) : std::string_view());
    args.push_back(options_.output_trim.approximate ? "~" : "=");
    args.push_back(counts[0]);
    for (const auto& e : inputs)
        args.push_back(e.id);
    args.push_back(counts[1]);
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        args.push_back(counts[2 + i]);
        for (const auto& [f, v] : outputs[i]) {
            args.push_back(f);
            args.push_back(v);
        }
    }
    const std::array<std::string_view, 2> keys{options_.group.stream, options_.output_stream};
    response<long long> resp;
    co_await commit_script().run(client_, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "commit_batch.lua: " + r.error().message);
}

asio::awaitable<std::size_t> batcher::run_once() {
    const std::vector<stream_entry> batch = co_await collect();
    if (batch.empty()) co_return 0;
    std::vector<field_list> outputs;
    try {
        outputs = co_await handler_(batch);
    } catch (const std::exception&) {
        // Left pending: reclaimed after claim_idle, dead-lettered after max_deliveries.
        ++stats_.handler_failures;
        co_return 0;
    }
    if (before_commit) before_commit(batch);
    co_await commit(batch, outputs);
    ++stats_.batches;
    stats_.entries += batch.size();
    stats_.outputs += outputs.size();
    co_return batch.size();
}

asio::awaitable<void> batcher::run() {
    stopping_ = false;
    co_await group_.create();
    while (!stopping_)
        co_await run_once();
}

} // namespace akv::messaging
