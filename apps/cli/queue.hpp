// `akv queue ...`: a task queue's introspection and admin from the command line (akv::queue).
#pragma once

#include <akv/config.hpp>

#include <string>
#include <vector>

namespace akv::cli {

extern const char* const queue_usage;

// `args` is what follows the word `queue`. Returns the exit status (0 done, 1 the queue refused
// the operation, 2 usage/configuration/connection error); prints results on stdout and errors
// on stderr.
int run_queue_command(const akv::config& cfg, const std::vector<std::string>& args);

} // namespace akv::cli
