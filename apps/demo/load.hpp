// Comments for the demo through the gateway's webhooks, as a user's load would send them:
// `akv demo-load`, the end-to-end test and `./script/bench demo` all post this way.
#pragma once

#include "common/http_post.hpp"
#include "demo/pipeline.hpp"

#include <functional>
#include <string>
#include <vector>

namespace akv::demo {

// POST /webhook/posts {title}: the new post's id (the job's id). Throws std::runtime_error
// naming the status and body when the gateway refuses.
std::string create_post(app::http_poster& http, const std::string& title);

struct load_options {
    std::size_t comments = 1000;
    std::size_t per_request = 100; // comments per POST (a JSON array)
    std::string run;               // comment ids are "<run>-<n>"; empty: from the clock
    // Called before each request with the index of its first comment.
    std::function<void(std::size_t first, std::size_t count)> before_request;
    std::function<void(std::size_t done)> progress;
};

struct load_result {
    std::vector<comment> comments;
    std::size_t interested = 0; // of them, as the classifier will decide
    double seconds = 0;         // posting them
};

// POST /webhook/comments, per_request at a time. Throws like create_post.
load_result post_comments(app::http_poster& http, const std::string& post, load_options options);

} // namespace akv::demo
