#include "server_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace akv::gateway::detail {

// A channel as one worker has it: its sessions, and whether the hub has it yet.
struct worker::local_channel {
    explicit local_channel(const asio::any_io_executor& ex)
        : ready_signal(ex) {
        ready_signal.expires_at(asio::steady_timer::time_point::max());
    }
    std::vector<listener*> listeners;
    std::uint64_t generation = 0; // the hub's channel this stands for, once ready
    bool ready = false;
    std::exception_ptr failure;
    asio::steady_timer ready_signal;
};

worker::worker(std::size_t index, asio::any_io_executor ex, server_state& srv)
    : index_(index)
    , ex_(std::move(ex))
    , srv_(srv) {}

worker::~worker() = default;

void worker::changed() {
    if (on_hub_executor())
        srv_.changed.cancel();
    else
        asio::post(srv_.redis.get_executor(), [&srv = srv_] { srv.changed.cancel(); });
}

asio::awaitable<void> worker::join(const std::string& name, listener* l) {
    auto it = channels_.find(name);
    if (it != channels_.end()) {
        std::shared_ptr<local_channel> lc = it->second;
        lc->listeners.push_back(l);
        if (lc->ready) co_return;
        co_await lc->ready_signal.async_wait(asio::as_tuple(asio::use_awaitable));
        if (lc->ready) co_return;
        std::erase(lc->listeners, l);
        if (lc->failure) std::rethrow_exception(lc->failure);
        throw boost::system::system_error(asio::error::operation_aborted, "channel closed");
    }
    auto lc = std::make_shared<local_channel>(ex_);
    lc->listeners.push_back(l);
    channels_.emplace(name, lc);
    std::exception_ptr failed;
    try {
        if (on_hub_executor())
            lc->generation = co_await srv_.hub.join(name, index_);
        else
            lc->generation = co_await asio::co_spawn(
                srv_.redis.get_executor(), srv_.hub.join(name, index_), asio::use_awaitable);
    } catch (...) {
        failed = std::current_exception();
    }
    const auto current = channels_.find(name);
    const bool ours = current != channels_.end() && current->second == lc;
    if (failed) {
        lc->failure = failed;
        if (ours) channels_.erase(current);
        lc->ready_signal.cancel();
        std::rethrow_exception(failed);
    }
    lc->ready = true;
    lc->ready_signal.cancel();
    if (!ours || lc->listeners.empty()) {
        // Everyone left while the hub was subscribing (or a resync dropped it): let go.
        if (ours) channels_.erase(current);
        if (on_hub_executor())
            srv_.hub.leave(name, index_);
        else
            asio::post(srv_.redis.get_executor(),
                       [&hub = srv_.hub, name, w = index_] { hub.leave(name, w); });
    }
}

void worker::leave(const std::string& name, listener* l) {
    auto it = channels_.find(name);
    if (it == channels_.end()) return;
    std::shared_ptr<local_channel> lc = it->second;
    std::erase(lc->listeners, l);
    if (!lc->listeners.empty() || !lc->ready) return; // join() finishes the not-ready case
    channels_.erase(it);
    if (on_hub_executor())
        srv_.hub.leave(name, index_);
    else
        asio::post(srv_.redis.get_executor(),
                   [&hub = srv_.hub, name, w = index_] { hub.leave(name, w); });
}

void worker::deliver(const std::string& name, std::uint64_t gen,
                     const std::vector<delivery>& batch) {
    auto it = channels_.find(name);
    if (it == channels_.end() || !it->second->ready || it->second->generation != gen) return;
    // Listeners only queue (never join or leave here), so the vector holds still.
    for (listener* l : it->second->listeners)
        for (const delivery& d : batch)
            l->on_message(name, d);
}

std::vector<std::pair<std::string, std::size_t>> worker::subscriber_counts() const {
    std::vector<std::pair<std::string, std::size_t>> out;
    out.reserve(channels_.size());
    for (const auto& [name, lc] : channels_)
        out.emplace_back(name, lc->listeners.size());
    return out;
}

void worker::resync(const std::string& name, std::uint64_t gen) {
    auto it = channels_.find(name);
    if (it == channels_.end() || !it->second->ready || it->second->generation != gen) return;
    // The hub has dropped this worker from the channel already.
    const std::vector<listener*> listeners = std::move(it->second->listeners);
    channels_.erase(it);
    for (listener* l : listeners)
        l->on_resync(name);
}

} // namespace akv::gateway::detail
