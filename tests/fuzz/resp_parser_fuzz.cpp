// Fuzzes resp::parser the way the connection's reader drives it, and the resp::value converter
// over every complete reply.
//
// Input: one byte that picks where the stream is split, then the stream (any number of replies).
// The stream is parsed twice: once arriving in two reads (a growing buffer that drops each reply
// once it is complete, as the reader does), once arriving whole. Both must give the same nodes
// and the same error: the parser promises that input may be split at any byte.
//
// Every buffer handed to the parser or the converter is a heap block of exactly the visible
// size, so a read past the bytes that have arrived is an AddressSanitizer report.

#include <akv/detail/adapt.hpp>
#include <akv/resp/parser.hpp>
#include <akv/resp/value.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace {

using akv::resp::node;

#define AKV_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

// Exactly `size` bytes on the heap: no slack for an overread to hide in.
struct exact_buffer {
    std::unique_ptr<char[]> bytes;
    std::size_t size = 0;

    explicit exact_buffer(std::string_view from)
        : bytes(new char[from.size()])
        , size(from.size()) {
        if (size != 0) std::memcpy(bytes.get(), from.data(), size);
    }
    std::string_view view() const { return {bytes.get(), size}; }
};

struct outcome {
    std::vector<node> nodes;       // of every reply, in order
    std::vector<std::size_t> ends; // stream offset after each complete reply
    boost::system::error_code error;

    bool operator==(const outcome& o) const {
        if (error != o.error || ends != o.ends || nodes.size() != o.nodes.size()) return false;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const node& a = nodes[i];
            const node& b = o.nodes[i];
            if (a.data_type != b.data_type || a.depth != b.depth || a.size != b.size ||
                a.offset != b.offset || a.length != b.length)
                return false;
        }
        return true;
    }
};

void convert_reply(const std::vector<node>& reply, std::string_view message) {
    const std::vector<node> exact_nodes(reply.begin(), reply.end());
    const exact_buffer bytes(message);
    akv::detail::cursor c{exact_nodes, bytes.view(), 0};
    c.skip_attributes(); // as adapt_reply does: a top-level attribute annotates the reply
    AKV_FUZZ_CHECK(!c.at_end());
    akv::resp::value v;
    const auto err = akv::detail::converter<akv::resp::value>::apply(c, v);
    AKV_FUZZ_CHECK(!err);                    // resp::value takes any well-formed reply
    AKV_FUZZ_CHECK(c.index == reply.size()); // ... and all of it
}

// Feeds `stream` to a parser in reads of the given sizes. The parser sees the bytes of the reply
// being parsed, from its first byte, up to the last byte that has arrived (which is also the last
// byte of the heap block); a complete reply is dropped from the front, as the reader does.
outcome parse(std::string_view stream, const std::vector<std::size_t>& reads) {
    const akv::resp::limits limits{};
    akv::resp::parser p{limits};
    outcome out;
    std::size_t message_start = 0; // stream offset of the current reply's first byte
    std::size_t arrived = 0;
    std::vector<node> reply;

    for (std::size_t read : reads) {
        arrived += read;
        const exact_buffer received(stream.substr(0, arrived));
        for (;;) {
            const std::string_view message = received.view().substr(message_start);
            boost::system::error_code ec;
            const std::size_t before = p.consumed();
            auto n = p.next(message, ec);
            AKV_FUZZ_CHECK(p.consumed() <= message.size());
            if (ec) {
                AKV_FUZZ_CHECK(!n);
                AKV_FUZZ_CHECK(!p.error_message().empty());
                out.error = ec;
                return out;
            }
            if (!n) {
                AKV_FUZZ_CHECK(p.consumed() == before);
                break; // needs more bytes
            }
            AKV_FUZZ_CHECK(p.consumed() > before);
            AKV_FUZZ_CHECK(n->offset <= message.size());
            AKV_FUZZ_CHECK(n->length <= message.size() - n->offset);
            AKV_FUZZ_CHECK(n->offset + n->length <= p.consumed());
            // Aggregates nest at most max_depth deep; their elements sit one level below.
            AKV_FUZZ_CHECK(n->depth <= limits.max_depth);
            if (akv::resp::is_aggregate(n->data_type))
                AKV_FUZZ_CHECK(n->depth < limits.max_depth);
            else
                AKV_FUZZ_CHECK(n->size == 0);
            AKV_FUZZ_CHECK(reply.empty() ? n->depth == 0 : n->depth <= reply.back().depth + 1);
            reply.push_back(*n);
            out.nodes.push_back(*n);

            if (p.done()) {
                convert_reply(reply, message.substr(0, p.consumed()));
                // A finished reply answers nothing more until reset().
                AKV_FUZZ_CHECK(!p.next(message, ec) && !ec);
                message_start += p.consumed();
                out.ends.push_back(message_start);
                p.reset();
                reply.clear();
            }
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::size_t split = stream.size() * data[0] / 255;

    const outcome in_two_reads = parse(stream, {split, stream.size() - split});
    const outcome whole = parse(stream, {stream.size()});
    AKV_FUZZ_CHECK(in_two_reads == whole);
    return 0;
}
