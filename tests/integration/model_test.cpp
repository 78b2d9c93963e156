// akv::ml::mlp_model::save / load against a real server.
#include "support/harness.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/ml/model.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/use_awaitable.hpp>

#include "support/errors.hpp"
#include <optional>

using akv::test::contains;

using namespace akv::test;
using akv::ml::mlp_model;
namespace asio = boost::asio;

namespace {

class running_client {
public:
    running_client(asio::io_context& io, akv::config cfg)
        : io_(io)
        , client(io.get_executor(), cfg) {
        asio::co_spawn(io, client.run(), [this](std::exception_ptr) { finished = true; });
    }
    ~running_client() {
        client.cancel();
        EXPECT_TRUE(run_until(
            io_, [this] { return finished; }, 10s));
    }
    asio::io_context& io_;
    akv::client client;
    bool finished = false;
};

// The error `op` throws; a test failure if it throws none.
asio::awaitable<boost::system::system_error> error_of(asio::awaitable<mlp_model> op) {
    try {
        co_await std::move(op);
    } catch (const boost::system::system_error& e) {
        co_return e;
    }
    ADD_FAILURE() << "no error was thrown";
    co_return boost::system::system_error(boost::system::error_code{}, "no error");
}

// One command whose reply must not be an error.
template <class... Args>
asio::awaitable<void> command(akv::client& redis, std::string_view name, Args... args) {
    akv::request req;
    req.push(name, args...);
    akv::response<akv::resp::value> resp;
    co_await redis.exec(req, resp);
    EXPECT_TRUE(std::get<0>(resp).has_value()) << std::get<0>(resp).error().message;
}

std::vector<float> predictions(const mlp_model& model, std::size_t rows) {
    std::vector<float> x(rows * model.input_size());
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(i % 13) * 0.1f - 0.6f;
    std::vector<float> y(rows * model.output_size());
    model.predict(x, rows, y);
    return y;
}

} // namespace

TEST(MlpModelStore, SaveThenLoadGivesTheSameModel) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const mlp_model original = mlp_model::random(44, 16, 2, 11);
        co_await original.save(rc.client, "model:interest");
        const mlp_model loaded = co_await mlp_model::load(rc.client, "model:interest");
        EXPECT_TRUE(loaded == original);
        EXPECT_EQ(predictions(loaded, 8), predictions(original, 8));
    }());
}

TEST(MlpModelStore, StoredFieldsAreTensorsAnyClientCanDecode) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await mlp_model::random(44, 16, 3, 1).save(rc.client, "m");
        akv::request req;
        req.push("HGET", "m", "w1");
        req.push("HGET", "m", "b2");
        akv::response<std::string, std::string> resp;
        co_await rc.client.exec(req, resp);
        const auto w1 = akv::ml::decode(std::get<0>(resp).value());
        const auto b2 = akv::ml::decode(std::get<1>(resp).value());
        EXPECT_EQ(w1.shape, (std::vector<std::int64_t>{44, 16}));
        EXPECT_EQ(w1.type, akv::ml::dtype::f32);
        EXPECT_EQ(b2.shape, (std::vector<std::int64_t>{3}));
    }());
}

TEST(MlpModelStore, LoadCopiesTheKeyBeforeItRuns) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const mlp_model original = mlp_model::random(4, 3, 1, 5);
        auto save = original.save(rc.client, std::string("model:") + "copied");
        co_await std::move(save);
        auto load = mlp_model::load(rc.client, std::string("model:") + "copied");
        const mlp_model loaded = co_await std::move(load);
        EXPECT_TRUE(loaded == original);
    }());
}

TEST(MlpModelStore, LoadOfAMissingKeyNamesTheKey) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto e = co_await error_of(mlp_model::load(rc.client, "model:nope"));
        EXPECT_EQ(e.code(), akv::error::unexpected_null);
        EXPECT_TRUE(contains(e.what(), "model \"model:nope\": no such key"));
    }());
}

TEST(MlpModelStore, LoadOfAHashWithoutAFieldNamesTheField) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await mlp_model::random(4, 3, 2, 5).save(rc.client, "m");
        co_await command(rc.client, "HDEL", "m", "b2");
        auto e = co_await error_of(mlp_model::load(rc.client, "m"));
        EXPECT_EQ(e.code(), akv::error::unexpected_null);
        EXPECT_TRUE(contains(e.what(), "model \"m\": missing field \"b2\""));
    }());
}

TEST(MlpModelStore, LoadOfCorruptedTensorBytesNamesTheFieldAndTheProblem) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await mlp_model::random(4, 3, 2, 5).save(rc.client, "m");
        co_await command(rc.client, "HSET", "m", "w2", "not a tensor");
        auto e = co_await error_of(mlp_model::load(rc.client, "m"));
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(), "model \"m\": field \"w2\": tensor: bad magic \"not \""));
    }());
}

TEST(MlpModelStore, LoadOfATruncatedTensorNamesTheSizes) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await mlp_model::random(4, 3, 2, 5).save(rc.client, "m");
        // w1 is [4,3] of f32: 8 + 16 header bytes and 48 data bytes; keep 44 of them.
        akv::request get;
        get.push("HGET", "m", "w1");
        akv::response<std::string> w1;
        co_await rc.client.exec(get, w1);
        const std::string cut = std::get<0>(w1).value().substr(0, 24 + 44);
        co_await command(rc.client, "HSET", "m", "w1", cut);
        auto e = co_await error_of(mlp_model::load(rc.client, "m"));
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(), "model \"m\": field \"w1\": tensor: shape [4,3] of f32 "
                                       "needs 48 data bytes, got 44"));
    }());
}

TEST(MlpModelStore, LoadOfTensorsThatDoNotFitTogetherNamesTheShapes) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await mlp_model::random(4, 3, 2, 5).save(rc.client, "m");
        co_await mlp_model::random(4, 5, 2, 5).save(rc.client, "other");
        akv::request get;
        get.push("HGET", "other", "b1");
        akv::response<std::string> b1;
        co_await rc.client.exec(get, b1);
        co_await command(rc.client, "HSET", "m", "b1", std::get<0>(b1).value());
        auto e = co_await error_of(mlp_model::load(rc.client, "m"));
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(), "model \"m\": mlp_model: b1 must be f32 [3]"));
        EXPECT_TRUE(contains(e.what(), "got f32 [5]"));
    }());
}

TEST(MlpModelStore, LoadOfAKeyOfAnotherTypeGivesTheServersError) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await command(rc.client, "SET", "m", "a string");
        auto e = co_await error_of(mlp_model::load(rc.client, "m"));
        EXPECT_EQ(e.code(), akv::error::server_error);
        EXPECT_TRUE(contains(e.what(), "model \"m\": WRONGTYPE"));
    }());
}
