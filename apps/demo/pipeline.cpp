#include "pipeline.hpp"

#include <akv/ml/tensor.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

namespace akv::demo {

namespace {

// Words of intent, each its own feature; every other word is hashed into one of 28 buckets.
const std::pair<std::string_view, float> lexicon[] = {
    {"interested", 5.0f}, {"join", 4.0f}, {"register", 4.0f}, {"attend", 3.5f},
    {"count", 3.5f},      {"sign", 3.5f}, {"signup", 4.0f},   {"want", 2.0f},
    {"yes", 2.0f},        {"not", -5.0f}, {"no", -5.0f},      {"can't", -5.0f},
};
constexpr std::size_t hashed = 28;
constexpr std::size_t buckets = hashed + std::size(lexicon); // 40 word features

std::size_t bucket(std::string_view word) {
    for (std::size_t i = 0; i < std::size(lexicon); ++i)
        if (lexicon[i].first == word) return hashed + i;
    std::uint32_t h = 2166136261u; // FNV-1a
    for (unsigned char c : word)
        h = (h ^ c) * 16777619u;
    return h % hashed;
}

template <class F> void for_each_word(std::string_view text, F f) {
    std::string word;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        const unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : ' ';
        if (std::isalnum(c) || c == '\'') {
            word += static_cast<char>(std::tolower(c));
        } else if (!word.empty()) {
            f(word);
            word.clear();
        }
    }
}

constexpr float bias = -3.0f;

const std::string_view with_interest[] = {
    "I'm interested!",
    "Count me in please",
    "I want to join, sign me up",
    "Yes! Register me for this",
    "Interested, I will attend with a friend",
    "Please sign me up, I want to attend",
};
const std::string_view without_interest[] = {
    "Nice photo",
    "What time does it start?",
    "Where is this happening?",
    "Not for me, sorry",
    "Great work everyone",
    "Is there parking nearby?",
    "No thanks, can't make it",
    "lol",
    "Shared with my family",
    "Looks like fun but I'm busy",
    "Who organises this?",
    "Beautiful place",
};

std::string tensor_file(const kv::model& m, const boost::json::object& spec, const char* key) {
    const auto* name = spec.if_contains(key);
    if (!name || !name->is_string())
        throw std::invalid_argument(std::string("model.json: \"") + key + "\" must name a file");
    auto f = m.files.find(std::string(name->get_string()));
    if (f == m.files.end())
        throw std::invalid_argument(std::string("model.json: \"") + key + "\": no file " +
                                    std::string(name->get_string()) + " in the model");
    return f->second;
}

} // namespace

std::array<float, features> featurize(std::string_view text) {
    std::array<float, features> x{};
    float words = 0;
    for_each_word(text, [&](const std::string& w) {
        x[bucket(w)] += 1.0f;
        words += 1.0f;
    });
    const auto bangs = static_cast<float>(std::count(text.begin(), text.end(), '!'));
    x[buckets] = std::min(bangs, 3.0f) / 3.0f;
    x[buckets + 1] = text.find('?') != std::string_view::npos ? 1.0f : 0.0f;
    x[buckets + 2] = std::min(words / 20.0f, 1.0f);
    x[buckets + 3] = 1.0f;
    return x;
}

static std::vector<float> interest_weights() {
    std::vector<float> w(features, 0.0f);
    for (std::size_t i = 0; i < std::size(lexicon); ++i)
        w[hashed + i] = lexicon[i].second;
    w[buckets + 1] = -1.0f; // a question is seldom a yes
    return w;
}

ml::logistic_model interest_model() {
    return ml::logistic_model(interest_weights(), bias);
}

bool interested(std::string_view text) {
    static const ml::logistic_model model = interest_model(); // immutable once built
    const auto x = featurize(text);
    float y = 0;
    model.predict(x, 1, std::span<float>(&y, 1));
    return y >= threshold;
}

kv::model interest_model_files() {
    boost::json::array weights;
    for (float v : interest_weights())
        weights.emplace_back(static_cast<double>(v));
    boost::json::object spec{
        {"kind", "logistic"}, {"weights", std::move(weights)}, {"bias", static_cast<double>(bias)}};
    kv::model m;
    m.files["model.json"] = boost::json::serialize(spec);
    m.metadata = R"({"what":"interest classifier of the demo","inputs":44,"threshold":0.5})";
    return m;
}

std::shared_ptr<const ml::batch_model> model_from_files(const kv::model& m) {
    auto f = m.files.find("model.json");
    if (f == m.files.end()) throw std::invalid_argument("the model has no model.json");
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(f->second, ec);
    if (ec || !doc.is_object())
        throw std::invalid_argument("model.json: not a JSON object" +
                                    (ec ? ": " + ec.message() : std::string()));
    const auto& spec = doc.get_object();
    const auto* kind = spec.if_contains("kind");
    if (!kind || !kind->is_string())
        throw std::invalid_argument("model.json: \"kind\" must be \"logistic\" or \"mlp\"");
    if (kind->get_string() == "logistic") {
        const auto* w = spec.if_contains("weights");
        const auto* b = spec.if_contains("bias");
        if (!w || !w->is_array() || w->get_array().empty())
            throw std::invalid_argument("model.json: \"weights\" must be a non-empty array");
        if (!b || !b->is_number())
            throw std::invalid_argument("model.json: \"bias\" must be a number");
        std::vector<float> weights;
        for (const auto& v : w->get_array()) {
            if (!v.is_number()) throw std::invalid_argument("model.json: a weight is not a number");
            weights.push_back(static_cast<float>(v.to_number<double>()));
        }
        return std::make_shared<ml::logistic_model>(std::move(weights),
                                                    static_cast<float>(b->to_number<double>()));
    }
    if (kind->get_string() == "mlp") {
        return std::make_shared<ml::mlp_model>(
            ml::decode(tensor_file(m, spec, "w1")), ml::decode(tensor_file(m, spec, "b1")),
            ml::decode(tensor_file(m, spec, "w2")), ml::decode(tensor_file(m, spec, "b2")));
    }
    throw std::invalid_argument("model.json: unknown kind \"" + std::string(kind->get_string()) +
                                "\" (logistic or mlp)");
}

comment sample_comment(std::string_view run, std::uint64_t n, std::string_view post) {
    // A mixed index, so runs of consecutive comments vary.
    std::uint64_t h = (n + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    comment c;
    c.id = std::string(run) + "-" + std::to_string(n);
    c.post = std::string(post);
    c.user = "user" + std::to_string(h % 100000);
    if (h % 3 == 0)
        c.text = with_interest[(h / 3) % std::size(with_interest)];
    else
        c.text = without_interest[(h / 3) % std::size(without_interest)];
    return c;
}

std::string to_json(const comment& c) {
    boost::json::object o{{"id", c.id}, {"post", c.post}, {"user", c.user}, {"text", c.text}};
    return boost::json::serialize(o);
}

} // namespace akv::demo
