// Fuzzes the task queue's two readers of untrusted text: the stored job record (anyone with
// write access to the server can put bytes there) and the cron expression of a periodic job.
//
// Input: one selector byte, then the text. An even selector decodes the text as a job record;
// an odd one parses it as a cron expression and asks for its next fire time after one of four
// fixed instants (selector bits 1-2).
//
// decode_record must return a job or throw system_error(bad_job); a decoded job must survive
// encode_record + decode_record with every field equal, and the re-encoded record must be a
// fixed point. cron_schedule::parse and next_after must return or throw
// system_error(invalid_config); the next time must be a whole second strictly after the instant,
// and asking again from just before it must give it back. Any other exception escapes and is
// reported as a crash, like a sanitizer report.

#include <akv/error.hpp>
#include <akv/queue/cron.hpp>
#include <akv/queue/job.hpp>

#include <boost/system/system_error.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

#define AKV_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

using namespace std::chrono;
namespace q = akv::queue;

bool same_options(const q::job_options& a, const q::job_options& b) {
    return a.delay == b.delay && a.run_at == b.run_at && a.priority == b.priority &&
           a.max_attempts == b.max_attempts && a.backoff.kind == b.backoff.kind &&
           a.backoff.base == b.backoff.base && a.backoff.max == b.backoff.max &&
           a.backoff.jitter == b.backoff.jitter && a.unique_key == b.unique_key &&
           a.result_ttl == b.result_ttl && a.timeout == b.timeout;
}

bool same_job(const q::job& a, const q::job& b) {
    return a.queue == b.queue && a.id == b.id && a.payload == b.payload &&
           same_options(a.options, b.options) && a.attempt == b.attempt &&
           a.enqueued_ms == b.enqueued_ms;
}

std::string encode(const q::job& j) {
    return q::detail::encode_record(j.options, j.enqueued_ms, j.options.delay, j.payload);
}

void fuzz_record(std::string_view record) {
    constexpr std::string_view queue = "fuzz";
    constexpr std::string_view id = "42";
    q::job first;
    try {
        first = q::detail::decode_record(queue, id, record);
    } catch (const boost::system::system_error& e) {
        AKV_FUZZ_CHECK(e.code() == akv::error::bad_job);
        return;
    }
    AKV_FUZZ_CHECK(first.queue == queue && first.id == id);
    AKV_FUZZ_CHECK(!first.options.run_at); // the record has no run_at: delay stands for it
    // Whatever decoded encodes to a record that decodes to the same job: a throw here escapes.
    const std::string again = encode(first);
    const q::job second = q::detail::decode_record(queue, id, again);
    AKV_FUZZ_CHECK(same_job(first, second));
    AKV_FUZZ_CHECK(encode(second) == again);
}

// Fixed instants to search from: an ordinary one with a fraction of a second, the last second
// of a leap day, one second before the epoch, and days before the end of system_clock (so the
// answer can fall past what it holds).
constexpr std::array<std::int64_t, 4> start_ms{
    1'718'455'121'250, // 2024-06-15 12:38:41.250 UTC, a Saturday
    3'981'398'399'000, // 2096-02-29 23:59:59 UTC; 2096 is a leap year, 2100 is not
    -1'000,            // 1969-12-31 23:59:59 UTC
    9'222'940'800'000, // 2262-04-07 00:00:00 UTC, days before system_clock (ns) runs out
};

void fuzz_cron(std::string_view text, unsigned which) {
    const system_clock::time_point t{milliseconds(start_ms[which % start_ms.size()])};
    std::optional<q::cron_schedule> c;
    system_clock::time_point next;
    try {
        c = q::cron_schedule::parse(text);
        next = c->next_after(t);
    } catch (const boost::system::system_error& e) {
        AKV_FUZZ_CHECK(e.code() == akv::error::invalid_config);
        return;
    }
    // From here on nothing may throw: an exception escapes.
    AKV_FUZZ_CHECK(c->expression() == text);
    AKV_FUZZ_CHECK(next > t);
    AKV_FUZZ_CHECK(floor<seconds>(next) == next);
    // The first match after t is also the first after any instant in [t, next).
    AKV_FUZZ_CHECK(c->next_after(next - seconds(1)) == next);
    AKV_FUZZ_CHECK(q::cron_schedule::parse(c->expression()).next_after(t) == next);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((data[0] & 1) == 0)
        fuzz_record(text);
    else
        fuzz_cron(text, data[0] >> 1);
    return 0;
}
