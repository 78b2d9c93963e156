// Celery's wire formats, without I/O: a task message of message protocol 2 as kombu's Redis
// transport carries it (a JSON envelope whose base64 body is [args, kwargs, embed]), and a
// task's record in Celery's Redis result backend ("celery-task-meta-<id>"). The worker
// (celery.hpp) and the producer (celery_producer.hpp) are built on these; the tests drive them
// against the Python library itself.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace akv::queue::celery {

using clock = std::chrono::system_clock;

// kombu's separator between a queue's name and its priority ("celery\x06\x163").
inline constexpr std::string_view priority_separator = "\x06\x16";
// kombu's Redis priorities: 0 (the queue's own list, taken first) to 9, in steps of 3.
inline constexpr int priority_steps[] = {0, 3, 6, 9};

// The list a message of `priority` goes to: the queue itself for 0, "<queue>\x06\x16<step>"
// for the step at or below it (kombu's _q_for_pri). Out of range priorities are clamped.
std::string priority_list(std::string_view queue, int priority);
// The queue a list belongs to ("celery\x06\x166" -> "celery").
std::string_view queue_of_list(std::string_view list);

// A task message as a worker reads it.
struct task_message {
    std::string id;
    std::string task; // the registered name, e.g. "proj.tasks.add"
    boost::json::array args;
    boost::json::object kwargs;
    boost::json::value embed; // callbacks, errbacks, chain, chord (kept, not acted upon)
    int retries = 0;
    std::optional<clock::time_point> eta;
    std::optional<clock::time_point> expires;
    // Seconds, from the header "timelimit": [time_limit, soft_time_limit].
    std::optional<double> soft_time_limit;
    std::optional<double> time_limit;
    int priority = 0;
    bool ignore_result = false;
    bool redelivered = false;
    std::string root_id, parent_id, group, origin;
    std::string correlation_id, reply_to;
    std::string delivery_tag, exchange, routing_key;
};

// Reads a message envelope. Throws system_error(error::bad_job) saying what is wrong: not JSON,
// a content type other than application/json (a pickled body), a body that is not base64 or
// not JSON, message protocol 1, a missing task name or id, a bad date.
task_message decode_task(std::string_view envelope);

// What a producer sets on a new message.
struct task_fields {
    std::string id;
    std::string task;
    boost::json::array args;
    boost::json::object kwargs;
    int retries = 0;
    std::optional<clock::time_point> eta;
    std::optional<clock::time_point> expires;
    std::optional<double> soft_time_limit;
    std::optional<double> time_limit;
    int priority = 0;
    std::string queue = "celery"; // the routing key: kombu's default exchange ("") sends there
    std::string origin;           // "<name>@<host>"
    std::string delivery_tag;
    std::string root_id, parent_id;
    bool ignore_result = false;
};

// The envelope, as Celery 5's apply_async writes it (protocol 2, JSON, base64 body).
std::string encode_task(const task_fields& f);

// The same message for its next run: retries + 1, a new eta and delivery tag, redelivered
// flags cleared. Throws system_error(error::bad_job) for an envelope that does not decode.
std::string retry_envelope(std::string_view envelope, int retries, clock::time_point eta,
                           std::string_view delivery_tag);

// ---- The result backend

// Celery's task states (celery.states).
namespace states {
inline constexpr std::string_view pending = "PENDING";
inline constexpr std::string_view started = "STARTED";
inline constexpr std::string_view success = "SUCCESS";
inline constexpr std::string_view failure = "FAILURE";
inline constexpr std::string_view retry = "RETRY";
inline constexpr std::string_view revoked = "REVOKED";
} // namespace states

inline std::string result_key(std::string_view task_id) {
    return "celery-task-meta-" + std::string(task_id);
}

// An exception as the JSON result backend keeps it; Python raises `module.type(*message)`.
struct exception_info {
    std::string type;   // e.g. "ValueError"
    std::string module; // e.g. "builtins"
    boost::json::array args;
};
boost::json::object encode_exception(const exception_info& e);

// The record SETEX'd at result_key(id) and PUBLISHed on the same name.
std::string result_record(std::string_view task_id, std::string_view status,
                          const boost::json::value& result, std::string_view traceback,
                          clock::time_point done);

// A record read back (by the producer).
struct task_result {
    std::string status;
    boost::json::value result; // the value, or the exception's {exc_type, exc_message, ...}
    std::string traceback;
    bool ready() const noexcept {
        return status == states::success || status == states::failure || status == states::revoked;
    }
    bool succeeded() const noexcept { return status == states::success; }
    // For a failure: "ValueError: boom".
    std::string error_text() const;
};
// Throws system_error(error::bad_job) for a record that is not one.
task_result decode_result(std::string_view record);

// ---- Helpers shared by worker and producer

// "2026-12-07T22:33:25.066245+00:00" (what Celery writes for eta and expires) and back; a
// naive time (no offset) is UTC. nullopt for text that is no such date.
std::string iso8601(clock::time_point t, bool with_offset = true);
std::optional<clock::time_point> parse_iso8601(std::string_view text);
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

} // namespace akv::queue::celery
