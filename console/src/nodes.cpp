#include "nodes.hpp"

#include <akv/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

#include <algorithm>

namespace akv::console::detail {

// ---- node_links

node_links::node_links(client& redis, std::chrono::milliseconds timeout)
    : redis_(redis)
    , timeout_(timeout)
    , self_(std::make_shared<node_links*>(this)) {}

node_links::~node_links() {
    close();
    // A client that has stopped may be gone already (an application may destroy it first):
    // its listener then stays, reaching nothing once self_ is gone.
    if (listener_ && !client_stopped_) redis_.remove_event_listener(*listener_);
}

std::shared_ptr<node_links::link> node_links::at(const endpoint& node) {
    if (!listener_) {
        listener_ = redis_.add_event_listener([self = std::weak_ptr(self_)](const client_event& e) {
            if (const auto links = self.lock()) (*links)->on_client_event(e);
        });
    }
    const std::string address = to_string(node);
    if (const auto it = links_.find(address); it != links_.end() && !it->second->finished)
        return it->second;
    // What the client's own connections use (credentials, TLS, timeouts), to this node alone.
    config cfg = redis_.get_config();
    cfg.topology = config::mode::standalone;
    cfg.hosts = {node};
    cfg.unix_socket.clear();
    cfg.cache = {};
    cfg.read_from_replicas = false;
    auto l = std::make_shared<link>(redis_.get_executor(), std::move(cfg));
    asio::co_spawn(redis_.get_executor(), keep(l), [l](std::exception_ptr) { l->finished = true; });
    links_[address] = l;
    return l;
}

asio::awaitable<void> node_links::keep(std::shared_ptr<link> l) {
    // A connection cancelled before its run() began would run on regardless.
    if (l->closed) co_return;
    co_await l->conn.run();
}

void node_links::throw_failure(boost::system::error_code ec, const endpoint& node, const link& l) {
    std::string what = to_string(node);
    if (!l.conn.is_connected() && !l.conn.last_error_message().empty())
        what += " (" + l.conn.last_error_message() + ")";
    throw boost::system::system_error(ec, what);
}

void node_links::retain(const std::vector<endpoint>& nodes) {
    std::set<std::string> kept;
    for (const auto& n : nodes)
        kept.insert(to_string(n));
    for (auto it = links_.begin(); it != links_.end();) {
        if (kept.count(it->first)) {
            ++it;
            continue;
        }
        it->second->closed = true;
        it->second->conn.cancel();
        it = links_.erase(it);
    }
}

void node_links::close() {
    retain({});
}

void node_links::on_client_event(const client_event& e) {
    if (e.link != main_link) return;
    if (e.what == client_event::kind::stopped) {
        client_stopped_ = true;
        close();
    } else if (e.what == client_event::kind::connected) {
        client_stopped_ = false;
    }
}

asio::awaitable<void> all_of(std::vector<asio::awaitable<void>> tasks) {
    if (tasks.empty()) co_return;
    const auto ex = co_await asio::this_coro::executor;
    using spawned = decltype(asio::co_spawn(ex, std::move(tasks.front()), asio::deferred));
    std::vector<spawned> ops;
    ops.reserve(tasks.size());
    for (auto& t : tasks)
        ops.push_back(asio::co_spawn(ex, std::move(t), asio::deferred));
    auto [order, failures] =
        co_await asio::experimental::make_parallel_group(std::move(ops))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (const std::exception_ptr& e : failures)
        if (e) std::rethrow_exception(e);
}

} // namespace akv::console::detail
