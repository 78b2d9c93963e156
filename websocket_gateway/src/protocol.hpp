// The gateway's wire protocol (README "Protocol"), without I/O: what a client message asks for,
// how replies and pushes are written, what a Redis payload carries. Tested on its own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace akv::gateway::protocol {

enum class op { connect, subscribe, unsubscribe, publish, ping, presence, presence_stats, rpc };

struct request {
    op kind = op::ping;
    std::optional<std::int64_t> id;
    std::optional<std::string> token;  // connect
    std::string channel;               // subscribe, unsubscribe, publish
    std::optional<std::string> offset; // subscribe: resume after it ...
    std::optional<std::string> epoch;  // ... of this epoch of the history
    bool join_leave = false;           // subscribe: wants join and leave pushes
    // connect: the positions held of server-side channels, channel -> (offset, epoch)
    std::map<std::string, std::pair<std::string, std::string>> positions;
    std::string data;                  // publish, rpc, connect: a JSON value as compact text
    std::string method;                // rpc: what the application's RPC proxy is asked
};

// One parsed client message. `fatal`: the message is not protocol at all (close 1007 with it as
// the reason). `invalid`: a known op with a bad field (reply bad_request, the session goes on;
// `req.id` is set when the message had one).
struct parsed {
    request req;
    std::string fatal;
    std::string invalid;
};
parsed parse(std::string_view text);

// "1764000000000-3": digits, '-', digits.
bool valid_offset(std::string_view offset) noexcept;
// An epoch of a history: 1 to 32 lowercase hex digits.
bool valid_epoch(std::string_view epoch) noexcept;
// Stream ids compared as numbers (a < b).
bool offset_less(std::string_view a, std::string_view b) noexcept;

// Replies (one line each, no trailing newline).
std::string ok(std::optional<std::int64_t> id, std::string_view extra_fields = {});
std::string error(std::optional<std::int64_t> id, std::string_view code, std::string_view message);
std::string pong(std::optional<std::int64_t> id);
std::string connected(std::string_view client, std::string_view sub, std::int64_t expires);
// The server could not deliver everything of `channel` (its history lost messages, or moved to
// a new epoch, while it was subscribed): resubscribe from your position to learn what is
// missing ({"op":"resync","channel":...}).
std::string resync(std::string_view channel_json);
// {"op":"join"|"leave","channel":...,"who":<entry>}
std::string join_leave(std::string_view kind, std::string_view channel_json,
                       std::string_view entry);
// `"name":"value"` with the value escaped, for ok()'s extra fields.
std::string field(std::string_view name, std::string_view value);
std::string quoted(std::string_view text); // a JSON string literal

// A message as Redis carried it: `\x1e<epoch>\x1e<offset>\x1e<json>` from a history publish
// (`\x1e<offset>\x1e<json>` from gateways before epochs), anything else as it is. `data` is
// compact JSON text (no raw newline): the payload's JSON value, or the payload as a JSON string
// when it is not JSON (bytes that are not UTF-8 become U+FFFD).
struct payload {
    std::optional<std::string> offset;
    std::optional<std::string> epoch; // with an offset, unless from an older gateway
    std::string data;
};
payload decode_payload(std::string_view redis_payload);
std::string encode_payload(std::string_view epoch, std::string_view offset, std::string_view json);

// A push line; `channel_json` is quoted(channel), computed once per channel.
std::string push(std::string_view channel_json, const std::optional<std::string>& offset,
                 std::string_view data);

// `text` with every byte that is not part of a well-formed UTF-8 character replaced by U+FFFD:
// a text frame must be UTF-8, or browsers fail the whole connection.
std::string valid_utf8(std::string_view text);

// At most `max` bytes of `text`, never ending inside a UTF-8 character (close reasons must be
// valid UTF-8, or the peer fails the connection).
std::string truncate_utf8(std::string_view text, std::size_t max);

// What went wrong, for a client: the exception's own text without the error code's message and
// "[category:value]" that boost::system appends.
std::string describe(const std::exception& e);

// One JSON value as one line: `text` as it is, raw newlines (whitespace) turned into spaces;
// nullopt when `text` is not exactly one JSON value.
std::optional<std::string> one_line_json(std::string_view text);

} // namespace akv::gateway::protocol
