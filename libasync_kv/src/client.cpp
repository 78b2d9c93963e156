#include <akv/client.hpp>

#include "cache/near_cache.hpp"
#include "topology/connection_pool.hpp"
#include "topology/topology.hpp"

#include <akv/detail/complete_on.hpp>

#include <boost/asio/dispatch.hpp>

namespace akv {

client::client(executor_type ex, config cfg)
    : ex_(std::move(ex))
    , cfg_(detail::connection_config(std::move(cfg)))
    , pool_(std::make_unique<detail::connection_pool>(ex_, cfg_))
    , topology_(
          detail::make_topology(ex_, cfg_, *pool_, [this](const client_event& e) { emit(e); })) {
    if (cfg_.cache.kind == cache_options::mode::off) return;
    cache_ = std::make_unique<detail::near_cache>(ex_, cfg_, *topology_);
    topology_->enable_tracking(
        detail::near_cache::tracking_setup(cfg_.cache),
        [c = cache_.get()](std::span<const resp::node> nodes, std::string_view message) {
            c->on_invalidation(nodes, message);
        });
}

client::~client() = default;

asio::awaitable<void> client::run() {
    pool_->restart();
    co_await topology_->run();
}

void client::cancel() {
    asio::dispatch(ex_, [this] {
        topology_->cancel();
        pool_->cancel();
    });
}

void client::start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                        executor_type handler_ex, const request* req,
                        detail::reply_adapter adapter) {
    if (cache_)
        cache_->start_exec(std::move(handler), std::move(handler_ex), req, adapter);
    else
        topology_->start_exec(std::move(handler), std::move(handler_ex), req, adapter);
}

void client::start_exec_on(link_id link,
                           asio::any_completion_handler<connection::exec_signature> handler,
                           executor_type handler_ex, const request* req,
                           detail::reply_adapter adapter) {
    connection* c = topology_->link(link);
    if (!c) {
        detail::complete_on(handler_ex, std::move(handler),
                            boost::system::error_code(error::connection_closed), std::size_t{0});
        return;
    }
    c->start_exec(std::move(handler), std::move(handler_ex), req, adapter);
}

void client::start_receive_push(asio::any_completion_handler<connection::push_signature> handler,
                                executor_type handler_ex) {
    topology_->main().start_receive_push(std::move(handler), std::move(handler_ex));
}

bool client::is_connected() const noexcept {
    return topology_->main().is_connected();
}

bool client::is_connected(link_id link) const {
    const connection* c = topology_->link(link);
    return c && c->is_connected();
}

std::string client::last_error_message() const {
    return topology_->last_error_message();
}

client_stats client::stats() const {
    client_stats s;
    topology_->add_stats(s);
    pool_->add_stats(s.connections);
    s.blocking_connections = pool_->size();
    if (cache_) cache_->add_stats(s.cache);
    return s;
}

endpoint client::remote_endpoint() const {
    return topology_->main().remote_endpoint();
}

std::vector<endpoint> client::masters() const {
    return topology_->masters();
}

std::optional<endpoint> client::master_of(std::uint16_t slot) const {
    return topology_->master_of(slot);
}

void client::set_event_handler(std::function<void(const client_event&)> handler) {
    on_event_ = std::move(handler);
}

std::size_t client::add_event_listener(std::function<void(const client_event&)> listener) {
    listeners_.emplace_back(++next_listener_, std::move(listener));
    return next_listener_;
}

void client::remove_event_listener(std::size_t id) {
    std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
}

void client::emit(const client_event& e) {
    if (cache_) cache_->on_event(e); // before anyone may read through it again
    if (on_event_) on_event_(e);
    // By index: a listener may add another (which then hears the next event, not this one).
    const std::size_t n = listeners_.size();
    for (std::size_t i = 0; i < n && i < listeners_.size(); ++i)
        listeners_[i].second(e);
}

std::size_t client::add_invalidation_listener(
    std::function<void(std::span<const std::string_view> keys)> listener) {
    return cache_ ? cache_->add_listener(std::move(listener)) : 0;
}

void client::remove_invalidation_listener(std::size_t id) {
    if (cache_) cache_->remove_listener(id);
}

bool client::try_cached_adapted(const request& req, detail::reply_adapter adapter) {
    return cache_ && cache_->try_answer(req, adapter);
}

void client::flush_cache() {
    if (cache_) cache_->flush();
}

void client::set_push_handler(std::function<void(link_id, resp::value&&)> handler) {
    topology_->set_push_sink(std::move(handler));
}

std::optional<link_id> client::link_for_channel(std::string_view channel) {
    return topology_->link_for_channel(channel);
}

void client::refresh_topology() {
    topology_->refresh();
}

} // namespace akv
