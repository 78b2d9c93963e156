// akv::kv codecs and key schema, without a server: the documented layouts, round trips, and
// the errors a value read as the wrong type gives.
#include <akv/kv/codec.hpp>
#include <akv/kv/key_schema.hpp>

#include <boost/describe/class.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace kv = akv::kv;

namespace demo {
struct point {
    double x = 0;
    double y = 0;
};
BOOST_DESCRIBE_STRUCT(point, (), (x, y))

struct job_state {
    std::string graph;
    int step = 0;
    std::vector<double> loss;
    point origin;
};
BOOST_DESCRIBE_STRUCT(job_state, (), (graph, step, loss, origin))

bool operator==(const point& a, const point& b) {
    return a.x == b.x && a.y == b.y;
}
bool operator==(const job_state& a, const job_state& b) {
    return a.graph == b.graph && a.step == b.step && a.loss == b.loss && a.origin == b.origin;
}
} // namespace demo

namespace {

kv::type_mismatch_error mismatch_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const kv::type_mismatch_error& e) {
        return e;
    }
    ADD_FAILURE() << "no type_mismatch_error was thrown";
    return kv::type_mismatch_error({}, "none");
}

template <class T> std::string decode_error(std::string_view bytes) {
    return mismatch_of([&] { kv::decode<T>(bytes); }).detail();
}

template <class T> T round_trip(const T& value) {
    return kv::decode<T>(kv::encode(value));
}

} // namespace

// ---- layouts

