#include <akv/queue/celery_producer.hpp>

#include <akv/error.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/response.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <unistd.h>

namespace akv::queue::celery {

namespace json = boost::json;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

producer::producer(client& c, messaging::subscriber* results, std::string origin)
    : client_(c)
    , results_(results)
    , origin_(std::move(origin))
    , random_(std::random_device{}()) {
    if (origin_.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        origin_ = "akv-" + std::to_string(::getpid()) + "@" + host;
    }
}

std::string producer::new_uuid() {
    const std::uint64_t a = random_(), b = random_();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return buf;
}

asio::awaitable<std::string> producer::send(std::string_view task, json::array args,
                                            json::object kwargs, send_options options) {
    if (task.empty()) throw_error(error::invalid_config, "celery: a task needs a name");
    if (options.queue.empty()) throw_error(error::invalid_config, "celery: an empty queue name");
    const auto now = clock::now();
    task_fields f;
    f.id = options.task_id.empty() ? new_uuid() : options.task_id;
    f.task = task;
    f.args = std::move(args);
    f.kwargs = std::move(kwargs);
    if (options.eta)
        f.eta = options.eta;
    else if (options.countdown)
        f.eta = now + *options.countdown;
    if (options.expires)
        f.expires = options.expires;
    else if (options.expires_in)
        f.expires = now + *options.expires_in;
    f.time_limit = options.time_limit;
    f.soft_time_limit = options.soft_time_limit;
    f.priority = options.priority;
    f.queue = options.queue;
    f.origin = origin_;
    f.delivery_tag = new_uuid();
    f.ignore_result = options.ignore_result;
    const std::string message = encode_task(f);
    request req;
    req.push("LPUSH", priority_list(options.queue, options.priority), message);
    co_await client_.exec(req, ignore);
    co_return f.id;
}

asio::awaitable<std::optional<task_result>> producer::stored(const std::string& task_id) {
    request req;
    req.push("GET", result_key(task_id));
    response<std::optional<std::string>> resp;
    co_await client_.exec(req, resp);
    const auto& got = std::get<0>(resp).value();
    if (!got) co_return std::nullopt;
    task_result r = decode_result(*got);
    if (!r.ready()) co_return std::nullopt;
    co_return r;
}

asio::awaitable<task_result> producer::result(const std::string& task_id,
                                              std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto timed_out = [&] {
        throw_error(error::timeout, "celery: task " + task_id + " not ready after " +
                                        std::to_string(timeout.count()) + " ms");
    };
    asio::steady_timer timer(ex);
    if (!results_) {
        // Polled, from 5 ms up to 200 ms apart.
        auto pause = 5ms;
        for (;;) {
            if (auto r = co_await stored(task_id)) co_return std::move(*r);
            if (std::chrono::steady_clock::now() >= deadline) timed_out();
            timer.expires_after(pause);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            pause = std::min<std::chrono::milliseconds>(pause * 2, 200ms);
        }
    }
    // As Celery's own client: subscribe to the key's channel, then look at the key.
    std::vector<std::string> channels{result_key(task_id)};
    auto sub = co_await results_->subscribe(std::move(channels));
    std::optional<task_result> ready;
    std::exception_ptr failure;
    try {
        ready = co_await stored(task_id);
        while (!ready) {
            timer.expires_at(deadline);
            auto got = co_await (sub->receive() || timer.async_wait(asio::use_awaitable));
            if (got.index() == 1) timed_out();
            task_result r = decode_result(std::get<0>(got).payload);
            if (r.ready()) ready = std::move(r);
        }
    } catch (...) {
        failure = std::current_exception();
    }
    co_await sub->unsubscribe();
    if (failure) std::rethrow_exception(failure);
    co_return std::move(*ready);
}

} // namespace akv::queue::celery
