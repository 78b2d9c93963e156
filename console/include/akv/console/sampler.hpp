// One sampler per gateway process: every interval it reads the console's figures once (the
// queues and their counts, the streams and their groups, the batchers' status records, every
// Redis node, the gateway's own) and publishes them as one JSON snapshot on a channel of the
// gateway. Every open console subscribes to that channel, so a hundred browsers cost Redis
// what one does.
//
//   akv::console::sampler s(redis, figures_of_the_gateway);
//   asio::co_spawn(io, s.run(), asio::detached);   // ... s.stop();
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/server.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace akv::console {

namespace detail {
class node_links;
} // namespace detail

struct sampler_options {
    // The gateway channel (the Redis channel is the gateway's channel prefix + this).
    std::string channel = "akv:console:snapshot";
    std::string channel_prefix;
    std::chrono::milliseconds interval{1000};
    // The serving gateway's figures (on the client's executor); empty: none in the snapshot.
    std::function<gateway::stats()> gateway_stats;
    // Its channels with the most subscribers (gateway::server::channel_counts), `channels` of
    // them; empty: none in the snapshot.
    std::function<asio::awaitable<std::vector<gateway::channel_count>>(std::size_t limit)>
        gateway_channels;
    std::size_t channels = 20;
    // A node (a cluster's, a replica) that has not answered within this is shown with an error.
    std::chrono::milliseconds node_timeout{2000};
};

class sampler {
public:
    sampler(client& redis, sampler_options options = {});
    ~sampler();
    sampler(const sampler&) = delete;
    sampler& operator=(const sampler&) = delete;

    // Samples and publishes until stop(). A sample that fails (Redis away) is skipped.
    asio::awaitable<void> run();
    void stop();

    std::uint64_t published() const noexcept { return published_; }
    // The snapshot JSON text of one sample (what run() publishes). Not while run() runs.
    asio::awaitable<std::string> sample();

private:
    client& redis_;
    sampler_options options_;
    asio::steady_timer timer_;
    bool stopped_ = false;
    std::uint64_t published_ = 0;
    std::uint64_t samples_ = 0;
    std::vector<std::string> queue_names_;                   // found again every tenth sample
    std::vector<std::string> stream_names_;                  // likewise
    std::unique_ptr<detail::node_links> nodes_;              // a connection to each node, kept
    std::vector<std::string> batcher_keys_;                  // likewise (status records)
    std::map<std::string, boost::json::value> last_minutes_; // each queue's, read every fifth
};

} // namespace akv::console
