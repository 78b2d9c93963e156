#include <akv/config.hpp>
#include <akv/error.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "support/errors.hpp"
#include <algorithm>
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

// ---- URLs with several hosts, cluster and sentinel schemes ----

TEST(ConfigUrl, ReadsEveryHostOfTheList) {
    const config c = config::from_url("redis://u:pw@h1:6379,h2:6380,[::1]:6381,10.0.0.4/2");
    EXPECT_EQ(c.hosts, (hosts_t{{"h1", 6379}, {"h2", 6380}, {"::1", 6381}, {"10.0.0.4", 6379}}));
    EXPECT_EQ(c.username, "u");
    EXPECT_EQ(c.password, "pw");
    EXPECT_EQ(c.db, 2);
    EXPECT_EQ(c.topology, config::mode::standalone);
    EXPECT_FALSE(c.use_tls);
}

TEST(ConfigUrl, HostListWithTopologyQuery) {
    const config c = config::from_url("rediss://h1:7000,h2:7001?topology=cluster&tls_verify=no");
    EXPECT_EQ(c.topology, config::mode::cluster);
    EXPECT_EQ(c.hosts, (hosts_t{{"h1", 7000}, {"h2", 7001}}));
    EXPECT_TRUE(c.use_tls);
    EXPECT_FALSE(c.tls.verify_peer);
}

TEST(ConfigUrl, ClusterSchemeSetsTheTopology) {
    const config c = config::from_url("redis+cluster://:pw@a:7000,b:7001,c?cluster_max_redirects=5");
    EXPECT_EQ(c.topology, config::mode::cluster);
    EXPECT_EQ(c.hosts, (hosts_t{{"a", 7000}, {"b", 7001}, {"c", 6379}}));
    EXPECT_EQ(c.password, "pw");
    EXPECT_EQ(c.cluster_max_redirects, 5u);
    EXPECT_FALSE(c.use_tls);

    const config tls = config::from_url("rediss+cluster://a:7000");
    EXPECT_EQ(tls.topology, config::mode::cluster);
    EXPECT_TRUE(tls.use_tls);
}

TEST(ConfigUrl, SchemesAreCaseInsensitive) {
    const config c = config::from_url("REDISS+Cluster://a:7000");
    EXPECT_EQ(c.topology, config::mode::cluster);
    EXPECT_TRUE(c.use_tls);
}

TEST(ConfigUrl, SentinelSchemeReadsSentinelsMasterAndDb) {
    const config c = config::from_url(
        "redis+sentinel://u:pw@s1:26379,s2:26380,[::1]:26381/mymaster/3"
        "?sentinel_username=su&sentinel_password=spw&read_from_replicas=yes");
    EXPECT_EQ(c.topology, config::mode::sentinel);
    EXPECT_EQ(c.hosts, (hosts_t{{"s1", 26379}, {"s2", 26380}, {"::1", 26381}}));
    EXPECT_EQ(c.master_name, "mymaster");
    EXPECT_EQ(c.db, 3);
    EXPECT_EQ(c.username, "u");
    EXPECT_EQ(c.password, "pw");
    EXPECT_EQ(c.sentinel_username, "su");
    EXPECT_EQ(c.sentinel_password, "spw");
    EXPECT_TRUE(c.read_from_replicas);
    EXPECT_FALSE(c.use_tls);
}

TEST(ConfigUrl, SentinelPathVariants) {
    {
        const config c = config::from_url("rediss+sentinel://s1/mymaster");
        EXPECT_TRUE(c.use_tls);
        EXPECT_EQ(c.master_name, "mymaster");
        EXPECT_EQ(c.db, 0);
        EXPECT_EQ(c.hosts, (hosts_t{{"s1", 6379}}));
    }
    {
        const config c = config::from_url("redis+sentinel://s1:26379/my%2Fmaster%20x/");
        EXPECT_EQ(c.master_name, "my/master x");
    }
    {
        // The master name may come from the query instead, as redacted_url() writes it.
        const config c = config::from_url("redis+sentinel://s1:26379?master_name=m");
        EXPECT_EQ(c.master_name, "m");
    }
}

