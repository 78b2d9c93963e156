// Fuzzes the gateway's readers of untrusted bytes: client messages (anyone with a WebSocket) and
// Redis payloads (anyone who can PUBLISH to a channel).
//
// Input: one selector byte, then the text. Even: protocol::parse must not throw; an accepted
// publish carries compact JSON without a raw newline, an accepted offset is valid. Odd:
// decode_payload must give compact JSON without a raw newline (the server puts several lines in
// one frame) and a valid offset if any, and re-encoding what it gave must decode to the same.
// truncate_utf8 never cuts a character of well-formed input. Anything else is a crash.

#include "protocol.hpp"

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

namespace protocol = akv::gateway::protocol;

void require(bool ok) {
    if (!ok) std::abort();
}

void check_json_line(const std::string& text) {
    require(text.find('\n') == std::string::npos);
    boost::system::error_code ec;
    boost::json::parse(text, ec);
    require(!ec);
}

bool utf8_valid(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] % 2 == 0) {
        protocol::parsed p = protocol::parse(text);
        if (p.fatal.empty() && p.invalid.empty()) {
            if (p.req.kind == protocol::op::publish) check_json_line(p.req.data);
            if (p.req.offset) require(protocol::valid_offset(*p.req.offset));
            if (p.req.epoch) require(protocol::valid_epoch(*p.req.epoch));
        }
    } else {
        protocol::payload p = protocol::decode_payload(text);
        check_json_line(p.data);
        if (p.offset) {
            require(protocol::valid_offset(*p.offset));
            if (p.epoch) require(protocol::valid_epoch(*p.epoch));
            const std::string epoch = p.epoch.value_or("0");
            protocol::payload again =
                protocol::decode_payload(protocol::encode_payload(epoch, *p.offset, p.data));
            require(again.offset == p.offset && again.epoch == epoch && again.data == p.data);
        }
    }
    if (utf8_valid(text)) require(utf8_valid(protocol::truncate_utf8(text, data[0] % 64)));
    return 0;
}
