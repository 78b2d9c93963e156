#include "protocol.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace akv::gateway::protocol {

namespace json = boost::json;

namespace {

std::optional<op> op_named(std::string_view name) {
    if (name == "subscribe") return op::subscribe;
    if (name == "unsubscribe") return op::unsubscribe;
    if (name == "publish") return op::publish;
    if (name == "ping") return op::ping;
    if (name == "connect") return op::connect;
    if (name == "presence") return op::presence;
    if (name == "presence_stats") return op::presence_stats;
    if (name == "rpc") return op::rpc;
    return std::nullopt;
}

std::string id_text(std::optional<std::int64_t> id) {
    return id ? "\"id\":" + std::to_string(*id) + "," : std::string{};
}

} // namespace

parsed parse(std::string_view text) {
    parsed out;
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec) {
        out.fatal = "not JSON: " + ec.message();
        return out;
    }
    if (!v.is_object()) {
        out.fatal = "a message must be a JSON object";
        return out;
    }
    const json::object& o = v.get_object();
    const json::value* opv = o.if_contains("op");
    if (!opv || !opv->is_string()) {
        out.fatal = "a message needs \"op\" (a string)";
        return out;
    }
    const auto kind = op_named(std::string_view(opv->get_string()));
    if (!kind) {
        out.fatal = "unknown op \"" + truncate_utf8(std::string_view(opv->get_string()), 32) + "\"";
        return out;
    }
    out.req.kind = *kind;
    if (const json::value* idv = o.if_contains("id")) {
        if (idv->is_int64())
            out.req.id = idv->get_int64();
        else if (idv->is_uint64() && idv->get_uint64() <= INT64_MAX)
            out.req.id = static_cast<std::int64_t>(idv->get_uint64());
        else {
            out.invalid = "\"id\" must be an integer";
            return out;
        }
    }
    auto text_field = [&](const char* name, bool required) -> std::optional<std::string> {
        const json::value* f = o.if_contains(name);
        if (!f || f->is_null()) {
            if (required) out.invalid = std::string("\"") + name + "\" is missing";
            return std::nullopt;
        }
        if (!f->is_string()) {
            out.invalid = std::string("\"") + name + "\" must be a string";
            return std::nullopt;
        }
        return std::string(f->get_string());
    };
    // "data": any JSON value, kept as compact text (required for a publish).
    auto read_data = [&](bool required) {
        const json::value* d = o.if_contains("data");
        if (!d) {
            if (required) out.invalid = "\"data\" is missing";
            return;
        }
        out.req.data = json::serialize(*d);
        // Boost.JSON writes a number beyond double as Infinity, which is not JSON.
        if (!one_line_json(out.req.data)) out.invalid = "\"data\" holds a number out of range";
    };
    switch (*kind) {
    case op::connect:
        out.req.token = text_field("token", false);
        if (out.invalid.empty()) read_data(false); // for the connect proxy
        if (const json::value* subs = o.if_contains("subs"); out.invalid.empty() && subs) {
            // {"news":{"offset":"...","epoch":"..."}}: where the client is in the server-side
            // channels, to resume them.
            if (!subs->is_object()) {
                out.invalid = "\"subs\" must be an object";
                break;
            }
            for (const auto& [name, at] : subs->get_object()) {
                const json::object* p = at.if_object();
                const json::value* off = p ? p->if_contains("offset") : nullptr;
                const json::value* ep = p ? p->if_contains("epoch") : nullptr;
                if (!off || !off->is_string() || !valid_offset(std::string_view(off->get_string())) ||
                    !ep || !ep->is_string() || !valid_epoch(std::string_view(ep->get_string()))) {
                    out.invalid = "\"subs\".\"" + truncate_utf8(std::string_view(name), 64) +
                                  "\" must be {\"offset\":\"<ms-seq>\",\"epoch\":\"<hex>\"}";
                    break;
                }
                out.req.positions[std::string(name)] = {std::string(off->get_string()),
                                                        std::string(ep->get_string())};
            }
        }
        break;
    case op::subscribe:
        if (auto c = text_field("channel", true)) out.req.channel = std::move(*c);
        if (out.invalid.empty()) {
            out.req.offset = text_field("offset", false);
            if (out.req.offset && !valid_offset(*out.req.offset))
                out.invalid = "\"offset\" must look like \"1764000000000-0\"";
        }
        if (out.invalid.empty()) {
            out.req.epoch = text_field("epoch", false);
            if (out.req.epoch && !valid_epoch(*out.req.epoch))
                out.invalid = "\"epoch\" must be 1 to 32 lowercase hex digits";
        }
        if (out.invalid.empty()) {
            if (const json::value* jl = o.if_contains("join_leave"); jl && !jl->is_null()) {
                if (!jl->is_bool())
                    out.invalid = "\"join_leave\" must be true or false";
                else
                    out.req.join_leave = jl->get_bool();
            }
        }
        break;
    case op::unsubscribe:
    case op::presence:
    case op::presence_stats:
        if (auto c = text_field("channel", true)) out.req.channel = std::move(*c);
        break;
    case op::publish:
        if (auto c = text_field("channel", true)) out.req.channel = std::move(*c);
        if (out.invalid.empty()) read_data(true);
        break;
    case op::rpc:
        if (auto m = text_field("method", true)) out.req.method = std::move(*m);
        if (out.invalid.empty() && (out.req.method.empty() || out.req.method.size() > 256))
            out.invalid = "\"method\" must be 1 to 256 bytes";
        if (out.invalid.empty()) read_data(false);
        break;
    case op::ping:
        break;
    }
    return out;
}

