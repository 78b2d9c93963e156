#include <akv/config.hpp>
#include <akv/error.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "support/errors.hpp"
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

using akv::test::contains;
using akv::test::error_of;

namespace {

using namespace std::chrono_literals;
using akv::config;
using akv::endpoint;
using hosts_t = std::vector<endpoint>;

// ---- URL ----

TEST(ConfigUrl, ReadsHostPortAndDb) {
    const config c = config::from_url("redis://cache.example:6380/3");
    EXPECT_EQ(c.hosts, (hosts_t{{"cache.example", 6380}}));
    EXPECT_EQ(c.db, 3);
    EXPECT_FALSE(c.use_tls);
    EXPECT_TRUE(c.unix_socket.empty());
}

TEST(ConfigUrl, DefaultsPortAndDb) {
    const config c = config::from_url("redis://cache.example");
    EXPECT_EQ(c.hosts, (hosts_t{{"cache.example", 6379}}));
    EXPECT_EQ(c.db, 0);
}

TEST(ConfigUrl, ReadsUserAndPassword) {
    const config c = config::from_url("redis://alice:s3cret@h:7000");
    EXPECT_EQ(c.username, "alice");
    EXPECT_EQ(c.password, "s3cret");
    EXPECT_EQ(c.hosts, (hosts_t{{"h", 7000}}));
}

TEST(ConfigUrl, PercentDecodesUserAndPassword) {
    const config c = config::from_url("redis://al%40ice:p%40ss%3Aw%2Frd@h");
    EXPECT_EQ(c.username, "al@ice");
    EXPECT_EQ(c.password, "p@ss:w/rd");
}

TEST(ConfigUrl, PasswordWithoutUserIsTheDefaultUser) {
    const config c = config::from_url("redis://:pw@h");
    EXPECT_EQ(c.username, "");
    EXPECT_EQ(c.password, "pw");
}

TEST(ConfigUrl, RedissTurnsOnTls) {
    const config c = config::from_url("rediss://h:6380");
    EXPECT_TRUE(c.use_tls);
    EXPECT_EQ(c.hosts, (hosts_t{{"h", 6380}}));
}

TEST(ConfigUrl, ReadsBracketedIpv6Host) {
    const config c = config::from_url("redis://[::1]:6380");
    EXPECT_EQ(c.hosts, (hosts_t{{"::1", 6380}}));
}

TEST(ConfigUrl, ReadsUnixSocketPathAndDbQuery) {
    const config c = config::from_url("unix:///var/run/redis.sock?db=2");
    EXPECT_EQ(c.unix_socket, "/var/run/redis.sock");
    EXPECT_EQ(c.db, 2);
    EXPECT_FALSE(c.use_tls);
}

TEST(ConfigUrl, QueryTakesTheKeysOfSet) {
    const config c = config::from_url(
        "rediss://h/1?client_name=app&connect_timeout_ms=250&request-timeout-ms=100"
        "&health_check_interval_ms=0&tls_verify=false&ca_file=%2Fetc%2Fca.pem&redis_conn_pool_size="
        "8");
    EXPECT_EQ(c.client_name, "app");
    EXPECT_EQ(c.connect_timeout, 250ms);
    EXPECT_EQ(c.request_timeout, 100ms);
    EXPECT_EQ(c.health_check_interval, 0ms);
    EXPECT_FALSE(c.tls.verify_peer);
    EXPECT_EQ(c.tls.ca_file, "/etc/ca.pem");
    EXPECT_EQ(c.pool_size, 8u);
    EXPECT_EQ(c.db, 1);
}

TEST(ConfigUrl, PortOutOfRangeNamesThePort) {
    const auto e = error_of([] { config::from_url("redis://h:99999"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "url \"redis://h:99999\": port: 99999 out of range"));
}

TEST(ConfigUrl, PortThatIsNoNumberNamesThePort) {
    const auto e = error_of([] { config::from_url("redis://h:63x9/0"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "port: expected a port number, got \"63x9\""));
}

TEST(ConfigUrl, UnknownSchemeNamesTheScheme) {
    const auto e = error_of([] { config::from_url("http://h:6379"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "unknown scheme \"http\""));
}

TEST(ConfigUrl, DbThatIsNoNumberNamesTheDb) {
    const auto e = error_of([] { config::from_url("redis://h/abc"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "db: expected an integer, got \"abc\""));
}

TEST(ConfigUrl, UnknownQueryKeyNamesTheKey) {
    const auto e = error_of([] { config::from_url("redis://h/?colour=red"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "unknown query key \"colour\""));
}

TEST(ConfigUrl, MissingHostIsAnError) {
    const auto e = error_of([] { config::from_url("redis:///2"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "no host"));
}

TEST(ConfigUrl, ErrorsNeverShowThePassword) {
    for (const char* url : {
             "redis://u:hunter2@h:99999",
             "http://u:hunter2@h",
             "redis://u:hunter2@h/abc",
             "redis://u:hunter2@h/?colour=red",
             "redis://:hunter2@h:63x9",
             "redis://u:hunt@er2@h", // unencoded '@'
             "redis://u:hunt/er2@h", // unencoded '/'
             "redis://u:hunt?er2@h", // unencoded '?'
             "redis://u:hunt#er2@h", // unencoded '#'
             "redis://h/?password=hunter2&db=x",
             "redis://h/?sentinel-password=hunter2&db=x",
             "redis://u:hunter2@h/?url=redis%3A%2F%2Fh%3A0",
             "not a url :hunter2@",
         }) {
        const auto e = error_of([&] { config::from_url(url); });
        EXPECT_EQ(e.code(), akv::error::invalid_url) << url;
        EXPECT_FALSE(contains(e.what(), "hunt")) << url;
        EXPECT_FALSE(contains(e.what(), "er2")) << url;
    }
}

// ---- JSON ----

// TFRA's README example (redis_impl/README.md), as a real JSON file: no comments, real false.
constexpr std::string_view tfra_example = R"({
  "redis_connection_mode": 1,
  "redis_master_name": "master",
  "redis_host_ip": ["10.0.0.1", "10.0.0.2"],
  "redis_host_port": [26379, 26380],
  "redis_user": "default",
  "redis_password": "pw",
  "redis_db": 3,
  "redis_connect_keep_alive": false,
  "redis_connect_timeout": 1500,
  "redis_socket_timeout": 900,
  "redis_conn_pool_size": 20,
  "redis_wait_timeout": 100000000,
  "redis_connection_lifetime": 100,
  "redis_sentinel_user": "sentinel-user",
  "redis_sentinel_password": "sentinel-pw",
  "redis_sentinel_connect_timeout": 1100,
  "redis_sentinel_socket_timeout": 1200,
  "storage_slice": 2,
  "keys_sending_size": 512,
  "using_md5_prefix_name": false,
  "model_tag_old": "v1",
  "model_tag_new": "v2",
  "expire_model_tag_in_seconds": 86400,
  "table_store_mode": 2,
  "model_lib_abs_dir": "/models/",
  "using_model_lib": false
})";

TEST(ConfigJson, TfraExampleMapsOntoFields) {
    const config c = config::from_json(tfra_example);
    EXPECT_EQ(c.topology, config::mode::sentinel);
    EXPECT_EQ(c.master_name, "master");
    EXPECT_EQ(c.hosts, (hosts_t{{"10.0.0.1", 26379}, {"10.0.0.2", 26380}}));
    EXPECT_EQ(c.username, "default");
    EXPECT_EQ(c.password, "pw");
    EXPECT_EQ(c.db, 3);
    EXPECT_FALSE(c.keep_alive);
    EXPECT_EQ(c.connect_timeout, 1500ms);
    EXPECT_EQ(c.request_timeout, 900ms);
    EXPECT_EQ(c.pool_size, 20u);
    EXPECT_EQ(c.pool_wait_timeout, 100000000ms);
    EXPECT_EQ(c.connection_lifetime, 100min);
    EXPECT_EQ(c.sentinel_username, "sentinel-user");
    EXPECT_EQ(c.sentinel_password, "sentinel-pw");
    EXPECT_EQ(c.sentinel_connect_timeout, 1100ms);
    EXPECT_EQ(c.sentinel_socket_timeout, 1200ms);
    EXPECT_EQ(c.tfra.storage_slice, 2);
    EXPECT_EQ(c.tfra.keys_sending_size, 512u);
    EXPECT_FALSE(c.tfra.using_md5_prefix_name);
    EXPECT_EQ(c.tfra.model_tag_old, "v1");
    EXPECT_EQ(c.tfra.model_tag_new, "v2");
    EXPECT_EQ(c.tfra.expire_model_tag_in_seconds, 86400);
    EXPECT_EQ(c.tfra.table_store_mode, 2);
    EXPECT_EQ(c.tfra.model_lib_abs_dir, "/models/");
    EXPECT_FALSE(c.tfra.using_model_lib);
}

TEST(ConfigJson, ZipsHostIpsWithPortsWhateverTheKeyOrder) {
    const config c = config::from_json(
        R"({"redis_host_port": [7000, 7001, 7002], "redis_host_ip": ["a", "b", "c"]})");
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 7000}, {"b", 7001}, {"c", 7002}}));
}

TEST(ConfigJson, OnePortAppliesToEveryHost) {
    const config c =
        config::from_json(R"({"redis_host_ip": ["a", "b"], "redis_host_port": [7000]})");
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 7000}, {"b", 7000}}));
}

