// The generic "exec a command" handler of akv-worker: a job {"argv": ["prog", "arg", ...],
// "stdin": "text" (optional)} runs prog (looked up in PATH) with those arguments; its output
// (stdout and stderr, at most 1 MiB) is the job's result. A non-zero exit fails the run with
// the exit status and the output's tail (retried as the job's options say). A job cancelled or
// past its timeout kills the process.
//
// Only programs named in `allowed` run ("*" allows any): a queue is not a shell for whoever can
// write to Redis.
#pragma once

#include <akv/queue/worker.hpp>

#include <string>
#include <vector>

namespace akv::worker_app {

queue::handler exec_handler(std::vector<std::string> allowed);

// What exec_handler does for one job: runs argv[0] (looked up in PATH) with `input` on its
// stdin; its stdout (and stderr with `with_stderr`), at most 1 MiB, or throws naming `what`
// for a non-zero exit. Cancellation kills the process.
asio::awaitable<std::string> run_program(std::vector<std::string> argv, std::string input,
                                         std::string what, bool with_stderr);

} // namespace akv::worker_app
