// The demo's domain (seed 004, Voluntree without Facebook): the names every process of the
// pipeline agrees on, the text featurizer, the interest classifier, and sample comments.
//
//   admin page --POST /webhook/posts-->    gateway --queue demo.posts-->    worker: SQLite, "posts"
//   comments   --POST /webhook/comments--> gateway --queue demo.comments--> worker: featurize
//     --XADD demo:embeddings--> batcher (model "interest" from the registry)
//     --XADD demo:interest (positives)--> worker: SQLite signups, PUBLISH post:<id> --> page
#pragma once

#include <akv/kv/model_registry.hpp>
#include <akv/ml/model.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace akv::demo {

inline constexpr std::string_view posts_queue = "demo.posts";
inline constexpr std::string_view comments_queue = "demo.comments";
inline constexpr std::string_view embeddings_stream = "demo:embeddings";
inline constexpr std::string_view interest_stream = "demo:interest";
inline constexpr std::string_view batcher_group = "interest";
inline constexpr std::string_view model_name = "interest";
inline constexpr std::string_view posts_channel = "posts";
inline constexpr std::string_view stats_channel = "demo:stats";
inline constexpr std::string_view signup_stats_key = "demo:stats:signups";
inline std::string post_channel(std::string_view post) {
    return "post:" + std::string(post);
}

inline constexpr std::size_t features = 44;
inline constexpr float threshold = 0.5f;

// 40 word counts: 28 buckets of hashed words (FNV-1a of the lower-cased word, mod 28), then
// one for each of 12 words of intent ("interested", "join", ..., "not", "no"); then the '!'
// count (capped at 3, over 3), a '?' flag, the word count over 20 (capped at 1), a constant 1.
std::array<float, features> featurize(std::string_view text);

// The seed's classifier: logistic regression over featurize(); the words of intent weigh in
// ("interested", "join", "count me in"), or against ("not", "no"); a question counts against.
ml::logistic_model interest_model();
// What the pipeline decides for this text: interest_model() on featurize(text) >= threshold.
bool interested(std::string_view text);

// A model as the registry keeps it: model.json, {"kind": "logistic", "weights": [...],
// "bias": b} or {"kind": "mlp", "w1": "w1.akvt", "b1": ..., "w2": ..., "b2": ...} naming AKVT
// tensor files of the model. Throws std::invalid_argument naming what is wrong.
std::shared_ptr<const ml::batch_model> model_from_files(const kv::model& m);
kv::model interest_model_files();

struct comment {
    std::string id;
    std::string post;
    std::string user;
    std::string text;
};

// The n-th sample comment of a load run: a third or so show interest. Deterministic.
comment sample_comment(std::string_view run, std::uint64_t n, std::string_view post);
// {"id":..., "post":..., "user":..., "text":...}
std::string to_json(const comment& c);

} // namespace akv::demo
