#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_server.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace {

// A blocking RESP2 client, just enough to send a command and read one simple reply. Every
// receive has a deadline, so a server that does not answer fails the test instead of hanging it.
class test_client {
public:
    static test_client tcp(std::uint16_t port) {
        test_client client(AF_INET);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        client.connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        return client;
    }

    static test_client unix_socket(const std::string& path) {
        test_client client(AF_UNIX);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        client.connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        return client;
    }

    test_client(test_client&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)) {}
    test_client& operator=(test_client&&) = delete;
    ~test_client() {
        if (fd_ >= 0) ::close(fd_);
    }

    // The reply: "+OK", "-ERR ...", ":1" as sent; a bulk string as its contents, nil as "(nil)".
    std::string call(std::initializer_list<std::string_view> args) {
        std::string request = "*" + std::to_string(args.size()) + "\r\n";
        for (auto arg : args)
            request += "$" + std::to_string(arg.size()) + "\r\n" + std::string(arg) + "\r\n";
        if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()))
            throw std::runtime_error(std::string("send: ") + std::strerror(errno));
        const std::string header = line();
        if (header.empty() || header[0] != '$') return header;
        const long length = std::stol(header.substr(1));
        if (length < 0) return "(nil)";
        while (buffer_.size() < static_cast<std::size_t>(length) + 2)
            fill();
        std::string value = buffer_.substr(0, length);
        buffer_.erase(0, length + 2);
        return value;
    }

private:
    explicit test_client(int family)
        : fd_(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        const timeval limit{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    }

    void connect(const sockaddr* addr, socklen_t length) {
        if (::connect(fd_, addr, length) != 0)
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }

    std::string line() {
        for (;;) {
            if (const auto end = buffer_.find("\r\n"); end != std::string::npos) {
                std::string result = buffer_.substr(0, end);
                buffer_.erase(0, end + 2);
                return result;
            }
            fill();
        }
    }

    void fill() {
        char chunk[4096];
        const ssize_t received = ::recv(fd_, chunk, sizeof chunk, 0);
        if (received <= 0)
            throw std::runtime_error(received == 0 ? std::string("connection closed")
                                                   : std::string("recv: ") + std::strerror(errno));
        buffer_.append(chunk, static_cast<std::size_t>(received));
    }

    int fd_;
    std::string buffer_;
};

bool process_exists(int pid) {
    return ::kill(pid, 0) == 0 || errno != ESRCH;
}

TEST(EmbeddedServer, StartsAndAnswersPing) {
    akv::testing::embedded_server server;
    EXPECT_TRUE(server.running());
    EXPECT_GT(server.pid(), 0);
    EXPECT_NE(server.port(), 0);
    EXPECT_EQ(test_client::tcp(server.port()).call({"PING"}), "+PONG");
}

TEST(EmbeddedServer, TwoServersGetDifferentPorts) {
    akv::testing::embedded_server first;
    akv::testing::embedded_server second;
    EXPECT_NE(first.port(), second.port());
    EXPECT_NE(first.data_dir(), second.data_dir());
    EXPECT_EQ(test_client::tcp(first.port()).call({"SET", "owner", "first"}), "+OK");
    EXPECT_EQ(test_client::tcp(second.port()).call({"GET", "owner"}), "(nil)");
}

TEST(EmbeddedServer, StartAfterKillComesBackOnTheSamePort) {
    akv::testing::embedded_server server;
    const auto port = server.port();
    const int old_pid = server.pid();
    server.kill();
    EXPECT_FALSE(server.running());
    EXPECT_EQ(server.pid(), -1);
    EXPECT_FALSE(process_exists(old_pid));
    EXPECT_THROW(test_client::tcp(port), std::runtime_error);

    server.start();
    EXPECT_TRUE(server.running());
    EXPECT_EQ(server.port(), port);
    EXPECT_EQ(test_client::tcp(port).call({"PING"}), "+PONG");
}

TEST(EmbeddedServer, AppendOnlyKeepsAnAcknowledgedWriteAcrossKill) {
    akv::testing::embedded_server server({.append_only = true});
    ASSERT_EQ(test_client::tcp(server.port()).call({"SET", "survivor", "42"}), "+OK");
    server.kill();
    server.start();
    EXPECT_EQ(test_client::tcp(server.port()).call({"GET", "survivor"}), "42");
}

TEST(EmbeddedServer, RestartKeepsPortAndAnswers) {
    akv::testing::embedded_server server;
    const auto port = server.port();
    const int old_pid = server.pid();
    server.restart();
    EXPECT_NE(server.pid(), old_pid);
    EXPECT_EQ(server.port(), port);
    EXPECT_EQ(test_client::tcp(port).call({"PING"}), "+PONG");
}

TEST(EmbeddedServer, PasswordIsRequired) {
    akv::testing::embedded_server server({.password = "s3cret"});
    auto client = test_client::tcp(server.port());
    EXPECT_EQ(client.call({"GET", "k"}).rfind("-NOAUTH", 0), 0u);
    EXPECT_EQ(client.call({"AUTH", "s3cret"}), "+OK");
    EXPECT_EQ(client.call({"GET", "k"}), "(nil)");
}

