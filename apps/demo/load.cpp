#include "load.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <stdexcept>

namespace akv::demo {

std::string create_post(app::http_poster& http, const std::string& title) {
    boost::json::object body{{"title", title}};
    auto [status, reply] = http.post("/webhook/posts", boost::json::serialize(body));
    if (status != 202)
        throw std::runtime_error("POST /webhook/posts: " + std::to_string(status) + " " + reply);
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(reply, ec);
    const auto* ids = ec || !v.is_object() ? nullptr : v.get_object().if_contains("ids");
    if (!ids || !ids->is_array() || ids->get_array().empty() || !ids->get_array()[0].is_string())
        throw std::runtime_error("POST /webhook/posts: no job id in " + reply);
    return std::string(ids->get_array()[0].get_string());
}

load_result post_comments(app::http_poster& http, const std::string& post, load_options o) {
    if (o.run.empty())
        o.run = "load" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
    if (o.per_request == 0) o.per_request = 1;
    load_result r;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t first = 0; first < o.comments; first += o.per_request) {
        const std::size_t count = std::min(o.per_request, o.comments - first);
        std::string body = "[";
        for (std::size_t i = first; i < first + count; ++i) {
            comment c = sample_comment(o.run, i, post);
            if (interested(c.text)) ++r.interested;
            body += (i == first ? "" : ",") + to_json(c);
            r.comments.push_back(std::move(c));
        }
        body += "]";
        if (o.before_request) o.before_request(first, count);
        auto [status, reply] = http.post("/webhook/comments", body);
        if (status != 202)
            throw std::runtime_error("POST /webhook/comments: " + std::to_string(status) + " " +
                                     reply);
        if (o.progress) o.progress(first + count);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

} // namespace akv::demo
