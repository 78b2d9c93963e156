// Sends Celery tasks from C++ that Python Celery workers (or celery::worker) run, as
// apply_async would: message protocol 2, JSON, on kombu's Redis transport; and awaits their
// outcome in Celery's Redis result backend.
//
//   celery::producer p(redis, &hub);
//   auto id = co_await p.send("proj.tasks.add", json::array{2, 3}, {}, {.countdown = 5s});
//   auto r = co_await p.result(id, 10s);   // r.succeeded(), r.result == 5
#pragma once

#include <akv/queue/celery_message.hpp>

#include <akv/client.hpp>

#include <random>

namespace akv::messaging {
class subscriber;
}

namespace akv::queue::celery {

struct send_options {
    std::string queue = "celery";
    std::optional<std::chrono::milliseconds> countdown; // eta = now + countdown
    std::optional<clock::time_point> eta;
    std::optional<std::chrono::milliseconds> expires_in;
    std::optional<clock::time_point> expires;
    int priority = 0;                                  // 0 (first) to 9, kombu's Redis order
    std::optional<double> time_limit, soft_time_limit; // seconds
    std::string task_id;                               // empty: a new uuid
    bool ignore_result = false;
};

class producer {
public:
    // `results` (optional): the client's pub/sub hub, to hear results as they are stored
    // (without it, result() polls the backend).
    explicit producer(client& c, messaging::subscriber* results = nullptr, std::string origin = {});

    // The task's id, once the message is on its queue's list.
    asio::awaitable<std::string> send(std::string_view task, boost::json::array args,
                                      boost::json::object kwargs, send_options options);
    // (Not default arguments: GCC 12 destroys a coroutine's defaulted parameter twice.)
    asio::awaitable<std::string> send(std::string_view task, boost::json::array args,
                                      boost::json::object kwargs = {}) {
        return send(task, std::move(args), std::move(kwargs), send_options{});
    }

    // Waits for the task to be ready (SUCCESS, FAILURE or REVOKED) for at most `timeout`;
    // throws system_error(error::timeout) then.
    asio::awaitable<task_result> result(const std::string& task_id,
                                        std::chrono::milliseconds timeout);

private:
    asio::awaitable<std::optional<task_result>> stored(const std::string& task_id);
    std::string new_uuid();

    client& client_;
    messaging::subscriber* results_;
    std::string origin_;
    std::mt19937_64 random_;
};

} // namespace akv::queue::celery
