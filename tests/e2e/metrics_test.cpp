// /metrics of the bundled binaries as Prometheus scrapes it (akv-worker and akv-batcher with
// --metrics-listen, akv-gateway on its own port), every answer read by a strict reader of the
// text format (support/prometheus_text) and its figures checked against what the process did.
#include "support/cdp.hpp"
#include "support/gateway_client.hpp"
#include "support/harness.hpp"
#include "support/prometheus_text.hpp"
#include "support/running_client.hpp"

#include "demo/pipeline.hpp"

#include <akv/kv/model_registry.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/queue/producer.hpp>
#include <akv/testing/embedded_server.hpp>

#include <gtest/gtest.h>

#include <regex>
#include <set>

using namespace akv::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

std::string bin(const std::string& name) {
    return std::string(AKV_BIN_DIR) + "/" + name;
}

// The port a process announced ("metrics on http://127.0.0.1:PORT/metrics"); 0 until it has.
std::uint16_t announced_port(const child_process& p) {
    std::smatch m;
    const std::string log = p.log();
    if (!std::regex_search(log, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)")))
        return 0;
    return static_cast<std::uint16_t>(std::stoi(m[1]));
}

std::pair<int, std::string> get(std::uint16_t port, std::string_view target,
                                http::verb verb = http::verb::get) {
    asio::io_context io;
    std::pair<int, std::string> r;
    run_task(io, [&]() -> asio::awaitable<void> { r = co_await http_call(port, verb, target); }());
    return r;
}

// A scrape, read strictly (a malformed answer fails the test with the reader's message).
prom_families scrape(std::uint16_t port) {
    const auto [status, body] = get(port, "/metrics");
    EXPECT_EQ(status, 200) << body;
    try {
        return parse_prometheus(body);
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what() << "\n" << body;
        return {};
    }
}

} // namespace

TEST(Metrics, TheWorkerCountsJobsPerQueueWithHistogramsOfRunAndWait) {
    temp_dir dir{"akv-e2e-metrics-worker-"};
    akv::testing::embedded_server redis;
    child_process worker({bin("akv-worker"), "--redis", redis.url(), "--queue", "cmds=exec",
                          "--exec-allow", "echo", "--exec-allow", "sh", "--metrics-listen",
                          "127.0.0.1:0"},
                         {}, dir.path() / "worker.log");
    std::uint16_t port = 0;
    ASSERT_TRUE(poll_until([&] { return (port = announced_port(worker)) != 0; }, 20s))
        << worker.log_tail();

    asio::io_context io;
    running_client rc(io, redis.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::queue::producer p(rc.client, "cmds");
        akv::queue::job_options once;
        once.max_attempts = 1;
        for (int i = 0; i < 5; ++i)
            co_await p.enqueue(R"({"argv": ["echo", "hi"]})", once);
        for (int i = 0; i < 2; ++i)
            co_await p.enqueue(R"({"argv": ["sh", "-c", "exit 3"]})", once);
    }());
    const std::map<std::string, std::string> cmds{{"queue", "cmds"}};
    prom_families m;
    ASSERT_TRUE(poll_until(
        [&] {
            m = scrape(port);
            return prom_value(m, "akv_queue_jobs_processed_total", cmds) == 5 &&
                   prom_value(m, "akv_queue_jobs_failed_total", cmds) == 2;
        },
        30s, 100ms))
        << worker.log_tail();
    EXPECT_EQ(m.at("akv_queue_jobs_processed_total").type, "counter");
    EXPECT_EQ(m.at("akv_queue_jobs_running").type, "gauge");
    EXPECT_EQ(m.at("akv_queue_job_duration_seconds").type, "histogram");
    EXPECT_EQ(prom_value(m, "akv_queue_job_duration_seconds_count", cmds), 7);
    EXPECT_GT(*prom_value(m, "akv_queue_job_duration_seconds_sum", cmds), 0);
    EXPECT_EQ(prom_value(m, "akv_queue_job_wait_seconds_count", cmds), 7);
    EXPECT_GE(prom_value(m, "akv_redis_connects_total").value_or(0), 1);

    EXPECT_EQ(get(port, "/healthz").first, 200);
    EXPECT_EQ(get(port, "/nope").first, 404);
    EXPECT_EQ(get(port, "/metrics", http::verb::post).first, 405);
    worker.signal(SIGTERM);
    EXPECT_TRUE(poll_until([&] { return !worker.running(); }, 20s)) << worker.log_tail();
}

