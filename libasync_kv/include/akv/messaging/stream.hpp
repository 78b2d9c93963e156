// Redis streams: entries, trimming, and the producer.
#pragma once

#include <akv/client.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace akv::messaging {

// Field/value pairs of one entry; values are bytes (binary safe).
using field_list = std::vector<std::pair<std::string, std::string>>;

struct stream_entry {
    std::string id;
    field_list fields;
    std::uint64_t deliveries = 1; // known for reclaimed entries; 1 for fresh reads

    const std::string* field(std::string_view name) const {
        for (const auto& [f, v] : fields)
            if (f == name) return &v;
        return nullptr;
    }
};

struct trim_options {
    enum class strategy { none, maxlen, minid };
    strategy by = strategy::none;
    // '~' lets Redis trim whole macro-nodes only: far cheaper, the length is a floor.
    bool approximate = true;
    std::string threshold; // MAXLEN count or MINID id
    std::size_t limit = 0; // LIMIT for approximate trimming; 0: Redis's default

    static trim_options maxlen(std::size_t n, bool approximate = true) {
        return {strategy::maxlen, approximate, std::to_string(n), 0};
    }
    static trim_options minid(std::string id, bool approximate = true) {
        return {strategy::minid, approximate, std::move(id), 0};
    }
};

class stream_producer {
public:
    stream_producer(client& c, std::string stream, trim_options trim = {});

    // XADD; many coroutines calling add() at once share the connection's pipeline.
    asio::awaitable<std::string> add(const field_list& fields);
    // Many entries in one request (one round trip); their ids in order.
    asio::awaitable<std::vector<std::string>> add_many(const std::vector<field_list>& entries);

    // Appends one XADD to `req` (for callers that batch it with other commands).
    void push_xadd(request& req, const field_list& fields) const;

    const std::string& stream() const noexcept { return stream_; }

private:
    client& client_;
    std::string stream_;
    trim_options trim_;
};

// Reads an XREAD/XREADGROUP/XRANGE style reply (map or array of [id, fields]) into entries.
// A null fields array (an entry deleted while pending) gives an entry with no fields.
std::vector<stream_entry> entries_from(const resp::value& reply);
// The same, moving the bytes out of `reply` instead of copying them.
std::vector<stream_entry> entries_from(resp::value&& reply);

} // namespace akv::messaging
