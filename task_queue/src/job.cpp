#include <akv/queue/admin.hpp>
#include <akv/queue/job.hpp>

#include <akv/error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>

namespace akv::queue {

std::string_view to_string(job_state s) noexcept {
    switch (s) {
    case job_state::waiting: return "waiting";
    case job_state::delayed: return "delayed";
    case job_state::active: return "active";
    case job_state::completed: return "completed";
    case job_state::failed: return "failed";
    case job_state::unknown: return "unknown";
    case job_state::waiting_children:
        return "waiting-children";
    }
    return "unknown";
}

std::chrono::milliseconds retry_delay(const backoff& b, unsigned failures, double draw) noexcept {
    using std::chrono::milliseconds;
    double ms = static_cast<double>(b.base.count());
    if (b.kind == backoff_kind::exponential && failures > 1)
        ms *= std::pow(2.0, std::min<unsigned>(failures - 1, 40));
    ms = std::min(ms, static_cast<double>(std::max(b.max, b.base).count()));
    if (b.jitter) ms = ms / 2 + ms / 2 * std::clamp(draw, 0.0, 1.0);
    return milliseconds(static_cast<std::int64_t>(ms));
}

void validate_queue_name(std::string_view name) {
    if (name.empty()) throw_error(error::invalid_config, "queue name: empty");
    if (name.size() > 200)
        throw_error(error::invalid_config, "queue name: longer than 200 bytes");
    for (char c : name)
        if (c == '{' || c == '}' || c == ' ' || static_cast<unsigned char>(c) < 0x20)
            throw_error(error::invalid_config,
                        "queue name \"" + std::string(name) +
                            "\": braces, spaces and control characters are not allowed (the "
                            "name becomes the hash tag of the queue's keys)");
}

void validate(const job_options& o) {
    if (o.priority < min_priority || o.priority > max_priority)
        throw_error(error::invalid_config, "job_options.priority: " + std::to_string(o.priority) +
                                               " is out of range [-1000, 1000]");
    if (o.max_attempts == 0)
        throw_error(error::invalid_config, "job_options.max_attempts: must be at least 1");
    if (o.delay.count() < 0)
        throw_error(error::invalid_config, "job_options.delay: negative");
    if (o.result_ttl.count() < 0 || o.timeout.count() < 0 || o.backoff.base.count() < 0 ||
        o.backoff.max.count() < 0)
        throw_error(error::invalid_config,
                    "job_options: result_ttl, timeout and backoff must not be negative");
    if (!o.group.empty()) {
        if (o.group.size() > 200)
            throw_error(error::invalid_config, "job_options.group: longer than 200 bytes");
        for (char c : o.group)
            if (c == ' ' || static_cast<unsigned char>(c) < 0x20)
                throw_error(error::invalid_config,
                            "job_options.group \"" + o.group +
                                "\": spaces and control characters are not allowed");
        if (o.priority != 0)
            throw_error(error::invalid_config,
                        "job_options: a grouped job has no priority (groups are served "
                        "round-robin, FIFO within a group)");
    }
    if (o.dedup.mode == dedup_mode::none) return;
    const std::string mode = o.dedup.mode == dedup_mode::throttle ? "throttle" : "debounce";
    if (o.dedup.key.empty())
        throw_error(error::invalid_config, "job_options.dedup: " + mode + " needs a key");
    if (o.dedup.window.count() <= 0)
        throw_error(error::invalid_config,
                    "job_options.dedup: " + mode + " needs a window above 0 ms");
    if (!o.unique_key.empty())
        throw_error(error::invalid_config,
                    "job_options: unique_key and dedup are two ways to deduplicate: use one");
    if (o.dedup.mode == dedup_mode::debounce && (o.delay.count() > 0 || o.run_at))
        throw_error(error::invalid_config,
                    "job_options.dedup: a debounced job waits its window; delay and run_at "
                    "do not apply");
}

namespace detail {

std::optional<job_result> decode_result(std::string_view stored) {
    if (stored.empty()) return std::nullopt;
    job_result r;
    switch (stored[0]) {
    case 'c': r.outcome = job_result::status::completed; break;
    case 'f': r.outcome = job_result::status::failed; break;
    case 'x': r.outcome = job_result::status::cancelled; break;
    default: return std::nullopt;
    }
    r.value = stored.substr(1);
    return r;
}

std::string random_token() {
    std::random_device rd;
    const std::uint64_t bits = (std::uint64_t{rd()} << 32) ^ rd();
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(bits));
    return buf;
}

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string encode_record(const job_options& o, std::int64_t enqueued_ms,
                          std::chrono::milliseconds delay, std::string_view payload,
                          std::string_view flow) {
    std::string r;
    r.reserve(64 + o.unique_key.size() + flow.size() + o.group.size() + payload.size());
    auto field = [&r](auto v) {
        r += std::to_string(v);
        r += '|';
    };
    r += !o.group.empty() ? "3|" : flow.empty() ? "1|" : "2|";
    field(o.max_attempts);
    r += o.backoff.kind == backoff_kind::exponential ? 'e' : 'f';
    if (o.backoff.jitter) r += 'j';
    r += '|';
    field(o.backoff.base.count());
    field(o.backoff.max.count());
    field(o.timeout.count());
    field(o.result_ttl.count());
    field(o.priority);
    field(enqueued_ms);
    field(delay.count());
    field(o.unique_key.size());
    if (!flow.empty() || !o.group.empty()) field(flow.size());
    if (!o.group.empty()) field(o.group.size());
    r += o.unique_key;
    r += flow;
    r += o.group;
    r += payload;
    return r;
}

std::string flow_text(const job& j) {
    if (!j.parent && j.children == 0) return {};
    std::string t(1, j.children == 0 ? '-' : j.collects ? 'g' : 'c');
    t += std::to_string(j.children);
    t += '|';
    if (!j.parent) {
        t += '-';
        return t;
    }
    t += j.parent->on_failure == on_child_failure::ignore ? 'i' : 'f';
    t += j.parent->queue;
    t += ' ';
    t += j.parent->id;
    t += ' ';
    t += std::to_string(j.parent->index);
    return t;
}

namespace {
template <class Int>
Int number(std::string_view queue, std::string_view id, std::string_view what,
           std::string_view text) {
    Int v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                        std::string(id) + ": record field " + std::string(what) +
                                        " is not a number: \"" + std::string(text) + "\"");
    return v;
}
} // namespace

