// The msgpack codec (akv/kv/msgpack.hpp): bytes written by Python's msgpack (as channels_redis
// writes its messages) read back exactly, our own bytes read back, and malformed input refused
// with a clear error, never a crash (a seeded random mutation loop, like a fuzzer's).
#include <akv/error.hpp>
#include <akv/kv/msgpack.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mp = akv::kv::msgpack;
namespace json = boost::json;

namespace {

std::string unhex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return out;
}

// The error's message, or "" when `bytes` decode.
std::string refusal(std::string_view bytes, const mp::decode_options& o = {}) {
    try {
        mp::decode(bytes, o);
        return "";
    } catch (const boost::system::system_error& e) {
        return e.what();
    }
}

// msgpack.packb({'type':'signup.created','name':'Ana','n':-33,'big':2**64-1,'neg':-2**63,
// 'f':1.5,'ok':True,'none':None,'tags':['a','b'],'u':'é€😀','bytes':b'\x00\xff'},
// use_bin_type=True), by Debian's python3-msgpack 1.0.3.
constexpr std::string_view python_dict =
    "8ba474797065ae7369676e75702e63726561746564a46e616d65a3416e61a16ed0dfa3626967cfffffffffffff"
    "ffffa36e6567d38000000000000000a166cb3ff8000000000000a26f6bc3a46e6f6e65c0a47461677392a161a1"
    "62a175a9c3a9e282acf09f9880a56279746573c40200ff";

} // namespace

