// Seed 004's pipeline end to end: tensors into a stream, a batcher running a model loaded from
// Redis on whole batches, scores out; what RedisGears + RedisAI did, in C++.
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/messaging/batcher.hpp>
#include <akv/ml/model_handler.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/testing/embedded_server.hpp>

#include <cmath>
#include <map>

using namespace akv::test;
using namespace akv::messaging;
using namespace akv::ml;
namespace asio = boost::asio;

namespace {

constexpr std::size_t features = 44;

std::vector<float> row_of(int i) {
    std::vector<float> r(features);
    for (std::size_t j = 0; j < features; ++j)
        r[j] = std::sin(float(i * 31 + j)) * 0.5f;
    return r;
}

std::vector<field_list> tensor_entries(int n) {
    std::vector<field_list> out;
    const std::int64_t shape[] = {features};
    for (int i = 0; i < n; ++i) {
        const auto r = row_of(i);
        field_list f;
        f.emplace_back("id", std::to_string(i));
        // Half AKVT tensors, half the seed's raw float32 bytes: the handler reads both.
        if (i % 2)
            f.emplace_back("t", encode<float>(r, shape));
        else
            f.emplace_back("t", std::string(reinterpret_cast<const char*>(r.data()), r.size() * 4));
        out.push_back(std::move(f));
    }
    return out;
}

batcher_options options() {
    batcher_options o;
    o.group.stream = "{pipe}:in";
    o.group.group = "scorers";
    o.group.consumer = "c1";
    o.output_stream = "{pipe}:out";
    o.max_batch = 64;
    o.max_wait = std::chrono::milliseconds(20);
    return o;
}

} // namespace

TEST(ModelPipeline, ScoresEveryEntryWithAModelLoadedFromRedis) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto original = mlp_model::random(features, 16, 3, 7);
        co_await original.save(rc.client, "model:v1");
        auto model = std::make_shared<mlp_model>(co_await mlp_model::load(rc.client, "model:v1"));

        stream_producer producer(rc.client, "{pipe}:in");
        co_await producer.add_many(tensor_entries(300));
        field_list bad;
        bad.emplace_back("id", "bad");
        bad.emplace_back("t", "not a tensor");
        co_await producer.add(bad);

        batcher b(rc.client, options(), model_handler(model));
        co_await b.group().create();
        std::size_t done = 0;
        while (done < 301) {
            const std::size_t n = co_await b.run_once();
            if (n == 0) break;
            done += n;
        }
        EXPECT_EQ(done, 301u);
        EXPECT_EQ(co_await b.group().pending(), 0u);

        akv::request range;
        range.push("XRANGE", "{pipe}:out", "-", "+");
        akv::response<akv::resp::value> resp;
        co_await rc.client.exec(range, resp);
        const auto outputs = entries_from(std::get<0>(resp).value());
        EXPECT_EQ(outputs.size(), 301u);
        std::size_t checked = 0;
        for (const auto& o : outputs) {
            if (*o.field("id") == "bad") {
                EXPECT_NE(o.field("error")->find("44 floats need 176 bytes, got 12"),
                          std::string::npos)
                    << "error field: " << *o.field("error");
                continue;
            }
            const int i = std::stoi(*o.field("id"));
            const tensor scores = decode(*o.field("scores"));
            const auto got = scores.values<float>();
            std::vector<float> want(3);
            const auto r = row_of(i);
            original.predict(r, 1, want);
            for (int k = 0; k < 3; ++k)
                EXPECT_NEAR(got[k], want[k], 1e-5) << "entry " << i;
            ++checked;
        }
        EXPECT_EQ(checked, 300u);
    }());
}
