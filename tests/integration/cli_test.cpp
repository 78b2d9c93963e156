// The akv binary: output and exit status against a real server.
#include <akv/embedded_server.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

struct outcome {
    std::string out; // stdout and stderr
    int status = -1;
};

outcome run(const std::string& args) {
    const std::string cmd = std::string(AKV_CLI_PATH) + " " + args + " 2>&1";
    outcome o;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return o;
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), buf.size(), pipe))
        o.out += buf.data();
    const int raw = pclose(pipe);
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return o;
}

} // namespace

TEST(Cli, PrintsRepliesLikeRedisCli) {
    akv::embedded_server server;
    const std::string redis = "--redis " + server.url() + " ";
    auto set = run(redis + "SET greeting hello");
    EXPECT_EQ(set.status, 0);
    EXPECT_EQ(set.out, "OK\n");
    EXPECT_EQ(run(redis + "GET greeting").out, "\"hello\"\n");
    EXPECT_EQ(run(redis + "INCR n").out, "(integer) 1\n");
    EXPECT_EQ(run(redis + "GET missing").out, "(nil)\n");
    run(redis + "RPUSH l a b");
    EXPECT_EQ(run(redis + "LRANGE l 0 -1").out, "1) \"a\"\n2) \"b\"\n");
    EXPECT_EQ(run("--raw " + redis + "LRANGE l 0 -1").out, "a\nb\n");
}

TEST(Cli, ErrorReplyExitsOneWithTheServersText) {
    akv::embedded_server server;
    auto r = run("--redis " + server.url() + " LPUSH");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("(error) ERR wrong number of arguments"), std::string::npos) << r.out;
}

TEST(Cli, UnreachableServerExitsTwoNamingIt) {
    auto r = run("--redis redis://127.0.0.1:1 PING");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.out.find("127.0.0.1:1"), std::string::npos) << r.out;
}

TEST(Cli, BadUrlAndMissingCommandAreUsageErrors) {
    auto bad = run("--redis http://x PING");
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.out.find("http"), std::string::npos) << bad.out;
    auto none = run("--redis redis://127.0.0.1:1");
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.out.find("no command given"), std::string::npos) << none.out;
}

TEST(Cli, PasswordFromUrlAndConfigFlags) {
    akv::embedded_server server({.password = "pw"});
    auto r = run("--redis " + server.url() + " --db 2 CLIENT INFO");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(" db=2 "), std::string::npos) << r.out;
}

TEST(Cli, HelpExitsZero) {
    auto r = run("--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("usage: akv"), std::string::npos);
}