TEST(EmbeddedServer, UrlAndConfigPointAtIt) {
    akv::testing::embedded_server server({.password = "p@ss"});
    const std::string port = std::to_string(server.port());
    EXPECT_EQ(server.host(), "127.0.0.1");
    EXPECT_EQ(server.url(), "redis://:p%40ss@127.0.0.1:" + port);

    const akv::config config = server.config();
    ASSERT_EQ(config.hosts.size(), 1u);
    EXPECT_EQ(config.hosts[0], (akv::endpoint{"127.0.0.1", server.port()}));
    EXPECT_EQ(config.password, "p@ss");
}

TEST(EmbeddedServer, UnixSocketAnswersPing) {
    akv::testing::embedded_server server;
    ASSERT_EQ(server.unix_socket_path(), server.data_dir() + "/redis.sock");
    EXPECT_EQ(test_client::unix_socket(server.unix_socket_path()).call({"PING"}), "+PONG");
}

TEST(EmbeddedServer, UnixSocketCanBeTurnedOff) {
    akv::testing::embedded_server server({.unix_socket = false});
    EXPECT_EQ(server.unix_socket_path(), "");
    EXPECT_FALSE(std::filesystem::exists(server.data_dir() + "/redis.sock"));
}

TEST(EmbeddedServer, BadExecutableThrowsNamingIt) {
    try {
        akv::testing::embedded_server server({.executable = "akv-no-such-redis-server"});
        FAIL() << "started a server that does not exist";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::server_start_failed);
        EXPECT_NE(std::string(e.what()).find("akv-no-such-redis-server"), std::string::npos)
            << e.what();
    }
}

TEST(EmbeddedServer, BadExtraArgThrowsWithTheLogTail) {
    try {
        akv::testing::embedded_server server({.extra_args = {"--no-such-option", "1"}});
        FAIL() << "started with an unknown option";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::server_start_failed);
        const std::string message = e.what();
        // redis's own complaint, which it writes to stderr, that is to the log file
        EXPECT_NE(message.find("Bad directive"), std::string::npos) << message;
        EXPECT_NE(message.find("no-such-option"), std::string::npos) << message;
    }
}

TEST(EmbeddedServer, TakenPortThrowsSayingSo) {
    akv::testing::embedded_server holder;
    try {
        akv::testing::embedded_server server({.port = holder.port()});
        FAIL() << "started on a port another server listens on";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::server_start_failed);
        const std::string message = e.what();
        EXPECT_NE(message.find("port " + std::to_string(holder.port()) + " is in use"),
                  std::string::npos)
            << message;
        EXPECT_NE(message.find("Address already in use"), std::string::npos) << message;
    }
    EXPECT_EQ(test_client::tcp(holder.port()).call({"PING"}), "+PONG");
}

TEST(EmbeddedServer, NoAnswerWithinStartTimeoutThrowsAndLeavesNoChild) {
    try {
        akv::testing::embedded_server server({.start_timeout = std::chrono::milliseconds(1)});
        FAIL() << "answered PING within 1 ms";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::server_start_failed);
        EXPECT_NE(std::string(e.what()).find("did not answer PING"), std::string::npos) << e.what();
    }
    // No child at all, running or unreaped.
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST(EmbeddedServer, DestructorRemovesTempDirAndEndsProcess) {
    std::string dir;
    int pid = -1;
    {
        akv::testing::embedded_server server;
        dir = server.data_dir();
        pid = server.pid();
        EXPECT_EQ(std::filesystem::path(dir).filename().string().rfind("akv-redis-", 0), 0u);
        EXPECT_TRUE(std::filesystem::exists(dir + "/redis.log"));
        EXPECT_TRUE(process_exists(pid));
    }
    EXPECT_FALSE(std::filesystem::exists(dir));
    EXPECT_FALSE(process_exists(pid));
}

TEST(EmbeddedServer, GivenDataDirIsKept) {
    std::string dir = (std::filesystem::temp_directory_path() / "akv-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    {
        akv::testing::embedded_server server({.data_dir = dir});
        EXPECT_EQ(server.data_dir(), dir);
    }
    EXPECT_TRUE(std::filesystem::exists(dir + "/redis.log"));
    std::filesystem::remove_all(dir);
}

TEST(EmbeddedServer, StopAndKillAreIdempotent) {
    akv::testing::embedded_server server;
    const int pid = server.pid();
    server.stop();
    server.stop();
    server.kill();
    EXPECT_FALSE(server.running());
    EXPECT_EQ(server.pid(), -1);
    EXPECT_FALSE(process_exists(pid));
}

TEST(EmbeddedServer, LogTailGivesTheLastLines) {
    akv::testing::embedded_server server;
    const std::string tail = server.log_tail(1);
    EXPECT_EQ(tail.find('\n'), std::string::npos) << tail;
    EXPECT_NE(server.log_tail(50).find("Ready to accept connections"), std::string::npos);
}

} // namespace