TEST(Metrics, TheBatcherCountsBatchesEntriesAndItsModel) {
    temp_dir dir{"akv-e2e-metrics-batcher-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::model_registry reg(rc.client, "interest");
        co_await reg.save(akv::demo::interest_model_files());
    }());
    child_process batcher({bin("akv-batcher"), "--redis", redis.url(), "--input", "in", "--output",
                           "out", "--model", "interest", "--max-wait-ms", "5", "--metrics-listen",
                           "127.0.0.1:0"},
                          {}, dir.path() / "batcher.log");
    std::uint16_t port = 0;
    ASSERT_TRUE(poll_until([&] { return (port = announced_port(batcher)) != 0; }, 30s))
        << batcher.log_tail();
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<akv::messaging::field_list> entries;
        const std::int64_t shape[] = {akv::demo::features};
        for (int i = 0; i < 100; ++i) {
            const auto x = akv::demo::featurize(i % 2 ? "Count me in!" : "not for me");
            entries.push_back(
                {{"id", std::to_string(i)}, {"embedding", akv::ml::encode<float>(x, shape)}});
        }
        entries.push_back({{"id", "broken"}, {"embedding", "not a tensor"}});
        akv::messaging::stream_producer producer(rc.client, "in");
        co_await producer.add_many(entries);
    }());
    const std::map<std::string, std::string> in{{"stream", "in"}};
    prom_families m;
    ASSERT_TRUE(poll_until(
        [&] {
            m = scrape(port);
            return prom_value(m, "akv_batcher_entries_total", in) == 101;
        },
        30s, 100ms))
        << batcher.log_tail();
    EXPECT_EQ(prom_value(m, "akv_batcher_outputs_total", in), 101);
    EXPECT_EQ(prom_value(m, "akv_batcher_entry_errors_total", in), 1);
    EXPECT_EQ(prom_value(m, "akv_batcher_model_version", {{"model", "interest"}}), 1);
    const double batches = prom_value(m, "akv_batcher_batches_total", in).value_or(0);
    EXPECT_GE(batches, 2); // at most 64 per batch
    EXPECT_EQ(prom_value(m, "akv_batcher_batch_size_count", in), batches);
    EXPECT_EQ(prom_value(m, "akv_batcher_batch_size_sum", in), 101);
    EXPECT_EQ(m.at("akv_batcher_model_seconds").type, "histogram");
}

TEST(Metrics, TheGatewaysMetricsAreValidText) {
    temp_dir dir{"akv-e2e-metrics-gateway-"};
    akv::testing::embedded_server redis;
    const std::uint16_t port = free_port();
    child_process gateway({bin("akv-gateway"), "--redis", redis.url(), "--listen",
                           "127.0.0.1:" + std::to_string(port)},
                          {}, dir.path() / "gateway.log");
    ASSERT_TRUE(
        poll_until([&] { return gateway.log().find("listening on") != std::string::npos; }, 20s))
        << gateway.log_tail();
    const prom_families m = scrape(port);
    EXPECT_EQ(m.at("akv_gateway_sessions").type, "gauge");
    EXPECT_EQ(m.at("akv_gateway_messages_out_total").type, "counter");
}

TEST(Metrics, ABadMetricsAddressExitsTwoNamingIt) {
    temp_dir dir{"akv-e2e-metrics-bad-"};
    akv::testing::embedded_server redis;
    const std::pair<const char*, const char*> cases[] = {
        {"9464", "--metrics-listen: expected HOST:PORT, got '9464'"},
        {"localhost:9464", "\"localhost\" is not an IP address"},
        {"127.0.0.1:99999", "--metrics-listen"},
    };
    for (const auto& [address, says] : cases) {
        const auto r = run_to_end(dir, {bin("akv-worker"), "--redis", redis.url(), "--queue",
                                        "q=exec", "--metrics-listen", address});
        EXPECT_EQ(r.exit_code, 2) << address << "\n" << r.output;
        EXPECT_NE(r.output.find(says), std::string::npos) << address << "\n" << r.output;
    }
}

// The sample Grafana dashboard reads only series that our binaries serve: every akv_* name in
// its queries is a family of the worker's, the batcher's or the gateway's /metrics.
TEST(Metrics, TheGrafanaDashboardReadsOnlySeriesWeServe) {
    temp_dir dir{"akv-e2e-metrics-dashboard-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::model_registry reg(rc.client, "interest");
        co_await reg.save(akv::demo::interest_model_files());
        akv::queue::producer p(rc.client, "cmds");
        co_await p.enqueue(R"({"argv": ["echo", "hi"]})");
    }());
    child_process worker({bin("akv-worker"), "--redis", redis.url(), "--queue", "cmds=exec",
                          "--exec-allow", "echo", "--metrics-listen", "127.0.0.1:0"},
                         {}, dir.path() / "worker.log");
    child_process batcher({bin("akv-batcher"), "--redis", redis.url(), "--input", "in", "--output",
                           "out", "--model", "interest", "--metrics-listen", "127.0.0.1:0"},
                          {}, dir.path() / "batcher.log");
    const std::uint16_t gateway_port = free_port();
    child_process gateway({bin("akv-gateway"), "--redis", redis.url(), "--listen",
                           "127.0.0.1:" + std::to_string(gateway_port)},
                          {}, dir.path() / "gateway.log");
    std::uint16_t worker_port = 0, batcher_port = 0;
    ASSERT_TRUE(poll_until(
        [&] {
            worker_port = announced_port(worker);
            batcher_port = announced_port(batcher);
            return worker_port && batcher_port &&
                   gateway.log().find("listening on") != std::string::npos;
        },
        30s))
        << worker.log_tail() << batcher.log_tail() << gateway.log_tail();
    std::set<std::string> served;
    for (std::uint16_t port : {worker_port, batcher_port, gateway_port})
        for (const auto& [name, family] : scrape(port))
            served.insert(name);

    const std::string dashboard = read_text(std::filesystem::path(AKV_SOURCE_DIR) / "apps" /
                                            "config" / "grafana" / "akv-dashboard.json");
    const std::regex series(R"(akv_[a-z_]+)");
    std::size_t checked = 0;
    for (auto it = std::sregex_iterator(dashboard.begin(), dashboard.end(), series);
         it != std::sregex_iterator(); ++it) {
        std::string name = it->str();
        for (std::string_view suffix : {"_bucket", "_sum", "_count"})
            if (name.ends_with(suffix) && !served.count(name))
                name.resize(name.size() - suffix.size());
        EXPECT_TRUE(served.count(name)) << name << " is in the dashboard, served by none";
        ++checked;
    }
    EXPECT_GT(checked, 10u);
}
