#include <akv/metrics/client_metrics.hpp>

namespace akv::metrics {

void write_client_metrics(exposition& out, const client& redis) {
    const client_stats s = redis.stats();
    auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
        out.family(name, type, help).sample(static_cast<double>(v));
    };
    metric("akv_redis_connects_total", "counter", "Connections made to Redis (reconnects too).",
           s.connections.connects);
    metric("akv_redis_disconnects_total", "counter", "Connections to Redis lost or closed.",
           s.connections.disconnects);
    metric("akv_redis_requests_total", "counter", "Requests written to Redis.",
           s.connections.requests_written);
    if (redis.get_config().cache.kind == cache_options::mode::off) return;
    const cache_stats& c = s.cache;
    metric("akv_redis_cache_hits_total", "counter", "Reads answered from the client-side cache.",
           c.hits);
    metric("akv_redis_cache_misses_total", "counter", "Cacheable reads sent to Redis, then kept.",
           c.misses);
    metric("akv_redis_cache_not_cached_total", "counter",
           "Reads whose key changed while they were out.", c.not_cached);
    metric("akv_redis_cache_invalidations_total", "counter",
           "Entries dropped on Redis's invalidation.", c.invalidations);
    metric("akv_redis_cache_flushes_total", "counter",
           "Whole-cache drops (lost connection, FLUSHALL).", c.flushes);
    metric("akv_redis_cache_evictions_total", "counter", "Entries dropped for the byte budget.",
           c.evictions);
    metric("akv_redis_cache_expirations_total", "counter", "Entries dropped at the age limit.",
           c.expirations);
    metric("akv_redis_cache_entries", "gauge", "Entries held.", c.entries);
    metric("akv_redis_cache_bytes", "gauge", "Bytes held, counted against the budget.", c.bytes);
}

} // namespace akv::metrics