TEST(Msgpack, ReadsWhatPythonWrites) {
    mp::decode_options o;
    o.bin = mp::bin_policy::base64;
    const json::value v = mp::decode(unhex(python_dict), o);
    const json::object& m = v.as_object();
    EXPECT_EQ(m.at("type").as_string(), "signup.created");
    EXPECT_EQ(m.at("name").as_string(), "Ana");
    EXPECT_EQ(m.at("n").as_int64(), -33);
    EXPECT_EQ(m.at("big").as_uint64(), UINT64_MAX);
    EXPECT_EQ(m.at("neg").as_int64(), INT64_MIN);
    EXPECT_EQ(m.at("f").as_double(), 1.5);
    EXPECT_EQ(m.at("ok").as_bool(), true);
    EXPECT_TRUE(m.at("none").is_null());
    EXPECT_EQ(json::serialize(m.at("tags")), R"(["a","b"])");
    EXPECT_EQ(m.at("u").as_string(), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    EXPECT_EQ(m.at("bytes").as_string(), "AP8="); // base64 of 00 ff
}

TEST(Msgpack, ReadsLongerFormsPythonWrites) {
    // {'type':'x','l':list(range(20)),'s':'x'*40,'i16':300,'i32':70000,'n16':-300}
    const json::value v = mp::decode(unhex(
        "86a474797065a178a16cdc0014000102030405060708090a0b0c0d0e0f10111213a173d928787878787878"
        "78787878787878787878787878787878787878787878787878787878787878787878a3693136cd012ca369"
        "3332ce00011170a36e3136d1fed4"));
    EXPECT_EQ(v.at("l").as_array().size(), 20u);
    EXPECT_EQ(v.at("l").as_array()[19].to_number<int>(), 19);
    EXPECT_EQ(v.at("s").as_string(), std::string(40, 'x'));
    EXPECT_EQ(v.at("i16").to_number<int>(), 300);
    EXPECT_EQ(v.at("i32").to_number<int>(), 70000);
    EXPECT_EQ(v.at("n16").to_number<int>(), -300);
}

TEST(Msgpack, EncodesInTheShortestFormsPythonUses) {
    // Python's packb of the same dict gives the same bytes: keys in order, shortest headers.
    const json::value v = json::parse(R"({"type":"x","i16":300,"n16":-300,"s":"é"})");
    EXPECT_EQ(mp::encode(v), unhex("84a474797065a178a3693136cd012ca36e3136d1fed4a173a2c3a9"));
}

TEST(Msgpack, RoundTripsEveryKindAndLength) {
    json::object o;
    o["nil"] = nullptr;
    o["t"] = true;
    o["f"] = false;
    o["small"] = 7;
    o["neg_fix"] = -32;
    o["i8"] = -100;
    o["i16"] = -30000;
    o["i32"] = -2000000000;
    o["i64"] = INT64_MIN;
    o["u8"] = 200u;
    o["u16"] = 60000u;
    o["u32"] = 4000000000u;
    o["u64"] = UINT64_MAX;
    o["d"] = -0.25;
    o["s255"] = std::string(255, 'a');
    o["s65536"] = std::string(65536, 'b');
    json::array a;
    for (int i = 0; i < 70000; ++i)
        a.push_back(i);
    o["a"] = a;
    json::object wide;
    for (int i = 0; i < 20; ++i)
        wide[std::to_string(i)] = i;
    o["wide"] = wide;
    const json::value back = mp::decode(mp::encode(o));
    EXPECT_EQ(back, json::value(o));
}

TEST(Msgpack, WritesBinThatReadsBackAsBase64) {
    std::string bytes;
    mp::writer w(bytes);
    w.map(1);
    w.str("b");
    w.bin(std::string("\x01\x02\x03\x04", 4));
    mp::decode_options o;
    o.bin = mp::bin_policy::base64;
    EXPECT_EQ(json::serialize(mp::decode(bytes, o)), R"({"b":"AQIDBA=="})");
    EXPECT_NE(refusal(bytes).find("a bin (bytes)"), std::string::npos) << refusal(bytes);
}

TEST(Msgpack, RefusesMalformedInputNamingWhatAndWhere) {
    EXPECT_EQ(refusal("").rfind("msgpack: byte 0: truncated: a value expected", 0), 0u)
        << refusal("");
    EXPECT_NE(refusal(unhex("c1")).find("reserved tag"), std::string::npos);
    EXPECT_NE(refusal(unhex("a3616263ff")).find("1 bytes after the value"), std::string::npos);
    EXPECT_NE(refusal(unhex("a5616263")).find("a str of 5 bytes, only 3 left"), std::string::npos);
    EXPECT_NE(refusal(unhex("dbffffffff")).find("a str of 4294967295 bytes"), std::string::npos);
    EXPECT_NE(refusal(unhex("ddffffffff")).find("an array of 4294967295 elements"),
              std::string::npos);
    EXPECT_NE(refusal(unhex("dfffffffff")).find("a map of 4294967295 entries"), std::string::npos);
    EXPECT_NE(refusal(unhex("810101")).find("byte 1: a map key that is not a str"),
              std::string::npos);
    EXPECT_NE(refusal(unhex("82a16101a16102")).find("the map key \"a\" twice"), std::string::npos);
    EXPECT_NE(refusal(unhex("a2c0af")).find("not UTF-8"), std::string::npos);
    EXPECT_NE(refusal(unhex("a3eda080")).find("not UTF-8"), std::string::npos); // a surrogate
    EXPECT_NE(refusal(unhex("cb7ff8000000000000")).find("not finite"), std::string::npos);
    EXPECT_NE(refusal(unhex("d4010a")).find("ext type"), std::string::npos);
    EXPECT_NE(refusal(unhex("cd01")).find("truncated"), std::string::npos);
}

TEST(Msgpack, RefusesNestingBeyondTheLimit) {
    const std::string deep(100, '\x91'); // [[[[...
    try {
        mp::decode(deep + '\xc0');
        FAIL() << "decoded";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::object_too_large);
    }
    mp::decode_options o;
    o.max_depth = 200;
    EXPECT_NO_THROW(mp::decode(deep + '\xc0', o));
}

TEST(Msgpack, MutatedInputIsDecodedOrRefusedNeverACrash) {
    // Seeded, so a failure repeats: flips, truncations, insertions and length bytes set to
    // extremes, over valid messages. Anything thrown must be our system_error.
    std::mt19937 rng(24);
    const std::string seeds[] = {unhex(python_dict),
                                 mp::encode(json::parse(R"({"type":"a","l":[1,[2,{"x":null}]]})"))};
    mp::decode_options o;
    o.bin = mp::bin_policy::base64;
    std::size_t decoded = 0, refused = 0;
    for (int round = 0; round < 200000; ++round) {
        std::string s = seeds[round % 2];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !s.empty(); ++e) {
            const std::size_t at = rng() % s.size();
            switch (rng() % 4) {
            case 0:
                s[at] = static_cast<char>(rng());
                break;
            case 1:
                s.resize(at);
                break;
            case 2:
                s.insert(at, 1, static_cast<char>(rng()));
                break;
            case 3:
                s[at] = (rng() % 2) ? '\xff' : '\x00';
                break;
            }
        }
        try {
            mp::decode(s, o);
            ++decoded;
        } catch (const boost::system::system_error&) {
            ++refused;
        }
    }
    EXPECT_GT(refused, 0u);
    EXPECT_GT(decoded, 0u);
}
