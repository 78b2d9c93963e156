// Client-side caching: replies to reads kept in this process until Redis says their key changed.
//
// Every connection that serves reads says CLIENT TRACKING on connect (tracking_setup), and its
// invalidation pushes arrive on that same connection, in order with the replies. A request that
// opts in (request::options::cache) and holds only cacheable reads is answered from memory when
// every read hits; otherwise the reads that missed go to the server, and their replies are kept
// unless their key was invalidated while they were out (a version per key, an epoch for
// everything). Any other request goes to the topology unchanged, and the keys it writes are
// dropped before it is sent, so that this client reads its own writes.
//
// MGET, HMGET and EXISTS are kept per key (per field for HMGET): an MGET of 1,024 keys of which
// 1,000 are hot asks the server for 24. Every other read is kept whole, by its exact arguments.
//
// Never stale: an entry goes as its invalidation arrives; every entry goes when a connection is
// lost (the server forgets what it tracked for it), on "invalidate" with no key (FLUSHALL, a
// full resync of a replica), on a Sentinel switch, and, on a cluster, when its slot changes
// master; with OPTIN on a cluster, a read that was redirected on its way is not kept (it went
// again without its CLIENT CACHING). Bounded: a byte budget with least-recently-used eviction
// (CLOCK: a hit marks its entry, eviction gives marked ones a second chance) and an age limit.
//
// Runs on the client's executor only; calls from other threads are dispatched there.
#pragma once

#include "../topology/topology.hpp"

#include <akv/client.hpp>

#include <boost/intrusive/list.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace akv::detail {

class near_cache {
public:
    using executor_type = connection::executor_type;
    using handler_type = asio::any_completion_handler<connection::exec_signature>;
    using listener = std::function<void(std::span<const std::string_view>)>;

    near_cache(executor_type ex, const config& cfg, topology& topo);
    ~near_cache();
    near_cache(const near_cache&) = delete;
    near_cache& operator=(const near_cache&) = delete;

    // CLIENT TRACKING on, as `opts` asks (BCAST with its prefixes, OPTIN).
    static request tracking_setup(const cache_options& opts);

    // `req` answered from memory now if every read of it hits (client::try_cached).
    bool try_answer(const request& req, reply_adapter adapter);

    // As topology::start_exec, through the cache.
    void start_exec(handler_type handler, executor_type handler_ex, const request* req,
                    reply_adapter adapter);

    // An "invalidate" push of any connection.
    void on_invalidation(std::span<const resp::node> nodes, std::string_view message);
    // The client's events: a lost connection, a failover or a slot move.
    void on_event(const client_event& e);
    void flush();

    std::size_t add_listener(listener l);
    void remove_listener(std::size_t id);
    void add_stats(cache_stats& into) const;

    // One cached reply (a whole reply, or one element of an MGET or HMGET, or one EXISTS
    // count), shared so that a request answered partly from memory keeps it while its misses
    // are out.
    struct value {
        std::string bytes;
        std::vector<resp::node> nodes; // offsets into bytes
    };

private:
    using clock = std::chrono::steady_clock;
    using lru_hook = boost::intrusive::list_member_hook<>;

    // What a command's reply is made of: the whole reply (GET, HGETALL, ...), one element per
    // key (MGET, HMGET: an array of them), or one count per key (EXISTS: their sum).
    enum class shape : std::uint8_t { whole, elements, count };

    struct key_state;

    struct entry {
        std::string id; // the piece as a command, canonical: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        key_state* key = nullptr;
        std::shared_ptr<const value> val;
        clock::time_point expires;
        std::size_t bytes = 0;   // counted against the budget
        bool referenced = false; // hit since eviction last came round (CLOCK)
        lru_hook lru;
        lru_hook same_key;
    };

    using lru_list =
        boost::intrusive::list<entry, boost::intrusive::member_hook<entry, lru_hook, &entry::lru>,
                               boost::intrusive::constant_time_size<false>>;
    using key_list =
        boost::intrusive::list<entry,
                               boost::intrusive::member_hook<entry, lru_hook, &entry::same_key>,
                               boost::intrusive::constant_time_size<false>>;