TEST(ConfigUrl, SentinelUrlWithoutMasterNameIsAnError) {
    for (const char* url : {"redis+sentinel://s1:26379,s2:26379", "redis+sentinel://s1/",
                            "redis+sentinel://s1//0", "rediss+sentinel://s1?db=1"}) {
        const auto e = error_of([&] { config::from_url(url); });
        EXPECT_EQ(e.code(), akv::error::invalid_url) << url;
        EXPECT_TRUE(contains(e.what(), "no master name: expected ")) << url;
        EXPECT_TRUE(contains(e.what(), "/master_name[/db]")) << url;
    }
}

TEST(ConfigUrl, LettuceStyleMasterNameInTheFragmentGetsAHint) {
    const auto e = error_of([] { config::from_url("redis+sentinel://s1,s2/0#mymaster"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), "unexpected fragment: the master name goes in the path, "
                                   "redis+sentinel://host:26379/master_name[/db]"));
}

TEST(ConfigUrl, SentinelPathWithTooManySegmentsIsAnError) {
    const auto e = error_of([] { config::from_url("redis+sentinel://s1/m/0/x"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(e.what(), R"(path: expected /master_name[/db], got "/m/0/x")"));
}

TEST(ConfigUrl, SentinelDbThatIsNoNumberNamesTheDb) {
    const auto e = error_of([] { config::from_url("redis+sentinel://s1/m/x"); });
    EXPECT_TRUE(contains(e.what(), R"(db: expected an integer, got "x")"));
}

TEST(ConfigUrl, TopologyQueryThatContradictsTheSchemeIsAnError) {
    const auto e = error_of([] { config::from_url("redis+cluster://a:7000?topology=sentinel"); });
    EXPECT_EQ(e.code(), akv::error::invalid_url);
    EXPECT_TRUE(
        contains(e.what(), R"(query topology "sentinel" contradicts scheme "redis+cluster")"));
    // Agreeing is fine.
    EXPECT_EQ(config::from_url("redis+cluster://a?topology=0").topology, config::mode::cluster);
}

TEST(ConfigUrl, PasswordMayHoldACommaEncodedOrNot) {
    const config encoded = config::from_url("redis://u:p%2Cw%40d@h1:1,h2:2");
    EXPECT_EQ(encoded.password, "p,w@d");
    EXPECT_EQ(encoded.hosts, (hosts_t{{"h1", 1}, {"h2", 2}}));
    // The host list begins after the '@', so a bare ',' in the password splits nothing.
    const config bare = config::from_url("redis://u:p,w@h1:1,h2:2");
    EXPECT_EQ(bare.password, "p,w");
    EXPECT_EQ(bare.hosts, (hosts_t{{"h1", 1}, {"h2", 2}}));
}

TEST(ConfigUrl, PercentDecodesHostNames) {
    const config c = config::from_url("redis://my%2Dhost:1,other");
    EXPECT_EQ(c.hosts, (hosts_t{{"my-host", 1}, {"other", 6379}}));
}

TEST(ConfigUrl, BadHostInTheListNamesItsPlace) {
    const std::pair<const char*, const char*> cases[] = {
        {"redis://h1:6379,:7", R"(url "redis://h1:6379,:7": host 2: no host)"},
        {"redis://h1,,h3", "host 2: no host"},
        {"redis://h1,", "host 2: no host"},
        {"redis://,h2", "host 1: no host"},
        {"redis://h1:6379,h2:63x9/0", R"(host 2: port: expected a port number, got "63x9")"},
        {"redis://h1,h2:0", "host 2: port: 0 out of range, must be in 1..65535"},
        {"redis://h1,h2:99999", "host 2: port: 99999 out of range"},
        {"redis+cluster://a,[::1", R"(host 2: no ']' after the IPv6 address in "[::1")"},
        {"redis://a,[::1]x", R"(host 2: expected ":port" after "[::1]", got "x")"},
        {"redis://a,::1", "host 2: expected host:port, got \"::1\" (an IPv6 address goes in "
                          "brackets: [::1]:6379)"},
        {"redis://a,[]:1", "host 2: no host"},
        {"redis://a,h[1]", R"(host 2: not a valid host: "h[1]")"},
        {"redis://a,[zz::1]", R"(host 2: not a valid host: "[zz::1]")"},
        {"redis+sentinel://s1:26379,:26380/m", "host 2: no host"},
    };
    for (const auto& [url_text, message] : cases) {
        const std::string_view url = url_text;
        const auto e = error_of([&] { config::from_url(url); });
        EXPECT_EQ(e.code(), akv::error::invalid_url) << url;
        EXPECT_TRUE(contains(e.what(), message)) << url;
    }
}

TEST(ConfigUrl, OneHostErrorsNameNoPlace) {
    const auto e = error_of([] { config::from_url("redis://h:12ab"); });
    EXPECT_TRUE(contains(e.what(), R"(url "redis://h:12ab": port: expected a port number, got "12ab")"));
    EXPECT_FALSE(contains(e.what(), "host 1"));
}

TEST(ConfigUrl, DuplicateOrUnknownSchemesAreErrors) {
    const std::pair<const char*, const char*> cases[] = {
        {"redis://redis://h:6379", R"(a second "://": give one scheme)"},
        {"redis+sentinel://redis://s1/m", R"(a second "://")"},
        {"redis+redis://h", R"(unknown scheme "redis+redis", expected redis, rediss, )"},
        {"redis+cluster+sentinel://h", R"(unknown scheme "redis+cluster+sentinel")"},
        {"redis-sentinel://h1,h2/0#m", R"(unknown scheme "redis-sentinel")"},
        {"redis:h", R"(no host: expected "redis://host[:port]")"},
    };
    for (const auto& [url_text, message] : cases) {
        const std::string_view url = url_text;
        const auto e = error_of([&] { config::from_url(url); });
        EXPECT_EQ(e.code(), akv::error::invalid_url) << url;
        EXPECT_TRUE(contains(e.what(), message)) << url << ": " << e.what();
    }
}

TEST(ConfigUrl, HostListErrorsNeverShowThePassword) {
    for (const char* url : {
             "redis://u:hunter2@h1,:7",
             "redis://u:hunter2@h1,h2:99999",
             "redis://u:hunt,er2@h1,h2:x",
             "redis://u:hunt@er2@h1,h2",
             "redis://u:hunt/er2@h1,h2",
             "redis+sentinel://u:hunter2@s1,s2",
             "redis+sentinel://u:hunter2@s1/m/x",
             "redis+cluster://u:hunter2@a?topology=sentinel",
             "redis+cluster://u:hunter2@redis://a",
             "redis+sentinel://s1/m?sentinel_password=hunter2&db=x",
         }) {
        const auto e = error_of([&] { config::from_url(url); });
        EXPECT_EQ(e.code(), akv::error::invalid_url) << url;
        EXPECT_FALSE(contains(e.what(), "hunt")) << url;
        EXPECT_FALSE(contains(e.what(), "er2")) << url;
    }
}

TEST(ConfigUrl, UrlKeyInJsonTakesAHostList) {
    const config c = config::from_json(
        R"({"url": "redis+sentinel://s1:26379,s2:26379/mymaster", "pool_size": 2})");
    EXPECT_EQ(c.topology, config::mode::sentinel);
    EXPECT_EQ(c.hosts, (hosts_t{{"s1", 26379}, {"s2", 26379}}));
    EXPECT_EQ(c.master_name, "mymaster");
    EXPECT_EQ(c.pool_size, 2u);
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

// TFRA's README example (/work/shared/seeds, redis_impl/README.md) exactly as written: its
// comments and Python False are no JSON, and TFRA's own parser refuses them too ("Json files
// cannot contain comments when actually used!"), so the strict parser does the same...
constexpr std::string_view tfra_readme_example = R"({
      "redis_connection_mode": 1,  // ClusterMode = 0, SentinelMode = 1, StreamMode = 2
      "redis_master_name": "master",

      // connection_options
      "redis_host_ip": ["127.0.0.1"],
      "redis_host_port": [6379],
      "redis_user": "default",
      "redis_password": "",
      "redis_db": 0,
      "redis_connect_keep_alive": False,  // keep TCP alive
      "redis_connect_timeout": 1000,  // milliseconds
      "redis_socket_timeout": 1000,  // milliseconds

      // connection_pool_options
      "redis_conn_pool_size": 20,
      "redis_wait_timeout": 100000000,  // milliseconds
      "redis_connection_lifetime": 100,  // minutes

      // sentinel_connection_options
      "redis_sentinel_connect_timeout": 1000,  // milliseconds
      "redis_sentinel_socket_timeout": 1000,  // milliseconds

      // Below there is user-defined parameters in this custom op, not Redis setting parameters
      "storage_slice": 1,  // For deciding hash tag, which usually is how many Redis instance may be used in the trainning.
      "keys_sending_size": 1024,  // Determines how many keys to send at a time for performance tuning
      "using_md5_prefix_name": False,  // 1=true, 0=false
      "model_tag_old": "test",  // model_tag_old for version and any other information from last time.
      "model_tag_new": "test",  // model_tag_new for version and any other information for now.
      "expire_model_tag_in_seconds": 604800,  // To eliminate unwanted model versions in Redis to ensure sufficient storage space.
      "table_store_mode": 1,  // Saving and restoring table into ensor in TF savedmodel variable file, table_store_mode = 0; Saving and restoring table into redis rdb file in model_lib_abs_dir, table_store_mode = 1; Saving and restoring nothing, keeping data in redis servers, table_store_mode = 2.
      "model_lib_abs_dir": "/tmp/"  // if table_store_mode equals 1, then it will try to save or resoter table from model_lib_abs_dir which has been mounted in system
  })";

// ...and a user who copies it drops the comments and writes false: the keys must then parse.
std::string without_comments_and_python_booleans(std::string_view text) {
    std::string out;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (in_string) {
            out += ch;
            if (ch == '\\' && i + 1 < text.size()) out += text[++i];
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
            out += ch;
        } else if (text.substr(i).starts_with("//")) {
            i = std::min(text.find('\n', i), text.size()) - 1;
        } else if (text.substr(i).starts_with("False")) {
            out += "false";
            i += 4;
        } else if (text.substr(i).starts_with("True")) {
            out += "true";
            i += 3;
        } else {
            out += ch;
        }
    }
    return out;
}

std::string with_connection_mode(std::string text, int mode) {
    const std::string from = "\"redis_connection_mode\": 1,";
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos);
    text.replace(at, from.size(), "\"redis_connection_mode\": " + std::to_string(mode) + ",");
    return text;
}

TEST(ConfigJson, TfraReadmeExampleVerbatimIsNoJson) {
    const auto e = error_of([] { config::from_json(tfra_readme_example); });
    EXPECT_EQ(e.code(), akv::error::invalid_config);
    EXPECT_TRUE(contains(e.what(), "config: line 2, column ")) << e.what();
}

void expect_tfra_readme_settings(const config& c) {
    EXPECT_EQ(c.master_name, "master");
    EXPECT_EQ(c.hosts, (hosts_t{{"127.0.0.1", 6379}}));
    EXPECT_EQ(c.username, "default");
    EXPECT_EQ(c.password, "");
    EXPECT_EQ(c.db, 0);
    EXPECT_FALSE(c.keep_alive);
    EXPECT_EQ(c.connect_timeout, 1000ms);
    EXPECT_EQ(c.request_timeout, 1000ms);
    EXPECT_EQ(c.pool_size, 20u);
    EXPECT_EQ(c.pool_wait_timeout, 100000000ms);
    EXPECT_EQ(c.connection_lifetime, 100min);
    EXPECT_EQ(c.sentinel_connect_timeout, 1000ms);
    EXPECT_EQ(c.sentinel_socket_timeout, 1000ms);
    // The example sets no sentinel credentials.
    EXPECT_EQ(c.sentinel_username, "");
    EXPECT_EQ(c.sentinel_password, "");
    EXPECT_EQ(c.tfra.storage_slice, 1);
    EXPECT_EQ(c.tfra.keys_sending_size, 1024u);
    EXPECT_FALSE(c.tfra.using_md5_prefix_name);
    EXPECT_EQ(c.tfra.model_tag_old, "test");
    EXPECT_EQ(c.tfra.model_tag_new, "test");
    EXPECT_EQ(c.tfra.expire_model_tag_in_seconds, 604800);
    EXPECT_EQ(c.tfra.table_store_mode, 1);
    EXPECT_EQ(c.tfra.model_lib_abs_dir, "/tmp/");
}

TEST(ConfigJson, TfraReadmeExampleForSentinel) {
    const std::string text = without_comments_and_python_booleans(tfra_readme_example);
    config c = config::from_json(text);
    EXPECT_EQ(c.topology, config::mode::sentinel);
    expect_tfra_readme_settings(c);

    // The sentinel keys the example leaves out, on top.
    c.apply_json(boost::json::parse(R"({"redis_sentinel_user": "su",
        "redis_sentinel_password": "spw", "redis_host_ip": ["10.0.0.1", "10.0.0.2"],
        "redis_host_port": [26379, 26380]})")
                     .as_object());
    EXPECT_EQ(c.sentinel_username, "su");
    EXPECT_EQ(c.sentinel_password, "spw");
    EXPECT_EQ(c.hosts, (hosts_t{{"10.0.0.1", 26379}, {"10.0.0.2", 26380}}));
    EXPECT_EQ(c.master_name, "master");
}

TEST(ConfigJson, TfraReadmeExampleForCluster) {
    const std::string text =
        with_connection_mode(without_comments_and_python_booleans(tfra_readme_example), 0);
    const config c = config::from_json(text);
    EXPECT_EQ(c.topology, config::mode::cluster);
    expect_tfra_readme_settings(c);
}

TEST(ConfigJson, TfraReadmeExampleForStandalone) {
    const std::string text =
        with_connection_mode(without_comments_and_python_booleans(tfra_readme_example), 2);
    EXPECT_EQ(config::from_json(text).topology, config::mode::standalone);
}

// ---- cluster and replica settings ----

TEST(ConfigCluster, Defaults) {
    const config c;
    EXPECT_EQ(c.cluster_max_redirects, 16u);
    EXPECT_EQ(c.cluster_failover_wait, 10000ms);
    EXPECT_FALSE(c.read_from_replicas);
}

TEST(ConfigCluster, KeysFromJsonFlagsAndUrl) {
    const config j = config::from_json(
        R"({"cluster_max_redirects": 3, "cluster_failover_wait_ms": 2500,
            "read_from_replicas": true})");
    EXPECT_EQ(j.cluster_max_redirects, 3u);
    EXPECT_EQ(j.cluster_failover_wait, 2500ms);
    EXPECT_TRUE(j.read_from_replicas);

    config f;
    f.set("cluster-max-redirects", "1");
    f.set("cluster-failover-wait-ms", "0");
    f.set("read-from-replicas", "yes");
    EXPECT_EQ(f.cluster_max_redirects, 1u);
    EXPECT_EQ(f.cluster_failover_wait, 0ms);
    EXPECT_TRUE(f.read_from_replicas);

    const config u = config::from_url(
        "redis+cluster://a:7000?cluster_max_redirects=9&cluster_failover_wait_ms=500"
        "&read_from_replicas=1");
    EXPECT_EQ(u.cluster_max_redirects, 9u);
    EXPECT_EQ(u.cluster_failover_wait, 500ms);
    EXPECT_TRUE(u.read_from_replicas);
}

TEST(ConfigCluster, RangesAreChecked) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"cluster_max_redirects": 0})",
         R"(config: "cluster_max_redirects": 0 out of range, must be >= 1)"},
        {R"({"cluster_max_redirects": -1})", R"("cluster_max_redirects": -1 out of range)"},
        {R"({"cluster_failover_wait_ms": -1})", R"("cluster_failover_wait_ms": -1 out of range)"},
        {R"({"read_from_replicas": "maybe"})",
         R"("read_from_replicas": expected true or false, got "maybe")"},
    };
    for (const auto& [json_text, message] : cases) {
        const std::string_view json = json_text;
        const auto e = error_of([&] { config::from_json(json); });
        EXPECT_EQ(e.code(), akv::error::invalid_config) << json;
        EXPECT_TRUE(contains(e.what(), message)) << json << ": " << e.what();
    }
    config c;
    const auto e = error_of([&] { c.set("cluster_max_redirects", "0"); });
    EXPECT_TRUE(contains(e.what(), R"(config: "cluster_max_redirects": 0 out of range)"));
    EXPECT_EQ(c.cluster_max_redirects, 16u);
    const auto u = error_of([] { config::from_url("redis+cluster://a?cluster_max_redirects=0"); });
    EXPECT_EQ(u.code(), akv::error::invalid_url);
    EXPECT_TRUE(contains(u.what(), R"("cluster_max_redirects": 0 out of range)"));
}

