#include <akv/script.hpp>

#include <openssl/evp.h>

#include <charconv>

namespace akv {

namespace {
std::string sha1_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}
} // namespace

script::script(std::string_view body)
    : script({}, body) {}

script::script(std::string_view prelude, std::string_view body) {
    source_.reserve(prelude.size() + body.size());
    source_ += prelude;
    source_ += body;
    sha1_ = sha1_hex(source_);
}

bool script::unknown_to_server(const error_info& e) noexcept {
    return e.message.starts_with("NOSCRIPT");
}

asio::awaitable<void> script_request::run(client& c, generic_response& resp) const {
    co_await c.exec(req_, resp);
    request eval(req_.get_options());
    boost::container::small_vector<std::size_t, 4> slots; // of the calls sent again, in order
    for (const script_call& call : calls_) {
        if (call.reply >= resp.size()) break;
        const result<resp::value>& r = resp[call.reply];
        if (!r.has_error() || !script::unknown_to_server(r.error())) continue;
        // "*<n>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha1>\r\n", then numkeys, keys and args as sent:
        // those bytes go again behind EVAL and the source.
        const std::string_view sent = req_.payload().substr(call.begin, call.end - call.begin);
        std::size_t arguments = 0;
        std::from_chars(sent.data() + 1, sent.data() + sent.find("\r\n"), arguments);
        const std::size_t sha1_at = sent.find(call.s->sha1());
        const std::string_view rest = sent.substr(sha1_at + call.s->sha1().size() + 2);
        eval.push("EVAL", call.s->source(), detail::encoded_args{rest, arguments - 2});
        slots.push_back(call.reply);
    }
    if (eval.empty()) co_return;
    generic_response again;
    co_await c.exec(eval, again);
    for (std::size_t i = 0; i < slots.size() && i < again.size(); ++i)
        resp[slots[i]] = std::move(again[i]);
}

} // namespace akv