TEST(ConfigJson, HostIpsWithoutPortsUseTheDefaultPort) {
    const config c = config::from_json(R"({"redis_host_ip": ["a", "b"]})");
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 6379}, {"b", 6379}}));
}

TEST(ConfigJson, PortCountThatMatchesNoHostCountIsAnError) {
    const auto e = error_of([] {
        config::from_json(R"({"redis_host_ip": ["a", "b", "c"], "redis_host_port": [1, 2]})");
    });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), "config: \"redis_host_port\": 2 ports for 3 hosts"));
}

TEST(ConfigJson, BadArrayElementNamesKeyAndIndex) {
    const auto e = error_of([] {
        config::from_json(R"({"redis_host_ip": ["a", "b"], "redis_host_port": [6379, "63x9"]})");
    });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(
        contains(e.what(), R"(config: "redis_host_port"[1]: expected a port number, got "63x9")"));
}

TEST(ConfigJson, UnknownKeyIsNamed) {
    const auto e = error_of([] { config::from_json(R"({"redis_hots_ip": ["a"]})"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), R"(config: unknown key "redis_hots_ip")"));
}

TEST(ConfigJson, BooleansAcceptZeroAndOne) {
    const config c = config::from_json(
        R"({"redis_connect_keep_alive": 1, "using_md5_prefix_name": 1, "tls_verify": 0})");
    EXPECT_TRUE(c.keep_alive);
    EXPECT_TRUE(c.tfra.using_md5_prefix_name);
    EXPECT_FALSE(c.tls.verify_peer);
}