namespace {
// The flow text of a record (flow_text()) into the job.
void decode_flow(std::string_view queue, std::string_view id, std::string_view text, job& j) {
    auto bad = [&] {
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " + std::string(id) +
                                        ": bad flow text \"" + std::string(text) + "\"");
    };
    const auto bar = text.find('|');
    if (text.size() < 4 || bar == std::string_view::npos || bar + 1 >= text.size()) bad();
    const char kind = text[0];
    if (kind != '-' && kind != 'c' && kind != 'g') bad();
    j.children = number<std::size_t>(queue, id, "children", text.substr(1, bar - 1));
    j.collects = kind == 'g';
    const char policy = text[bar + 1];
    if (policy == '-') return;
    if (policy != 'f' && policy != 'i') bad();
    const std::string_view rest = text.substr(bar + 2);
    const auto s1 = rest.find(' ');
    const auto s2 = s1 == std::string_view::npos ? s1 : rest.find(' ', s1 + 1);
    if (s2 == std::string_view::npos) bad();
    job_parent p;
    p.queue = rest.substr(0, s1);
    p.id = rest.substr(s1 + 1, s2 - s1 - 1);
    p.index = number<std::size_t>(queue, id, "child index", rest.substr(s2 + 1));
    p.on_failure = policy == 'i' ? on_child_failure::ignore : on_child_failure::fail;
    j.parent = std::move(p);
}
} // namespace