    struct key_state {
        std::string key;
        std::uint64_t version = 0;   // invalidations of this key so far
        std::uint32_t in_flight = 0; // reads of it out at the server
        key_list entries;
    };

    // One command of a request being answered.
    struct command {
        shape how = shape::whole;
        std::string_view name;              // canonical (upper case)
        std::vector<std::string_view> args; // after the name
        std::size_t first_piece = 0;        // into the request's list of pieces
        std::size_t pieces = 1;
        std::string_view raw;   // its bytes in the request
        bool canonical = false; // named as the table names it: `raw` is its id
    };

    struct fetch;

    // Whether `name` is a cacheable read, its shape and its canonical (upper case) name.
    static bool cacheable(std::string_view name, shape& how, std::string_view& canonical);
    void exec_now(handler_type handler, executor_type handler_ex, const request* req,
                  reply_adapter adapter);
    // Fills commands_ when every command of `req` is a cacheable read; false otherwise.
    bool classify(const request& req);
    std::string_view piece_key(const command& cmd, std::size_t piece) const;
    void piece_id(const command& cmd, std::size_t piece, std::string& out) const;
    // The id of the command as a whole: its own bytes, or rebuilt into `scratch`.
    std::string_view whole_id(const command& cmd, std::string& scratch) const;
    bool on_executor() const noexcept;
    bool fits(const reply_adapter& adapter) const noexcept; // one slot per command of commands_
    // Looks every piece of commands_ up (found_, whole_); the number that missed.
    std::size_t lookup_all();
    // Answers commands_ from found_ and whole_ (every piece hit); the bytes delivered.
    std::size_t answer(const reply_adapter& adapter);
    void touch(entry& e);
    // The live entry of a piece id, or null (one past its age limit is dropped).
    entry* lookup(std::string_view id, clock::time_point now);
    void start_fetch(handler_type handler, executor_type handler_ex, const request& req,
                     reply_adapter adapter, std::size_t pieces);
    void fetch_done(std::unique_ptr<fetch> f, boost::system::error_code ec);
    std::uint64_t redirects() const;
    // Hands command `index`'s reply to `adapter`, made of its pieces' values.
    void deliver(const reply_adapter& adapter, std::size_t index, const command& cmd,
                 std::span<const value* const> pieces, std::size_t& bytes);
    void insert(std::string_view id, key_state& key, std::shared_ptr<const value> v);
    void drop(entry& e);
    void invalidate_key(std::string_view key);
    void flush_all();
    void drop_moved_slots();
    void note_writes(const request& req);
    void notify(std::span<const std::string_view> keys);
    key_state& key_of(std::string_view key);
    void release_key(key_state& k);
    bool tracked_prefix(std::string_view key) const;

    executor_type ex_;
    cache_options opts_;
    bool cluster_ = false;
    topology& topo_;

    std::unordered_map<std::string_view, std::unique_ptr<entry>> entries_;  // by id
    std::unordered_map<std::string_view, std::unique_ptr<key_state>> keys_; // by key
    std::unordered_map<std::string_view, fetch*> solo_inflight_; // one read out, by its id
    lru_list lru_;            // most recently used first
    std::uint64_t epoch_ = 0;
    std::uint64_t sync_answers_ =
        0; // try_answer calls // flushes so far: a read out across one is not kept
    cache_stats stats_;
    std::vector<std::pair<std::size_t, listener>> listeners_;
    std::size_t next_listener_ = 0;
    std::vector<std::string> slot_owner_; // cluster: each slot's master as "host:port"

    // Scratch, reused by every request (one executor, no re-entry).
    std::vector<command> commands_;
    std::size_t command_count_ = 0;
    std::vector<entry*> found_;
    std::vector<entry*> whole_; // per command: an HMGET found whole
    std::vector<const value*> values_;
    std::vector<std::string_view> invalidated_;
    std::string id_;
    std::string message_;
    std::vector<resp::node> nodes_;
    std::vector<std::string_view> args_;
    std::vector<std::string_view> keys_scratch_;
};

} // namespace akv::detail
