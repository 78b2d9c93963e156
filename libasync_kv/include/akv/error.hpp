// akv::error: the library's own error conditions, as boost::system::error_code values.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>

namespace akv {

enum class error {
    // RESP protocol (resp/)
    resp_protocol = 1, // malformed reply bytes
    resp_too_deep,     // aggregate nesting beyond parser_limits::max_depth
    resp_too_large,    // a length beyond parser_limits (bulk or aggregate)
    resp_unsupported,  // a valid RESP3 form we do not accept (streamed strings/aggregates)

    // Requests and replies
    server_error,      // the server answered with an error reply (a value, see akv::result)
    type_mismatch,     // the reply's type cannot be adapted to the requested C++ type
    unexpected_null,   // a null reply where the C++ type has no null (use std::optional)
    incompatible_size, // response and request disagree on the number of replies
    empty_request,     // exec() of a request with no command

    // Connection
    not_connected,        // request refused because the connection is down and the
                          // request asked not to wait for a reconnect
    connection_lost,      // the request was written but the connection dropped before its reply
    timeout,              // a per-request timeout fired
    connect_timeout,      // TCP/unix connect did not finish in config::connect_timeout
    resolve_failed,       // the host name did not resolve
    handshake_failed,     // HELLO / SELECT / SETNAME refused (see connection::last_error_message)
    auth_failed,          // HELLO refused the credentials (WRONGPASS / NOAUTH / NOPERM)
    health_check_timeout, // no sign of life after a health-check PING
    connection_closed,    // the connection was shut down by connection::cancel()
    push_overflow,        // a push frame was dropped because the push queue was full
    pool_exhausted,       // no blocking-command connection became free within pool_wait_timeout

    // Topologies (Sentinel, Cluster)
    wrong_role,         // the server's ROLE is not the one asked for (a demoted master)
    master_not_found,   // no sentinel could name the master (see last_error_message)
    cross_slot,         // a command's keys hash to different cluster slots; refused unsent
    too_many_redirects, // MOVED/ASK went on past config::cluster_max_redirects
    cluster_down,       // no node serves the slot within config::cluster_failover_wait

    // Configuration
    invalid_config, // a bad key or value in JSON / flags
    invalid_url,    // a URL we cannot use

    // Data
    object_too_large, // a value beyond a configured size limit

    // Messaging
    subscriber_overflow, // a subscription fell behind its queue bound (policy: disconnect)
    subscription_closed, // receive() on a subscription that was unsubscribed or closed
    script_error,        // a Lua script of ours failed (message has the server's text)

    // Processes
    server_start_failed, // embedded_server could not start redis-server

    // Models (kv/model_registry); appended so the values above keep their numbers
    not_found,       // no model, version or tag of that name
    corrupt_archive, // stored bytes that do not unpack as the archive they should be

    // Task queues (task_queue/)
    unknown_job, // no job of that id in the queue (or its result expired)
    bad_job,     // a stored job record that does not decode
    job_active,  // the job is running: cancel it instead
    lease_lost,  // the job's lease expired and it was recovered: it runs elsewhere
    unknown_queue, // no job was ever enqueued in a queue of that name

    // Models (ml/)
    invalid_model, // a model's files disagree with what they declare (not TorchScript, inputs)
    model_failed,  // running the model failed (its forward threw)

    // Streams (messaging/dead_letter)
    unknown_entry,   // no entry of that id in the stream
    not_dead_letter, // not a dead-letter stream (or entry), or its source stream is gone

    // Task queues, appended: a partitioned queue opened with a partition count that disagrees
    // with the one stored for it (akv/queue/partitioned.hpp)
    partition_mismatch,
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// Throws boost::system::system_error whose what() starts with `detail`, so the
// message names what was wrong and where, and the code stays testable.
[[noreturn]] void throw_error(error e, const std::string& detail);

} // namespace akv

namespace boost::system {
template <> struct is_error_code_enum<akv::error> : std::true_type {};
} // namespace boost::system
