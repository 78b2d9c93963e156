// A client's own figures as Prometheus series (akv_redis_*), for every process's /metrics:
// connections made and lost, requests written, and the near cache when it is on.
#pragma once

#include <akv/client.hpp>
#include <akv/metrics/prometheus.hpp>

namespace akv::metrics {

// Call on the client's executor (client::stats() reads its connections).
void write_client_metrics(exposition& out, const client& redis);

} // namespace akv::metrics