TEST(ConfigCache, OffByDefault) {
    const config c;
    EXPECT_EQ(c.cache.kind, akv::cache_options::mode::off);
    EXPECT_EQ(c.cache.max_bytes, std::size_t{64} << 20);
    EXPECT_EQ(c.cache.ttl, 60000ms);
    EXPECT_TRUE(c.cache.prefixes.empty());
}

TEST(ConfigCache, KeysFromJsonFlagsAndUrl) {
    const config j = config::from_json(
        R"({"cache": "broadcast", "cache_max_bytes": 1048576, "cache_ttl_ms": 0,
            "cache_prefixes": ["user:", "model:"]})");
    EXPECT_EQ(j.cache.kind, akv::cache_options::mode::broadcast);
    EXPECT_EQ(j.cache.max_bytes, 1048576u);
    EXPECT_EQ(j.cache.ttl, 0ms);
    EXPECT_EQ(j.cache.prefixes, (std::vector<std::string>{"user:", "model:"}));

    config f;
    f.set("cache", "OPTIN");
    f.set("cache-prefixes", "a:,b:");
    EXPECT_EQ(f.cache.kind, akv::cache_options::mode::optin);
    EXPECT_EQ(f.cache.prefixes, (std::vector<std::string>{"a:", "b:"}));
    f.set("cache", "default");
    EXPECT_EQ(f.cache.kind, akv::cache_options::mode::tracking);

    const config u = config::from_url("redis://h?cache=bcast&cache_ttl_ms=250");
    EXPECT_EQ(u.cache.kind, akv::cache_options::mode::broadcast);
    EXPECT_EQ(u.cache.ttl, 250ms);
}