job decode_record(std::string_view queue, std::string_view id, std::string_view record) {
    const bool grouped = record.starts_with("3|");
    const bool in_flow = grouped || record.starts_with("2|");
    std::string_view f[13];
    std::size_t pos = 0;
    for (auto& field : std::span(f, grouped ? 13 : in_flow ? 12 : 11)) {
        auto bar = record.find('|', pos);
        if (bar == std::string_view::npos)
            throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                            std::string(id) +
                                            ": record header is cut short (" +
                                            std::to_string(record.size()) + " bytes)");
        field = record.substr(pos, bar - pos);
        pos = bar + 1;
    }
    if (f[0] != "1" && f[0] != "2" && f[0] != "3")
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                        std::string(id) + ": unknown record version \"" +
                                        std::string(f[0]) + "\"");
    job j;
    j.queue = queue;
    j.id = id;
    auto& o = j.options;
    o.max_attempts = number<unsigned>(queue, id, "max_attempts", f[1]);
    if (f[2].empty() || (f[2][0] != 'e' && f[2][0] != 'f'))
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                        std::string(id) + ": bad backoff kind \"" +
                                        std::string(f[2]) + "\"");
    o.backoff.kind = f[2][0] == 'e' ? backoff_kind::exponential : backoff_kind::fixed;
    o.backoff.jitter = f[2].size() > 1 && f[2][1] == 'j';
    o.backoff.base = std::chrono::milliseconds(number<std::int64_t>(queue, id, "backoff base", f[3]));
    o.backoff.max = std::chrono::milliseconds(number<std::int64_t>(queue, id, "backoff max", f[4]));
    o.timeout = std::chrono::milliseconds(number<std::int64_t>(queue, id, "timeout", f[5]));
    o.result_ttl = std::chrono::milliseconds(number<std::int64_t>(queue, id, "result_ttl", f[6]));
    o.priority = number<int>(queue, id, "priority", f[7]);
    j.enqueued_ms = number<std::int64_t>(queue, id, "enqueued", f[8]);
    o.delay = std::chrono::milliseconds(number<std::int64_t>(queue, id, "delay", f[9]));
    auto ulen = number<std::size_t>(queue, id, "unique key length", f[10]);
    if (ulen > record.size() - pos)
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                        std::string(id) + ": unique key length " +
                                        std::to_string(ulen) + " runs past the record");
    o.unique_key = record.substr(pos, ulen);
    pos += ulen;
    if (in_flow) {
        auto flen = number<std::size_t>(queue, id, "flow length", f[11]);
        if (flen > record.size() - pos)
            throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                            std::string(id) + ": flow length " +
                                            std::to_string(flen) + " runs past the record");
        if (flen > 0) decode_flow(queue, id, record.substr(pos, flen), j);
        pos += flen;
    }
    if (grouped) {
        auto glen = number<std::size_t>(queue, id, "group length", f[12]);
        if (glen == 0 || glen > record.size() - pos)
            throw_error(error::bad_job, "queue \"" + std::string(queue) + "\" job " +
                                            std::string(id) + ": group length " +
                                            std::to_string(glen) + " is 0 or runs past the record");
        o.group = record.substr(pos, glen);
        pos += glen;
    }
    j.payload = record.substr(pos);
    return j;
}

child_result decode_child(std::string_view stored) {
    const auto s1 = stored.find(' ');
    const auto s2 = s1 == std::string_view::npos ? s1 : stored.find(' ', s1 + 1);
    if (s1 == std::string_view::npos || s1 == 0)
        throw_error(error::bad_job,
                    "a flow's child: bad entry \"" + std::string(stored.substr(0, 80)) + "\"");
    child_result c;
    c.queue = stored.substr(0, s1);
    c.id = stored.substr(s1 + 1, s2 == std::string_view::npos ? s2 : s2 - s1 - 1);
    if (s2 != std::string_view::npos) {
        c.result = decode_result(stored.substr(s2 + 1));
        if (!c.result)
            throw_error(error::bad_job,
                        "a flow's child " + c.queue + " " + c.id + ": unknown outcome");
    }
    return c;
}

std::vector<child_result> decode_group(std::string_view text) {
    std::vector<child_result> out;
    while (!text.empty()) {
        const auto colon = text.find(':');
        std::size_t len = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + colon, len);
        if (colon == std::string_view::npos || ec != std::errc{} || end != text.data() + colon ||
            len > text.size() - colon - 1)
            throw_error(error::bad_job, "a group's result: malformed at \"" +
                                            std::string(text.substr(0, 20)) + "\"");
        out.push_back(decode_child(text.substr(colon + 1, len)));
        text.remove_prefix(colon + 1 + len);
    }
    return out;
}

// Buckets: 1, 2, 5, 10, 20, 50 ... ms (three per decade), the last one open-ended.
double latency_bucket_bound(std::size_t bucket) noexcept {
    static constexpr double steps[3] = {1, 2, 5};
    return steps[bucket % 3] * std::pow(10.0, static_cast<double>(bucket / 3));
}

std::size_t latency_bucket(std::int64_t ms) noexcept {
    for (std::size_t b = 0; b + 1 < latency_buckets; ++b)
        if (static_cast<double>(ms) <= latency_bucket_bound(b)) return b;
    return latency_buckets - 1;
}

} // namespace detail
} // namespace akv::queue
