// Compiles and links against an installed async_kv through its public headers only.
#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/error.hpp>
#include <akv/request.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

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

    // akv::testing is exported too: its fixture links, and a server that cannot start says so.
    try {
        akv::testing::embedded_server server({.executable = "akv-consumer-no-such-redis-server"});
        std::fprintf(stderr, "consumer: started a redis-server that does not exist\n");
        return 1;
    } catch (const boost::system::system_error& e) {
        if (e.code() != akv::error::server_start_failed) {
            std::fprintf(stderr, "consumer: expected server_start_failed, got %s\n", e.what());
            return 1;
        }
    }

    std::puts("consumer ok");
    return 0;
}