TEST(ConfigJson, BooleanRejectsOtherNumbers) {
    const auto e = error_of([] { config::from_json(R"({"keep_alive": 2})"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), R"(config: "keep_alive": expected true or false, got 2)"));
}

TEST(ConfigJson, NativeKeysMatchFieldNames) {
    const config c = config::from_json(R"({
        "topology": "cluster",
        "hosts": ["a:7000", {"host": "b", "port": 7001}, "[::1]:7002", "c"],
        "use_tls": true, "tls_verify": false, "ca_file": "/ca.pem", "tls_server_name": "redis.local",
        "username": "u", "password": "p", "db": 0, "client_name": "app",
        "connect_timeout_ms": 10, "request_timeout_ms": 20, "health_check_interval_ms": 30,
        "reconnect_wait_min_ms": 40, "reconnect_wait_max_ms": 50, "keep_alive": true,
        "pool_size": 2, "pool_wait_timeout_ms": 60, "connection_lifetime_minutes": 5,
        "resp_max_depth": 8, "push_queue_capacity": 16
    })");
    EXPECT_EQ(c.topology, config::mode::cluster);
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 7000}, {"b", 7001}, {"::1", 7002}, {"c", 6379}}));
    EXPECT_TRUE(c.use_tls);
    EXPECT_FALSE(c.tls.verify_peer);
    EXPECT_EQ(c.tls.ca_file, "/ca.pem");
    EXPECT_EQ(c.tls.server_name, "redis.local");
    EXPECT_EQ(c.username, "u");
    EXPECT_EQ(c.password, "p");
    EXPECT_EQ(c.client_name, "app");
    EXPECT_EQ(c.connect_timeout, 10ms);
    EXPECT_EQ(c.request_timeout, 20ms);
    EXPECT_EQ(c.health_check_interval, 30ms);
    EXPECT_EQ(c.reconnect_wait_min, 40ms);
    EXPECT_EQ(c.reconnect_wait_max, 50ms);
    EXPECT_TRUE(c.keep_alive);
    EXPECT_EQ(c.pool_size, 2u);
    EXPECT_EQ(c.pool_wait_timeout, 60ms);
    EXPECT_EQ(c.connection_lifetime, 5min);
    EXPECT_EQ(c.resp_limits.max_depth, 8u);
    EXPECT_EQ(c.push_queue_capacity, 16u);
}