std::string valid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = n != 0 && i + n <= text.size();
        std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
        for (std::size_t k = 1; ok && k < n; ++k) {
            const auto cc = static_cast<unsigned char>(text[i + k]);
            ok = (cc & 0xC0) == 0x80;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
        if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
                   (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF))
            ok = false;
        if (ok) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            out += "\xEF\xBF\xBD"; // U+FFFD for the one bad byte, then go on
            ++i;
        }
    }
    return out;
}

std::string truncate_utf8(std::string_view text, std::size_t max) {
    if (text.size() <= max) return std::string(text);
    std::size_t end = max;
    // Back off continuation bytes (10xxxxxx) to the start of the character they belong to.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return std::string(text.substr(0, end));
}

std::string describe(const std::exception& e) {
    std::string what = e.what();
    if (const auto* se = dynamic_cast<const boost::system::system_error*>(&e)) {
        const std::string suffix = ": " + se->code().message();
        const auto at = what.rfind(suffix);
        if (at != std::string::npos && at > 0) what.resize(at);
    }
    return what;
}

bool valid_offset(std::string_view offset) noexcept {
    const auto dash = offset.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == offset.size() || dash > 20 ||
        offset.size() - dash - 1 > 20)
        return false;
    for (std::size_t i = 0; i < offset.size(); ++i)
        if (i != dash && (offset[i] < '0' || offset[i] > '9')) return false;
    return true;
}

bool valid_epoch(std::string_view epoch) noexcept {
    if (epoch.empty() || epoch.size() > 32) return false;
    for (char c : epoch)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool offset_less(std::string_view a, std::string_view b) noexcept {
    auto split = [](std::string_view s) {
        std::uint64_t ms = 0, seq = 0;
        const auto dash = s.find('-');
        std::from_chars(s.data(), s.data() + std::min(dash, s.size()), ms);
        if (dash != std::string_view::npos)
            std::from_chars(s.data() + dash + 1, s.data() + s.size(), seq);
        return std::pair{ms, seq};
    };
    return split(a) < split(b);
}

std::string quoted(std::string_view text) {
    return json::serialize(json::string_view(text.data(), text.size()));
}

std::string field(std::string_view name, std::string_view value) {
    std::string out = quoted(name);
    out += ':';
    out += quoted(value);
    return out;
}

std::string ok(std::optional<std::int64_t> id, std::string_view extra_fields) {
    std::string out = "{" + id_text(id) + "\"ok\":true";
    if (!extra_fields.empty()) {
        out += ',';
        out += extra_fields;
    }
    out += '}';
    return out;
}

std::string error(std::optional<std::int64_t> id, std::string_view code, std::string_view message) {
    return "{" + id_text(id) + "\"error\":{" + field("code", code) + "," +
           field("message", message) + "}}";
}

std::string pong(std::optional<std::int64_t> id) {
    return "{" + id_text(id) + "\"op\":\"pong\"}";
}

std::string connected(std::string_view client, std::string_view sub, std::int64_t expires) {
    return "{\"op\":\"connected\"," + field("client", client) + "," + field("sub", sub) +
           ",\"expires\":" + std::to_string(expires) + "}";
}

std::string join_leave(std::string_view kind, std::string_view channel_json,
                       std::string_view entry) {
    std::string out = "{\"op\":\"";
    out += kind;
    out += "\",\"channel\":";
    out += channel_json;
    out += ",\"who\":";
    out += entry;
    out += '}';
    return out;
}

std::string resync(std::string_view channel_json) {
    std::string out = "{\"op\":\"resync\",\"channel\":";
    out += channel_json;
    out += '}';
    return out;
}

std::optional<std::string> one_line_json(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec) return std::nullopt;
    // Kept as sent (re-writing would round big numbers through double, or print Infinity). A
    // raw newline can only be whitespace between tokens: a space does as well.
    std::string line(text);
    std::replace(line.begin(), line.end(), '\n', ' ');
    return line;
}

payload decode_payload(std::string_view p) {
    payload out;
    if (p.size() > 4 && p[0] == '\x1e') {
        // JSON never holds a raw 0x1e: the separators are the first ones.
        const auto first = p.find('\x1e', 1);
        const auto second = first == std::string_view::npos ? first : p.find('\x1e', first + 1);
        std::string_view epoch, offset, body;
        if (second != std::string_view::npos) {
            epoch = p.substr(1, first - 1);
            offset = p.substr(first + 1, second - first - 1);
            body = p.substr(second + 1);
        } else if (first != std::string_view::npos) {
            offset = p.substr(1, first - 1);
            body = p.substr(first + 1);
        }
        if (valid_offset(offset) && (second == std::string_view::npos || valid_epoch(epoch))) {
            if (auto c = one_line_json(body)) {
                out.offset = std::string(offset);
                if (!epoch.empty()) out.epoch = std::string(epoch);
                out.data = std::move(*c);
                return out;
            }
        }
    }
    if (auto c = one_line_json(p))
        out.data = std::move(*c);
    else
        out.data = quoted(valid_utf8(p));
    return out;
}

std::string encode_payload(std::string_view epoch, std::string_view offset,
                           std::string_view json_text) {
    std::string out;
    out.reserve(epoch.size() + offset.size() + json_text.size() + 3);
    out += '\x1e';
    out += epoch;
    out += '\x1e';
    out += offset;
    out += '\x1e';
    out += json_text;
    return out;
}

std::string push(std::string_view channel_json, const std::optional<std::string>& offset,
                 std::string_view data) {
    std::string out;
    out.reserve(channel_json.size() + data.size() + 48);
    out += "{\"channel\":";
    out += channel_json;
    if (offset) {
        out += ",\"offset\":\"";
        out += *offset;
        out += '"';
    }
    out += ",\"data\":";
    out += data;
    out += '}';
    return out;
}

} // namespace akv::gateway::protocol