TEST(KvCodec, ScalarsAreTheTextRedisCommandsUse) {
    EXPECT_EQ(kv::encode(true), "1");
    EXPECT_EQ(kv::encode(false), "0");
    EXPECT_EQ(kv::encode(-42), "-42");
    EXPECT_EQ(kv::encode(std::uint64_t{18446744073709551615u}), "18446744073709551615");
    EXPECT_EQ(kv::encode(std::int8_t{-7}), "-7");
    EXPECT_EQ(kv::encode(0.1), "0.1");
    EXPECT_EQ(kv::encode(1.5f), "1.5");
    EXPECT_EQ(kv::encode(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(KvCodec, FloatingPointReadsWhatRedisWrites) {
    EXPECT_DOUBLE_EQ(kv::decode<double>("10.5"), 10.5);
    EXPECT_DOUBLE_EQ(kv::decode<double>("3"), 3.0);
    EXPECT_DOUBLE_EQ(kv::decode<double>("1.5e+20"), 1.5e20);
    EXPECT_TRUE(std::isinf(kv::decode<double>("inf")));
    EXPECT_EQ(round_trip(0.1 + 0.2), 0.1 + 0.2); // shortest text that reads back exactly
    EXPECT_EQ(round_trip(std::numeric_limits<double>::max()), std::numeric_limits<double>::max());
    EXPECT_EQ(round_trip(1.0f / 3.0f), 1.0f / 3.0f);
}

TEST(KvCodec, VectorIsAOneDimensionalAkvTensor) {
    const std::vector<float> values{1.5f, -2.0f, 3.25f};
    const std::string bytes = kv::encode(values);
    ASSERT_EQ(bytes.size(), 8u + 8u + 3u * 4u);
    EXPECT_EQ(bytes.substr(0, 4), "AKVT");
    EXPECT_EQ(bytes[4], 1); // version
    EXPECT_EQ(bytes[5], 1); // f32
    EXPECT_EQ(bytes[6], 1); // ndim
    EXPECT_EQ(bytes[7], 0);
    std::int64_t dim = 0;
    std::memcpy(&dim, bytes.data() + 8, 8);
    EXPECT_EQ(dim, 3);
    float second = 0;
    std::memcpy(&second, bytes.data() + 16 + 4, 4);
    EXPECT_EQ(second, -2.0f);
    EXPECT_EQ(round_trip(values), values);
}

TEST(KvCodec, EveryTensorElementTypeRoundTrips) {
    EXPECT_EQ(round_trip(std::vector<double>{1e300, -0.5}), (std::vector<double>{1e300, -0.5}));
    EXPECT_EQ(round_trip(std::vector<std::int8_t>{-128, 127}),
              (std::vector<std::int8_t>{-128, 127}));
    EXPECT_EQ(round_trip(std::vector<std::int16_t>{-3}), (std::vector<std::int16_t>{-3}));
    EXPECT_EQ(round_trip(std::vector<std::int32_t>{1, 2}), (std::vector<std::int32_t>{1, 2}));
    EXPECT_EQ(round_trip(std::vector<std::int64_t>{1LL << 40}),
              (std::vector<std::int64_t>{1LL << 40}));
    EXPECT_EQ(round_trip(std::vector<std::uint8_t>{0, 255}), (std::vector<std::uint8_t>{0, 255}));
    EXPECT_EQ(round_trip(std::vector<float>{}), std::vector<float>{});
}

TEST(KvCodec, SpanEncodesLikeTheVector) {
    const std::vector<double> values{1, 2, 3};
    std::string out;
    kv::codec<std::span<const double>>::encode(values, out);
    EXPECT_EQ(out, kv::encode(values));
}

TEST(KvCodec, TensorOfAnyShapeRoundTrips) {
    akv::ml::tensor t;
    t.type = akv::ml::dtype::i16;
    t.shape = {2, 3};
    t.data.assign(12, '\x02');
    EXPECT_EQ(round_trip(t), t);
}

TEST(KvCodec, BytesAreStoredAsTheyAre) {
    const kv::bytes raw{std::byte{0}, std::byte{0xff}, std::byte{'\r'}};
    EXPECT_EQ(kv::encode(raw), std::string("\0\xff\r", 3));
    EXPECT_EQ(round_trip(raw), raw);
}

TEST(KvCodec, DescribedStructIsAJsonObject) {
    const demo::job_state s{"g1", 3, {0.5, 0.25}, {1, 2}};
    EXPECT_EQ(kv::encode(s),
              R"({"graph":"g1","step":3,"loss":[5E-1,2.5E-1],"origin":{"x":1E0,"y":2E0}})");
    EXPECT_EQ(round_trip(s), s);
}

TEST(KvCodec, DescribedStructWithNaNOrInfinityIsRefusedNamingTheMember) {
    // Boost.JSON would write NaN / Infinity, which no JSON parser (its own included) reads back.
    auto refusal = [](const demo::job_state& s) -> std::string {
        try {
            kv::encode(s);
        } catch (const boost::system::system_error& e) {
            if (e.code() == akv::error::type_mismatch) return e.what();
        }
        return "not refused";
    };
    demo::job_state s{"g1", 3, {0.5, std::numeric_limits<double>::quiet_NaN()}, {1, 2}};
    EXPECT_NE(refusal(s).find("value.loss[1] is NaN"), std::string::npos) << refusal(s);
    s.loss = {0.5};
    s.origin.y = -std::numeric_limits<double>::infinity();
    EXPECT_NE(refusal(s).find("value.origin.y is -Infinity"), std::string::npos) << refusal(s);
}

TEST(KvCodec, DescribedStructIgnoresMembersItDoesNotKnow) {
    const auto p = kv::decode<demo::point>(R"({"x":1,"y":2,"z":3})");
    EXPECT_EQ(p, (demo::point{1, 2}));
}

// ---- decode errors

TEST(KvCodec, IntegerFromTextThatIsNotOneNamesWhatItGot) {
    EXPECT_EQ(decode_error<long long>("abc"), R"(expected an integer, got "abc")");
    EXPECT_EQ(decode_error<int>("12x"), R"(expected an integer, got "12x")");
    EXPECT_EQ(decode_error<int>(""), R"(expected an integer, got "")");
    EXPECT_EQ(decode_error<int>("1.5"), R"(expected an integer, got "1.5")");
}

TEST(KvCodec, IntegerOutOfRangeSaysTheRange) {
    EXPECT_EQ(decode_error<std::uint8_t>("300"), R"(expected an integer in [0, 255], got "300")");
    EXPECT_EQ(decode_error<std::uint32_t>("-1"),
              R"(expected an integer in [0, 4294967295], got "-1")");
    EXPECT_EQ(decode_error<std::int64_t>("99999999999999999999"),
              R"(expected an integer in [-9223372036854775808, 9223372036854775807], got )"
              R"("99999999999999999999")");
}

TEST(KvCodec, BoolIsOnlyOneOrZero) {
    EXPECT_EQ(decode_error<bool>("true"), R"(expected a bool ("1" or "0"), got "true")");
    EXPECT_EQ(decode_error<bool>("2"), R"(expected a bool ("1" or "0"), got "2")");
}

TEST(KvCodec, NumberFromTextThatIsNotOne) {
    EXPECT_EQ(decode_error<double>("1,5"), R"(expected a number, got "1,5")");
}

TEST(KvCodec, TensorOfAnotherDtypeNamesBothSides) {
    const std::string f64 = kv::encode(std::vector<double>{1, 2, 3});
    EXPECT_EQ(decode_error<std::vector<float>>(f64),
              "expected a tensor of f32, got a tensor of f64 [3]");
}

TEST(KvCodec, TensorFromAnIntegerShowsTheText) {
    EXPECT_EQ(decode_error<std::vector<float>>(kv::encode(42)),
              R"(expected a tensor of f32, got "42")");
}

TEST(KvCodec, VectorFromATwoDimensionalTensorIsRefused) {
    akv::ml::tensor t;
    t.shape = {2, 2};
    t.data.assign(16, '\0');
    EXPECT_EQ(decode_error<std::vector<float>>(kv::encode(t)),
              "expected a one-dimensional tensor of f32, got a tensor of f32 [2,2]");
}

TEST(KvCodec, MalformedTensorSaysWhatIsWrong) {
    std::string bytes = kv::encode(std::vector<float>{1, 2});
    bytes.pop_back();
    const std::string detail = decode_error<akv::ml::tensor>(bytes);
    EXPECT_NE(detail.find("expected a tensor, got a malformed one"), std::string::npos) << detail;
    EXPECT_NE(detail.find("needs 8 data bytes, got 7"), std::string::npos) << detail;
}

TEST(KvCodec, IntegerFromATensorDescribesTheTensor) {
    EXPECT_EQ(decode_error<int>(kv::encode(std::vector<std::int32_t>{1, 2})),
              "expected an integer, got a tensor of i32 [2]");
}

TEST(KvCodec, StructFromOtherJsonNamesTheMissingMember) {
    EXPECT_EQ(decode_error<demo::point>(R"({"x":1})"),
              R"(expected a JSON object with member "y", got "{\"x\":1}")");
    EXPECT_EQ(decode_error<demo::point>("42"), R"(expected a JSON object, got "42")");
    const std::string bad = decode_error<demo::point>(R"({"x":"one","y":2})");
    EXPECT_EQ(bad.rfind(R"(JSON member "x": )", 0), 0u) << bad;
    EXPECT_NE(bad.find(R"(got "one")"), std::string::npos) << bad;
}

TEST(KvCodec, LongOrBinaryValuesAreShortenedAndEscaped) {
    EXPECT_EQ(kv::describe(std::string("\0\x01\"", 3)), R"("\x00\x01\"")");
    EXPECT_EQ(kv::describe(std::string(100, 'a')),
              "\"" + std::string(40, 'a') + "\"... (100 bytes)");
}

TEST(KvCodec, MismatchErrorCarriesTheCodeAndPlace) {
    const kv::type_mismatch_error e(R"("params"["weights"])",
                                    "expected a tensor of f32, got \"42\"");
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_EQ(
        std::string(e.what()).rfind(R"(kv: "params"["weights"]: expected a tensor of f32)", 0), 0u)
        << e.what();
}

// ---- key schema

TEST(KvKeySchema, ProcessPrefixIsHostTypeId) {
    const auto schema = kv::key_schema::for_process("node7", "worker", "3");
    EXPECT_EQ(schema.prefix(), "node7:worker:3:");
    EXPECT_EQ(schema.key("stats"), "node7:worker:3:stats");
    EXPECT_EQ(schema.tagged_key("cache"), "node7:worker:3:{cache}");
    EXPECT_EQ(schema.tagged_key("cache", "lru"), "node7:worker:3:{cache}:lru");
}

TEST(KvKeySchema, DefaultHostIsThisMachine) {
    const auto schema = kv::key_schema::for_process("reducer", "0");
    EXPECT_EQ(schema.prefix(), kv::local_hostname() + ":reducer:0:");
    EXPECT_FALSE(kv::local_hostname().empty());
}

TEST(KvKeySchema, AnyPrefixIsUsedAsIs) {
    EXPECT_EQ(kv::key_schema("ami2/").key("graph"), "ami2/graph");
    EXPECT_EQ(kv::key_schema().key("graph"), "graph");
}

TEST(KvKeySchema, HashTagIsTheFirstNonEmptyBraces) {
    EXPECT_EQ(kv::hash_tag("user:{42}:name"), "42");
    EXPECT_EQ(kv::hash_tag("plain"), "plain");
    EXPECT_EQ(kv::hash_tag("a{}b{c}"), "a{}b{c}"); // "{}" is empty: the whole key is hashed
    EXPECT_EQ(kv::hash_tag("a{b"), "a{b");
    EXPECT_EQ(kv::hash_tag("{a}{b}"), "a");
}

TEST(KvKeySchema, TaggedKeysOfOneContainerShareASlot) {
    const kv::key_schema schema("host:proc:1:");
    const std::vector<std::string> keys{schema.tagged_key("c"), schema.tagged_key("c", "lru")};
    EXPECT_NO_THROW(kv::require_same_slot(keys));
    const kv::key_schema tagged_prefix("{proc1}:"); // the prefix's tag wins, still one slot
    const std::vector<std::string> same{tagged_prefix.tagged_key("c"),
                                        tagged_prefix.tagged_key("c", "lru")};
    EXPECT_NO_THROW(kv::require_same_slot(same));
}

TEST(KvKeySchema, APrefixThatDefeatsTheTagIsRefused) {
    const kv::key_schema schema("bad{}:");
    const std::vector<std::string> keys{schema.tagged_key("c"), schema.tagged_key("c", "lru")};
    try {
        kv::require_same_slot(keys);
        ADD_FAILURE() << "no error";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::invalid_config);
        EXPECT_NE(std::string(e.what()).find("bad{}:{c}:lru"), std::string::npos) << e.what();
    }
}
