#include "remote/registration.hpp"

#include <algorithm>

#include "bus/bus_error.hpp"

namespace ebus::remote {

namespace {

bool name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::string shown_name(std::string_view s) {
  // Names in reasons are cut short: the reason goes back to the client and into the log.
  constexpr std::size_t shown = 64;
  std::string out = "\"";
  out.append(s.substr(0, shown));
  if (s.size() > shown) out += "...";
  out += '"';
  return out;
}

}  // namespace

bool valid_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_length &&
         std::all_of(name.begin(), name.end(), name_char);
}

expected<registration, std::string> parse_registration(const bus::message& m) {
  if (m.route.resource != "module" || m.route.operation != "add") {
    return fail("not a registration: expected resource \"module\" and operation \"add\", got " +
                shown_name(m.route.resource) + " and " + shown_name(m.route.operation));
  }
  if (!m.header.sync) return fail(std::string("not a registration: header.sync must be true"));
  if (!valid_name(m.route.source)) {
    return fail("invalid module name " + shown_name(m.route.source) + ": 1 to " +
                std::to_string(max_name_length) + " characters from A-Za-z0-9._-");
  }
  registration r{m.route.source, {}};
  using kind = bus::content::kind;
  const auto& c = m.content;
  switch (c.type()) {
    case kind::null:
      break;
    case kind::text:
      if (!c.bytes().empty()) {
        return fail(
            std::string("invalid registration content: expected \"\", null or "
                        "{\"group\":\"<name>\"}"));
      }
      break;
    case kind::json: {
      const auto& v = c.json_value();
      if (!v.is_object()) {
        return fail(
            std::string("invalid registration content: expected \"\", null or "
                        "{\"group\":\"<name>\"}"));
      }
      if (const auto g = v.find("group"); g != v.end()) {
        if (!g->is_string()) return fail(std::string("invalid group: not a string"));
        r.group = g->get<std::string>();
        if (!r.group.empty() && !valid_name(r.group)) {
          return fail("invalid group name " + shown_name(r.group) + ": 1 to " +
                      std::to_string(max_name_length) + " characters from A-Za-z0-9._-");
        }
      }
      if (const auto b = v.find("batch"); b != v.end()) {
        if (!b->is_boolean()) return fail(std::string("invalid batch: not true or false"));
        r.batch = b->get<bool>();
      }
      break;
    }
    case kind::binary:
      return fail(
          std::string("invalid registration content: expected \"\", null or "
                      "{\"group\":\"<name>\"}"));
  }
  if (r.group.empty()) r.group = r.name;  // beehive: a group named after the module
  return r;
}

nlohmann::json registration_content(std::vector<std::string> modules,
                                    const std::map<std::string, std::vector<std::string>>& groups) {
  std::sort(modules.begin(), modules.end());
  nlohmann::json g = nlohmann::json::object();
  for (const auto& [name, members] : groups) {
    auto sorted = members;
    std::sort(sorted.begin(), sorted.end());
    g[name] = std::move(sorted);
  }
  return nlohmann::json{{"modules", std::move(modules)}, {"groups", std::move(g)}};
}

expected<destination, std::string> parse_destination(std::string_view text) {
  if (text.empty()) return fail(std::string("no route.destination"));
  if (text.starts_with(group_prefix)) {
    text.remove_prefix(group_prefix.size());
    if (text.empty()) return fail(std::string("empty group name in route.destination"));
    return destination{destination::kind::group, std::string(text)};
  }
  return destination{destination::kind::module, std::string(text)};
}

std::string error_reason(std::error_code ec) {
  if (ec.category() != bus::bus_category()) return ec.message();
  switch (static_cast<bus::bus_errc>(ec.value())) {
    case bus::bus_errc::no_route:
      return "no_route";
    case bus::bus_errc::queue_full:
      return "queue_full";
    case bus::bus_errc::timeout:
      return "timeout";
    case bus::bus_errc::cancelled:
      return "cancelled";
    case bus::bus_errc::module_removed:
      return "module_removed";
    case bus::bus_errc::duplicate_module:
      return "duplicate_module";
    case bus::bus_errc::no_pending_request:
      return "no_pending_request";
    case bus::bus_errc::duplicate_request:
      return "duplicate_request";
    case bus::bus_errc::invalid_message:
      return "invalid_message";
    case bus::bus_errc::memory_budget:
      return "memory_budget";
    case bus::bus_errc::too_large:
      return "too_large";
  }
  return ec.message();
}

}  // namespace ebus::remote
