// akv-demo (gateway, worker, batcher, redis-server) in a temporary data dir, with the admin
// page open in headless Chromium: what ./script/bench demo and soak drive.
#pragma once

#include "support/cdp.hpp"

#include "demo/load.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AKV_BIN_DIR
#error "AKV_BIN_DIR must name the directory of the bundled binaries (bench/CMakeLists.txt)"
#endif

namespace akv::bench {

using namespace akv::test;
using namespace std::chrono_literals;
namespace json = boost::json;

struct demo_pipeline {
    temp_dir data{"akv-bench-demo-"};
    std::uint16_t port = free_port();
    child_process demo{{std::string(AKV_BIN_DIR) + "/akv-demo", "--data-dir", data.path().string(),
                        "--listen", "127.0.0.1:" + std::to_string(port), "--log-level", "warn"},
                       {},
                       data.path() / "demo.log"};
    std::optional<headless_chromium> browser;
    std::string page;

    demo_pipeline() {
        const std::regex ready(R"(akv-demo: open http://)");
        if (!poll_until([&] { return std::regex_search(demo.log(), ready) || !demo.running(); },
                        60s) ||
            !demo.running())
            throw std::runtime_error("akv-demo did not start:\n" + demo.log_tail());
        browser.emplace(chromium_path(), 20s);
        page = browser->new_page();
    }

    json::value eval(const std::string& expression) {
        return browser->cdp().evaluate(page, expression, false);
    }

    bool wait(const std::string& expression, std::chrono::milliseconds limit,
              std::chrono::milliseconds every = 20ms) {
        return browser->cdp().wait_true(page, expression, limit, every);
    }

    // A new post, opened on the page.
    std::string open_post(akv::app::http_poster& http, const std::string& title) {
        const std::string post = akv::demo::create_post(http, title);
        browser->cdp().navigate(page,
                                "http://127.0.0.1:" + std::to_string(port) + "/?post=" + post);
        if (!wait("window.demo.post === '" + post +
                      "' && document.getElementById('state').textContent === "
                      "'connected'",
                  30s))
            throw std::runtime_error("the page did not open post " + post);
        return post;
    }

    std::vector<double> latencies() {
        const json::value v =
            json::parse(eval("JSON.stringify(window.demo.latencies)").as_string());
        std::vector<double> out;
        for (const auto& x : v.as_array())
            out.push_back(x.to_number<double>());
        std::sort(out.begin(), out.end());
        return out;
    }
};

} // namespace akv::bench