TEST(ConfigJson, RangesAreChecked) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"redis_host_port": [0]})",
         R"("redis_host_port"[0]: 0 out of range, must be in 1..65535)"},
        {R"({"hosts": ["a:65536"]})", R"("hosts"[0]: 65536 out of range)"},
        {R"({"redis_db": -1})", R"("redis_db": -1 out of range, must be >= 0)"},
        {R"({"redis_conn_pool_size": 0})", R"("redis_conn_pool_size": 0 out of range)"},
        {R"({"table_store_mode": 3})", R"("table_store_mode": 3 out of range, must be in 0..2)"},
        {R"({"redis_connection_mode": 3})", R"("redis_connection_mode": 3 out of range)"},
        {R"({"storage_slice": 0})", R"("storage_slice": 0 out of range)"},
        {R"({"redis_connect_timeout": -5})", R"("redis_connect_timeout": -5 out of range)"},
        {R"({"connect_timeout_ms": 1.5})",
         R"("connect_timeout_ms": expected a number of milliseconds)"},
        {R"({"db": 99999999999999999999})", R"("db": 1E20 out of range)"},
    };
    for (const auto& [json_text, message] : cases) {
        const std::string_view json = json_text; // clang 14 cannot capture a structured binding
        const auto e = error_of([&] { config::from_json(json); });
        EXPECT_EQ(e.code(), akv::error::invalid_config) << json;
        EXPECT_TRUE(contains(e.what(), std::string("config: ") + message)) << json;
    }
}

TEST(ConfigJson, SyntaxErrorGivesLineAndColumn) {
    const auto e = error_of([] { config::from_json("{\n  \"db\": 1,\n  \"pool_size\": x\n}"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), "config: line 3, column 16: syntax error"));
}

TEST(ConfigJson, TopLevelMustBeAnObject) {
    const auto e = error_of([] { config::from_json("[1, 2]"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), "expected a JSON object, got array"));
}

TEST(ConfigJson, UrlKeyAppliesBeforeTheOthers) {
    const config c = config::from_json(R"({"db": 5, "url": "rediss://u:p@h:7000/2"})");
    EXPECT_EQ(c.db, 5);
    EXPECT_EQ(c.hosts, (hosts_t{{"h", 7000}}));
    EXPECT_TRUE(c.use_tls);
    EXPECT_EQ(c.password, "p");
}

TEST(ConfigJson, SameSettingUnderTwoNamesIsAnError) {
    const auto e = error_of([] { config::from_json(R"({"db": 1, "redis_db": 2})"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), R"("db" and "redis_db")"));
}

TEST(ConfigJson, PasswordOfTheWrongTypeIsNotShown) {
    const auto e = error_of([] { config::from_json(R"({"redis_password": 8675309})"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), R"("redis_password": expected a string)"));
    EXPECT_FALSE(contains(e.what(), "8675309"));
}

TEST(ConfigJson, ApplyJsonMergesIntoTheConfig) {
    config c = config::from_url("redis://h:7000/4");
    c.apply_json(boost::json::parse(R"({"client_name": "app"})").as_object());
    EXPECT_EQ(c.client_name, "app");
    EXPECT_EQ(c.hosts, (hosts_t{{"h", 7000}}));
    EXPECT_EQ(c.db, 4);
}

TEST(ConfigJson, ApplyJsonLeavesTheConfigUnchangedOnError) {
    config c;
    const auto e = error_of([&] {
        c.apply_json(boost::json::parse(R"({"client_name": "app", "db": "x"})").as_object());
    });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_EQ(c.client_name, "");
}

// ---- JSON files ----

TEST(ConfigFile, MissingFileNamesThePath) {
    const std::string path = "/nonexistent/akv-config-test.json";
    const auto e = error_of([&] { config::from_json_file(path); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), path));
}

