// The gateway's wire protocol (README "Protocol"), without I/O: what a client message asks for,
// how replies and pushes are written, what a Redis payload carries. Tested on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace akv::gateway::protocol {

enum class op { connect, subscribe, unsubscribe, publish, ping };

struct request {
    op kind = op::ping;
    std::optional<std::int64_t> id;
    std::optional<std::string> token;  // connect
    std::string channel;               // subscribe, unsubscribe, publish
    std::optional<std::string> offset; // subscribe: resume after it
    std::string data;                  // publish: the value as compact JSON text
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
// Stream ids compared as numbers (a < b).
bool offset_less(std::string_view a, std::string_view b) noexcept;

// Replies (one line each, no trailing newline).
std::string ok(std::optional<std::int64_t> id, std::string_view extra_fields = {});
std::string error(std::optional<std::int64_t> id, std::string_view code, std::string_view message);
std::string pong(std::optional<std::int64_t> id);
std::string connected(std::string_view client, std::string_view sub, std::int64_t expires);
// `"name":"value"` with the value escaped, for ok()'s extra fields.
std::string field(std::string_view name, std::string_view value);
std::string quoted(std::string_view text); // a JSON string literal

// A message as Redis carried it: `\x1e<offset>\x1e<json>` from a history publish, anything else
// as it is. `data` is compact JSON text (no raw newline): the payload's JSON value, or the
// payload as a JSON string when it is not JSON (bytes that are not UTF-8 become U+FFFD).
struct payload {
    std::optional<std::string> offset;
    std::string data;
};
payload decode_payload(std::string_view redis_payload);
std::string encode_payload(std::string_view offset, std::string_view json);

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
