// Compiles and links against an installed async_kv through its public headers only.
#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/request.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>

int main() {
    akv::request req;
    req.push("SET", "k", 1);
    if (req.size() != 1 || req.payload() != "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n") {
        std::fprintf(stderr, "consumer: unexpected request encoding\n");
        return 1;
    }

    const akv::config cfg = akv::config::from_url("redis://127.0.0.1:6380/2");
    if (cfg.db != 2) {
        std::fprintf(stderr, "consumer: expected db 2 from the URL, got %d\n", cfg.db);
        return 1;
    }

    boost::asio::io_context ioc;
    akv::connection conn{ioc.get_executor(), cfg};

    std::puts("consumer ok");
    return 0;
}
