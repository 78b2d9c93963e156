// --metrics-listen HOST:PORT: akv-worker and akv-batcher answer Prometheus scrapes there
// (akv::gateway::metrics_listener), with akv::metrics' text format. Names follow Prometheus's
// conventions: akv_<area>_<what>_<unit>, counters ending in _total, seconds for durations.
#pragma once

#include "common/app.hpp"

#include <akv/client.hpp>
#include <akv/gateway/metrics_listener.hpp>
#include <akv/metrics/client_metrics.hpp>
#include <akv/metrics/prometheus.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace akv::app {

flag metrics_listen_flag();

// Serves `source` at http://HOST:PORT/metrics when --metrics-listen is given (nullptr when
// not), on `io`, and prints "metrics on http://HOST:PORT/metrics" (the port bound, for port 0).
// Throws usage_error for a bad flag or an address that cannot be bound.
std::unique_ptr<gateway::metrics_listener> start_metrics(const command_line& cl,
                                                         boost::asio::io_context& io,
                                                         gateway::metrics_listener::source source);

} // namespace akv::app
