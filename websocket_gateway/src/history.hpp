// Channel history in Redis streams (README "History in Redis"): the scripts and what a resume
// returns. Used by publish() and by sessions that subscribe with an offset.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>
#include <akv/script.hpp>

#include <string>
#include <utility>
#include <vector>

namespace akv::gateway::history {

std::string stream_key(std::string_view redis_channel);
std::string meta_key(std::string_view redis_channel);

const script& publish_script();
const script& resume_script();

struct recovery {
    std::string epoch;   // the history's epoch now
    std::string newest;  // its newest offset ("0-0": empty)
    bool gap = false;    // another epoch, or the history does not reach back to the offset
    std::vector<std::pair<std::string, std::string>> entries; // (offset, JSON data), oldest first
};

// What was published after `from` (an offset of `epoch`); `from` empty: only the epoch and
// newest offset. At most the rule's max_length entries (10,000 when it has none): more is a
// gap.
asio::awaitable<recovery> recover(client& redis, const history_rule& rule,
                                  std::string redis_channel, std::string from, std::string epoch);

} // namespace akv::gateway::history
