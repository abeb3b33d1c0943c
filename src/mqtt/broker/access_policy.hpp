#pragma once
// Who may publish to, receive from and subscribe to which topics: the ACL in force (mosquitto's
// acl_file format, src/mqtt/auth/acl.hpp), shared by the broker and its sessions, and what it
// refused. Without an ACL every client may do everything. The EventBus's own injections and
// interceptions are not clients: only deliveries to clients are checked on their way out.
//
// Thread safety: loop thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/auth/acl.hpp"

namespace ebus::mqtt::broker {

struct access_policy {
  /// Null: no ACL. Replaced as a whole on reload; sessions see the new rules at once.
  std::shared_ptr<const auth::acl> acl;

  std::uint64_t denied_publishes = 0;      ///< client PUBLISHes and wills not routed
  std::uint64_t denied_deliveries = 0;     ///< live and retained messages not sent to a client
  std::uint64_t denied_subscriptions = 0;  ///< filters answered SUBACK 0x80

  [[nodiscard]] bool allows(auth::acl_access access, std::string_view topic,
                            std::string_view client_id,
                            std::optional<std::string_view> username) const {
    if (!acl) return true;
    return acl->allows(access, topic, auth::client_identity{client_id, username});
  }
};

}  // namespace ebus::mqtt::broker