TEST(ConfigFile, ReadsTheFileAndNamesItInErrors) {
    const auto path = (std::filesystem::temp_directory_path() /
                       ("akv-config-test-" + std::to_string(::getpid()) + ".json"))
                          .string();
    std::ofstream(path) << R"({"redis_host_ip": ["a"], "redis_host_port": [7000]})";
    EXPECT_EQ(config::from_json_file(path).hosts, (hosts_t{{"a", 7000}}));

    std::ofstream(path) << R"({"redis_db": "x"})";
    const auto e = error_of([&] { config::from_json_file(path); });
    std::filesystem::remove(path);
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), "config file \"" + path + "\": \"redis_db\""));
}

// ---- set() from command-line flags ----

TEST(ConfigSet, ParsesFlagText) {
    config c;
    c.set("connect-timeout-ms", "100");
    c.set("hosts", "a:7000, b, [::1]:7002");
    c.set("keep_alive", "yes");
    c.set("tls-verify", "False");
    c.set("topology", "sentinel");
    c.set("redis_db", "2");
    EXPECT_EQ(c.connect_timeout, 100ms);
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 7000}, {"b", 6379}, {"::1", 7002}}));
    EXPECT_TRUE(c.keep_alive);
    EXPECT_FALSE(c.tls.verify_peer);
    EXPECT_EQ(c.topology, config::mode::sentinel);
    EXPECT_EQ(c.db, 2);
}

TEST(ConfigSet, TfraHostListsAreCommaSeparated) {
    config c;
    c.set("redis_host_ip", "a,b");
    c.set("redis_host_port", "7000,7001");
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 7000}, {"b", 7001}}));
}

TEST(ConfigSet, BadValueNamesTheKey) {
    config c;
    const auto e = error_of([&] { c.set("pool-size", "many"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), R"(config: "pool_size": expected an integer, got "many")"));
}

TEST(ConfigSet, BadListElementNamesTheIndex) {
    config c;
    const auto e = error_of([&] { c.set("hosts", "a:1,b:x"); });
    EXPECT_TRUE(contains(e.what(), R"(config: "hosts"[1]: expected a port number, got "x")"));
    EXPECT_EQ(c.hosts, (hosts_t{{"127.0.0.1", 6379}})); // unchanged
}

TEST(ConfigSet, UnknownKeyIsNamed) {
    config c;
    const auto e = error_of([&] { c.set("conect-timeout-ms", "1"); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), R"(config: unknown key "conect_timeout_ms")"));
}

// ---- redacted_url ----

TEST(ConfigRedactedUrl, HidesThePassword) {
    const config c = config::from_url("redis://alice:hunter2@h:6380/2");
    EXPECT_EQ(c.redacted_url(), "redis://alice:***@h:6380/2");
}

TEST(ConfigRedactedUrl, ShowsTlsIpv6AndEveryHost) {
    config c = config::from_url("rediss://:hunter2@[::1]:6380");
    EXPECT_EQ(c.redacted_url(), "rediss://:***@[::1]:6380");
    c.set("hosts", "a:7000,b:7001");
    c.set("topology", "cluster");
    EXPECT_EQ(c.redacted_url(), "rediss://:***@a:7000,b:7001?topology=cluster");
}

TEST(ConfigRedactedUrl, ShowsTheUnixSocket) {
    const config c = config::from_url("unix://al%40ice:hunter2@/tmp/redis.sock?db=3");
    EXPECT_EQ(c.redacted_url(), "unix://al%40ice:***@/tmp/redis.sock?db=3");
}

} // namespace
