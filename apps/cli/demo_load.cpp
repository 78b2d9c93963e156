// `akv demo-load [N] [--gateway URL] [--post ID] [--per-request N]`: posts N sample comments to
// the demo's webhook (akv-demo, see README.md), creating a post first unless --post names one,
// so a user can watch the pipeline under load on the admin page.
#include "commands.hpp"

#include "demo/load.hpp"

#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <unistd.h>

namespace akv::cli {

const char* const demo_load_usage = R"(usage: akv demo-load [N] [OPTIONS]

Posts N (default 1000) sample comments to the demo's webhook, as simulated Facebook comments:
about a third of them say they want to join. Without --post, creates a signup post first.
Prints the admin page's address that shows the post's signups arrive.

options:
  --gateway URL      the demo's gateway (default http://127.0.0.1:8080, akv-demo's default)
  --post ID          comment on this post (its id, as in the page's ?post=ID)
  --per-request N    comments per POST, a JSON array (default 100)
  --help             this text

exit status: 0 all posted, 2 bad arguments or the gateway unreachable or refusing
)";

namespace {

std::optional<std::size_t> count(const std::string& text) {
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || v == 0) return std::nullopt;
    return v;
}

} // namespace

int run_demo_load(const std::vector<std::string>& args) {
    std::string gateway = "http://127.0.0.1:8080", post;
    demo::load_options o;
    try {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string& a = args[i];
            auto value = [&]() -> const std::string& {
                if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
                return args[++i];
            };
            if (a == "--help" || a == "-h") {
                std::cout << demo_load_usage;
                return 0;
            } else if (a == "--gateway") {
                gateway = value();
            } else if (a == "--post") {
                post = value();
            } else if (a == "--per-request") {
                const std::string& v = value();
                auto n = count(v);
                if (!n)
                    throw std::invalid_argument("--per-request: expected a positive number, got '" +
                                                v + "'");
                o.per_request = *n;
            } else if (a.rfind("--", 0) == 0) {
                throw std::invalid_argument("unknown option " + a);
            } else {
                auto n = count(a);
                if (!n)
                    throw std::invalid_argument("N: expected a positive number of comments, got '" +
                                                a + "'");
                o.comments = *n;
            }
        }
    } catch (const std::invalid_argument& e) {
        std::cerr << "akv demo-load: " << e.what() << "\n\n" << demo_load_usage;
        return 2;
    }
    try {
        app::http_poster http(gateway);
        if (post.empty())
            post = demo::create_post(http, "Who wants to join? (" + std::to_string(o.comments) +
                                               " comments)");
        const bool tty = ::isatty(STDERR_FILENO);
        if (tty)
            o.progress = [&](std::size_t done) {
                std::fprintf(stderr, "\r%zu / %zu comments posted", done, o.comments);
            };
        const demo::load_result r = demo::post_comments(http, post, o);
        if (tty) std::fprintf(stderr, "\n");
        std::printf(
            "posted %zu comments to post %s in %.2f s (%.0f/s); %zu of them are interested\n"
            "watch them arrive: %s/?post=%s\n",
            r.comments.size(), post.c_str(), r.seconds,
            double(r.comments.size()) / std::max(r.seconds, 1e-9), r.interested, gateway.c_str(),
            post.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "akv demo-load: " << gateway << ": " << e.what() << "\n";
        return 2;
    }
}

} // namespace akv::cli
