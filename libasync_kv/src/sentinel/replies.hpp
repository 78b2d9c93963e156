// What a sentinel's replies and messages mean, apart from any socket: the master's address,
// which replicas may serve reads, and whether a +switch-master message is about our master.
#pragma once

#include <akv/config.hpp>
#include <akv/resp/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::sentinel {

// Whether a comma-separated flags field ("s_down,slave") holds `flag`.
bool has_flag(std::string_view flags, std::string_view flag);

// SENTINEL GET-MASTER-ADDR-BY-NAME: [host, port], or null when the sentinel does not know the
// name. Returns nullopt for null; throws std::invalid_argument for any other shape.
std::optional<endpoint> master_address(const resp::value& reply);

// SENTINEL REPLICAS: the replicas fit to serve reads, in the sentinel's order: not subjectively
// or objectively down, not disconnected, and reporting the replica role (a demoted master is
// listed as a replica before it has been told to follow).
std::vector<endpoint> usable_replicas(const resp::value& reply);

// A push on the +switch-master channel: "<name> <old-ip> <old-port> <new-ip> <new-port>".
// The new master if the message is about `master_name`, otherwise nullopt.
std::optional<endpoint> switched_master(const resp::value& push, std::string_view master_name);

} // namespace akv::sentinel
