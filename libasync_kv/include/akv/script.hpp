// akv::script: a Lua script run by its SHA1 (EVALSHA), sent again with its source (EVAL) when
// the server does not know it (after a restart or SCRIPT FLUSH), so callers never see NOSCRIPT.
// akv::script_request: calls of scripts, and plain commands among them, in one round trip.
//
//   static const akv::script commit(lua::lib, lua::commit); // prelude + body, hashed once
//   akv::script_request req;
//   req.push("SET", chunk, bytes);
//   req.call(commit, keys, args);
//   akv::generic_response replies; // one per command, in order; server errors stay values
//   co_await req.run(client, replies);
#pragma once

#include <akv/client.hpp>
#include <akv/response.hpp>

#include <boost/container/small_vector.hpp>

#include <string>
#include <string_view>

namespace akv {

class script {
public:
    explicit script(std::string_view body);
    // `prelude` (helpers several scripts share) in front of `body`: one source, one SHA1.
    script(std::string_view prelude, std::string_view body);

    const std::string& source() const noexcept { return source_; }
    const std::string& sha1() const noexcept { return sha1_; }

    // Runs the script alone; its reply lands in `resp` (one slot). Server errors stay values.
    // Keys and args: any ranges of request arguments (string_views avoid copies).
    template <class Keys, class Args, class Response>
    asio::awaitable<void> run(client& c, const Keys& keys, const Args& args, Response& resp) const {
        request req;
        req.push("EVALSHA", sha1_, std::size(keys), keys, args);
        co_await c.exec(req, resp);
        const auto& slot = std::get<0>(resp);
        if (!slot.has_error() || !unknown_to_server(slot.error())) co_return;
        request eval;
        eval.push("EVAL", source_, std::size(keys), keys, args);
        co_await c.exec(eval, resp);
    }

    // A reply saying the server does not know the script (NOSCRIPT): the call did not run.
    static bool unknown_to_server(const error_info& e) noexcept;

private:
    std::string source_;
    std::string sha1_;
};

// Commands and script calls sent as one request. A call the server answered NOSCRIPT did not
// run: every such call goes again with EVAL, together in one more request and in their order,
// and its reply takes its place. Other replies, errors included, are the server's.
class script_request {
public:
    script_request() = default;
    explicit script_request(request::options opts)
        : req_(opts) {}

    // A plain command, as request::push.
    template <class... Args> void push(std::string_view command, const Args&... args) {
        req_.push(command, args...);
    }

    // A call of `s` with its keys and args (any ranges of request arguments), written into the
    // request at once: they need not outlive this call, `s` must outlive run().
    template <class Keys, class Args>
    void call(const script& s, const Keys& keys, const Args& args) {
        const std::size_t begin = req_.payload().size();
        const std::size_t reply = req_.expected_replies();
        req_.push("EVALSHA", s.sha1(), std::size(keys), keys, args);
        calls_.push_back({&s, begin, req_.payload().size(), reply});
    }

    std::size_t size() const noexcept { return req_.size(); }
    bool empty() const noexcept { return req_.empty(); }

    // One reply per command in `resp`, in order.
    asio::awaitable<void> run(client& c, generic_response& resp) const;

private:
    struct script_call {
        const script* s;
        std::size_t begin, end; // its EVALSHA in the request's payload
        std::size_t reply;      // its slot in the replies
    };

    request req_;
    // Inline for the few calls most requests carry: a request allocates no more than its payload.
    boost::container::small_vector<script_call, 4> calls_;
};

} // namespace akv