TEST(ConfigCache, BadValuesAreNamed) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"cache": "sometimes"})",
         R"("cache": expected off, tracking (or default), broadcast (or bcast) or optin, got "sometimes")"},
        {R"({"cache_max_bytes": 0})", R"("cache_max_bytes": 0 out of range, must be >= 1)"},
        {R"({"cache_prefixes": ["ok:", ""]})",
         R"("cache_prefixes"[1]: expected a non-empty key prefix)"},
    };
    for (const auto& [json_text, message] : cases) {
        const std::string_view json = json_text;
        const auto e = error_of([&] { config::from_json(json); });
        EXPECT_EQ(e.code(), akv::error::invalid_config) << json;
        EXPECT_TRUE(contains(e.what(), message)) << json << ": " << e.what();
    }
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

TEST(ConfigRedactedUrl, RoundTripsTopologyHostsAndMasterName) {
    std::vector<config> configs;
    configs.push_back(config::from_url("redis://u:pw@h1:6379,h2:6380,[::1]:6381/2"));
    configs.push_back(config::from_url("rediss+cluster://:pw@a:7000,b:7001"));
    configs.push_back(config::from_url("redis+sentinel://u:pw@s1:26379,[fe80::1]:26380/my%20m/4"));
    configs.push_back(config::from_url("redis://h?topology=sentinel"));
    configs.push_back(
        config::from_json(R"({"topology": "sentinel", "master_name": "a&b=c/d?e#f",
            "hosts": ["s%1:26379", "s,2"], "username": "u@x"})"));
    configs.push_back(config::from_json(R"({"redis_connection_mode": 0,
        "redis_host_ip": ["10.0.0.1", "10.0.0.2"], "redis_host_port": [7000, 7001]})"));
    for (const config& c : configs) {
        const std::string url = c.redacted_url();
        const config back = config::from_url(url);
        EXPECT_EQ(back.topology, c.topology) << url;
        EXPECT_EQ(back.hosts, c.hosts) << url;
        EXPECT_EQ(back.master_name, c.master_name) << url;
        EXPECT_EQ(back.db, c.db) << url;
        EXPECT_EQ(back.username, c.username) << url;
        EXPECT_EQ(back.use_tls, c.use_tls) << url;
        EXPECT_EQ(back.redacted_url(), url);
    }
}

TEST(ConfigRedactedUrl, RelativeUnixSocketRoundTrips) {
    const config c = config::from_url("unix:run/redis.sock?db=1");
    EXPECT_EQ(c.unix_socket, "run/redis.sock");
    EXPECT_EQ(c.redacted_url(), "unix:run/redis.sock?db=1");
    EXPECT_EQ(config::from_url(c.redacted_url()).unix_socket, "run/redis.sock");
}

TEST(ConfigRedactedUrl, ShowsTheSentinelMasterName) {
    const config c = config::from_url("redis+sentinel://:hunter2@s1:26379,s2/mymaster/1");
    EXPECT_EQ(c.redacted_url(),
              "redis://:***@s1:26379,s2:6379/1?topology=sentinel&master_name=mymaster");
}

} // namespace
