// Fuzzes client-side caching against a real server: the input is a mix of reads and writes over
// a few keys of every type, and every read is answered twice, once through the cache and once
// straight from the server, on two clients of one private redis-server. The two replies must
// be equal, whatever the mix: the cache's own writes (dropped locally before they are sent),
// another client's writes (announced by invalidation pushes; a PING on the reader's connection
// after the write's reply has been answered only once the push before it was read), FLUSHALL,
// MGET/HMGET/EXISTS answered partly from memory, duplicate keys, wrong types and errors.
//
// Input: a sequence of operations, each an opcode byte and three operand bytes (key, field,
// value). A difference traps, as a sanitizer report would.

#include <akv/client.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

#define AKV_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

namespace asio = boost::asio;

struct fixture {
    akv::testing::embedded_server server{{.unix_socket = false}};
    asio::io_context io{1};
    std::unique_ptr<akv::client> cached;
    std::unique_ptr<akv::client> plain;
    std::unique_ptr<akv::client> other;

    fixture() {
        akv::config c = server.config();
        c.cache.kind = akv::cache_options::mode::tracking;
        c.cache.max_bytes = 4096; // small: evictions happen too
        cached = std::make_unique<akv::client>(io.get_executor(), c);
        plain = std::make_unique<akv::client>(io.get_executor(), server.config());
        other = std::make_unique<akv::client>(io.get_executor(), server.config());
        for (akv::client* cl : {cached.get(), plain.get(), other.get()})
            asio::co_spawn(io, cl->run(), [](std::exception_ptr) {});
    }
};

fixture& the_fixture() {
    static fixture f; // one server for the whole run
    return f;
}

std::string key(std::uint8_t b) {
    return "k" + std::to_string(b % 6);
}
std::string field(std::uint8_t b) {
    return "f" + std::to_string(b % 4);
}
std::string value(std::uint8_t b) {
    return std::string(1 + b % 7, static_cast<char>('a' + b % 26));
}

// A read, built the same way for both clients.
void push_read(akv::request& r, std::uint8_t op, std::uint8_t a, std::uint8_t b, std::uint8_t c) {
    switch (op % 14) {
    case 0:
        r.push("GET", key(a));
        break;
    case 1:
        r.push("MGET", key(a), key(b), key(c), key(a));
        break;
    case 2:
        r.push("HGET", key(a), field(b));
        break;
    case 3:
        r.push("HMGET", key(a), field(b), field(c), field(b));
        break;
    case 4:
        r.push("HGETALL", key(a));
        break;
    case 5:
        r.push("EXISTS", key(a), key(b), key(a));
        break;
    case 6:
        r.push("STRLEN", key(a));
        break;
    case 7:
        r.push("LRANGE", key(a), 0, -1);
        break;
    case 8:
        r.push("SISMEMBER", key(a), value(b));
        break;
    case 9:
        r.push("ZRANGE", key(a), 0, -1, "WITHSCORES");
        break;
    case 10:
        r.push("LLEN", key(a));
        break;
    case 11:
        r.push("HLEN", key(a));
        break;
    case 12:
        r.push("SCARD", key(a));
        break;
    default:
        r.push("TYPE", key(a));
        break;
    }
}

void push_write(akv::request& r, std::uint8_t op, std::uint8_t a, std::uint8_t b, std::uint8_t c) {
    switch (op % 8) {
    case 0:
        r.push("SET", key(a), value(c));
        break;
    case 1:
        r.push("DEL", key(a));
        break;
    case 2:
        r.push("HSET", key(a), field(b), value(c));
        break;
    case 3:
        r.push("HDEL", key(a), field(b));
        break;
    case 4:
        r.push("RPUSH", key(a), value(c));
        break;
    case 5:
        r.push("SADD", key(a), value(c));
        break;
    case 6:
        r.push("ZADD", key(a), c % 5, value(b));
        break;
    default:
        r.push("APPEND", key(a), value(c));
        break;
    }
}

asio::awaitable<void> run(fixture& f, const std::uint8_t* data, std::size_t size) {
    akv::request::options through;
    through.cache = true;
    {
        akv::request flush;
        flush.push("FLUSHALL");
        co_await f.cached->exec(flush, akv::ignore);
    }
    for (std::size_t i = 0; i + 4 <= size && i < 4 * 64; i += 4) {
        const std::uint8_t op = data[i], a = data[i + 1], b = data[i + 2], c = data[i + 3];
        switch (op >> 6) {
        case 0:
        case 1: { // a read, through the cache and not, in one or two commands
            akv::request cached_req(through), plain_req;
            push_read(cached_req, op, a, b, c);
            push_read(plain_req, op, a, b, c);
            if (op & 0x20) {
                push_read(cached_req, op + 1, b, c, a);
                push_read(plain_req, op + 1, b, c, a);
            }
            akv::generic_response got, want;
            co_await f.cached->exec(cached_req, got);
            co_await f.plain->exec(plain_req, want);
            AKV_FUZZ_CHECK(got.size() == want.size());
            for (std::size_t r = 0; r < got.size(); ++r) {
                AKV_FUZZ_CHECK(got[r].has_value() == want[r].has_value());
                if (got[r].has_value())
                    AKV_FUZZ_CHECK(got[r].value() == want[r].value());
                else
                    AKV_FUZZ_CHECK(got[r].error() == want[r].error());
            }
            break;
        }
        case 2: { // this client's own write: read back at once
            akv::request w;
            push_write(w, op, a, b, c);
            co_await f.cached->exec(w, akv::ignore);
            break;
        }
        default: { // another client's write, then the reader's connection catches up
            akv::request w;
            if ((op & 0x3f) == 0x3f)
                w.push("FLUSHALL");
            else
                push_write(w, op, a, b, c);
            co_await f.other->exec(w, akv::ignore);
            akv::request ping;
            ping.push("PING");
            co_await f.cached->exec(ping, akv::ignore);
            break;
        }
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fixture& f = the_fixture();
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(f.io, run(f, data, size), [&](std::exception_ptr e) {
        failure = e;
        done = true;
    });
    while (!done)
        f.io.run_one();
    AKV_FUZZ_CHECK(!failure); // the server is local and healthy: nothing may throw
    return 0;
}
