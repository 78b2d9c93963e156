#include <akv/kv/store_config.hpp>

#include <gtest/gtest.h>

using akv::kv::blob_store_config;

namespace {
std::string error_of(const std::function<void()>& f, akv::error code = akv::error::invalid_config) {
    try {
        f();
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), code);
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
}
} // namespace

TEST(BlobStoreConfig, UrlCarriesTheStoreOptions) {
    auto c = blob_store_config::from_url(
        "redis://:pw@cache.local:6380/2?key_prefix=scaler:&max_object_size=100MB&chunk_size=4KB"
        "&connect_timeout_ms=250");
    EXPECT_EQ(c.blob.key_prefix, "scaler:");
    EXPECT_EQ(c.blob.max_object_size, 100u << 20);
    EXPECT_EQ(c.blob.chunk_size, 4u << 10);
    EXPECT_EQ(c.connection.hosts.at(0).host, "cache.local");
    EXPECT_EQ(c.connection.hosts.at(0).port, 6380);
    EXPECT_EQ(c.connection.db, 2);
    EXPECT_EQ(c.connection.password, "pw");
    EXPECT_EQ(c.connection.connect_timeout, std::chrono::milliseconds(250));
}

TEST(BlobStoreConfig, TlsUrlAndDefaults) {
    auto c = blob_store_config::from_url("rediss://host");
    EXPECT_TRUE(c.connection.use_tls);
    EXPECT_EQ(c.blob.key_prefix, "blob:");
}

TEST(BlobStoreConfig, UnknownUrlKeyIsStillNamed) {
    const auto what = error_of([] { blob_store_config::from_url("redis://h?max_objet_size=1"); },
                               akv::error::invalid_url);
    EXPECT_NE(what.find("max_objet_size"), std::string::npos) << what;
}

TEST(BlobStoreConfig, JsonTakesStoreKeysAndGivesTheRestToTheConnection) {
    auto c = blob_store_config::from_json(R"({"url": "redis://h:7000/1", "key_prefix": "objs:",
        "max_object_size": 1048576, "chunk_size": "64KB", "read_lease_ms": 5000,
        "redis_password": "s3cret"})");
    EXPECT_EQ(c.blob.key_prefix, "objs:");
    EXPECT_EQ(c.blob.max_object_size, 1048576u);
    EXPECT_EQ(c.blob.chunk_size, 64u << 10);
    EXPECT_EQ(c.blob.read_lease, std::chrono::milliseconds(5000));
    EXPECT_EQ(c.connection.hosts.at(0).port, 7000);
    EXPECT_EQ(c.connection.db, 1);
    EXPECT_EQ(c.connection.password, "s3cret");
}

TEST(BlobStoreConfig, BadSizesNameTheKey) {
    auto what = error_of([] { blob_store_config::from_url("redis://h?chunk_size=4XB"); });
    // (a store key's bad value is a configuration error even when it came in a URL)
    EXPECT_NE(what.find("\"chunk_size\": unknown size unit \"XB\""), std::string::npos) << what;
    what = error_of([] { blob_store_config::from_json(R"({"max_object_size": -5})"); });
    EXPECT_NE(what.find("\"max_object_size\""), std::string::npos) << what;
    what = error_of([] { blob_store_config::from_json(R"({"max_object_size": "lots"})"); });
    EXPECT_NE(what.find("expected a size"), std::string::npos) << what;
    what = error_of([] { blob_store_config::from_json(R"({"chunk_size": "99999999999GB"})"); });
    EXPECT_NE(what.find("too large"), std::string::npos) << what;
}

TEST(BlobStoreConfig, MissingFileIsNamed) {
    const auto what = error_of([] { blob_store_config::from_json_file("/no/such/store.json"); });
    EXPECT_NE(what.find("/no/such/store.json"), std::string::npos) << what;
}

TEST(BlobStoreConfig, ContainerKeySchemaFromProcessParts) {
    auto c = blob_store_config::from_json(
        R"({"hostname": "node7", "process_type": "worker", "process_id": "3"})");
    EXPECT_EQ(c.keys.key("stats"), "node7:worker:3:stats");
    auto p = blob_store_config::from_url("redis://h?kv_prefix=ami2/");
    EXPECT_EQ(p.keys.key("stats"), "ami2/stats");
    const auto what = error_of([] { blob_store_config::from_json(R"({"process_type": "w"})"); });
    EXPECT_NE(what.find("go together"), std::string::npos) << what;
}
