// class parser: RESP3 bytes in, nodes out. No I/O, no allocation per node.
//
// The caller keeps the bytes of the message being parsed from its first byte on (it may move
// them, e.g. when compacting its buffer: nodes refer to bytes by offset from the message start,
// never by pointer). The parser resumes where it stopped, so input may be split at any byte and
// a large reply is never re-scanned.
#pragma once

#include <akv/resp/limits.hpp>
#include <akv/resp/type.hpp>

#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::resp {

struct node {
    type data_type;
    std::uint32_t depth; // 0 for a top-level reply
    std::size_t size;    // aggregates: element count of the header (pairs for map/attribute)
    std::size_t offset;  // scalars: value bytes at message_start + offset ...
    std::size_t length;  // ... of this length

    std::string_view value(std::string_view message) const noexcept {
        return message.substr(offset, length);
    }
};

class parser {
public:
    explicit parser(limits lim = {});

    // The next complete node of the message whose bytes start at message[0], or nullopt when
    // more bytes are needed (or on error: check ec, the parser must then be reset()).
    std::optional<node> next(std::string_view message, boost::system::error_code& ec);

    // True once the last node returned completed a top-level message.
    bool done() const noexcept { return done_; }

    // Bytes of the current message consumed so far (its full size once done()).
    std::size_t consumed() const noexcept { return pos_; }

    // Start the next message. stream_offset only feeds error messages.
    void reset() noexcept;

    // What was wrong and where, after an error.
    const std::string& error_message() const noexcept { return error_message_; }

    const limits& get_limits() const noexcept { return limits_; }

private:
    struct frame {
        std::size_t remaining; // elements still to come
        bool attribute;        // an attribute does not count as an element of its parent
    };

    std::optional<node> fail(boost::system::error_code& ec, int code, std::string message);
    void element_done(bool was_attribute);

    limits limits_;
    std::vector<frame> stack_;
    std::size_t pos_ = 0;
    std::size_t stream_offset_ = 0; // bytes of earlier messages, for error messages
    bool done_ = false;
    bool top_attribute_seen_ = false;
    std::string error_message_;
};

} // namespace akv::resp
