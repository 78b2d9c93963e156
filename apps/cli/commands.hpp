// The subcommand families of akv beside `queue` (queue.hpp): each takes what follows its word
// on the command line and returns the exit status (0 done, 1 refused: no such stream, group,
// model, object, ...; 2 usage, configuration, input or connection error), printing results on
// stdout and errors on stderr.
#pragma once

#include <akv/config.hpp>

#include <string>
#include <vector>

namespace akv::cli {

extern const char* const stream_usage;
extern const char* const blob_usage;
extern const char* const model_usage;
extern const char* const embedding_usage;
extern const char* const monitor_usage;
extern const char* const demo_load_usage;
extern const char* const console_usage;

// `akv stream groups|pending|info ...` (stream.cpp): a stream and its consumer groups.
int run_stream_command(const akv::config& cfg, const std::vector<std::string>& args);
// `akv blob put|get|list|rm ...` (blob.cpp): objects of an akv::kv::blob_store.
int run_blob_command(const akv::config& cfg, const std::vector<std::string>& args);
// `akv model put|get|list|tag ...` (model.cpp): versions of an akv::kv::model_registry.
int run_model_command(const akv::config& cfg, const std::vector<std::string>& args);
// `akv embedding export|import ...` (embedding.cpp): an akv::kv::embedding_table as text.
int run_embedding_command(const akv::config& cfg, const std::vector<std::string>& args);
// `akv monitor ...` (monitor.cpp): live counters of the server, queues and streams.
int run_monitor_command(const akv::config& cfg, const std::vector<std::string>& args);
// `akv demo-load [N] ...` (demo_load.cpp): sample comments to the demo's webhook, over HTTP.
int run_demo_load(const std::vector<std::string>& args);
// `akv console [--listen HOST:PORT]` (console.cpp): the operator's console on a local port.
int run_console_command(const akv::config& cfg, const std::vector<std::string>& args);

} // namespace akv::cli
