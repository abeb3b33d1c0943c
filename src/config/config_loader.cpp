#include "config/config_loader.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "common/file.hpp"
#include "config/checks.hpp"
#include "mqtt/client/broker_url.hpp"

namespace ebus::config {
namespace {

namespace key = detail::key;

constexpr std::size_t max_quoted_value = 40;
// A configuration file is a few KiB; a path to something else must not fill memory.
constexpr std::size_t max_config_bytes = std::size_t{16} * 1024 * 1024;
constexpr auto int64_min = std::numeric_limits<std::int64_t>::min();
constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t int32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();
constexpr std::int64_t uint32_max = std::numeric_limits<std::uint32_t>::max();

// yaml-cpp's tags: "?" for a plain scalar, "!" for a quoted one.
constexpr std::string_view plain_tag = "?";
constexpr std::string_view quoted_tag = "!";
constexpr std::string_view int_tag = "tag:yaml.org,2002:int";
constexpr std::string_view bool_tag = "tag:yaml.org,2002:bool";

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Go's encoding/json matches keys case-insensitively when no field matches exactly; every key
// we know has a distinct folded form, so exact-first and fold-only give the same field.
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// A value for a message: quoted, control characters escaped, long values cut.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == max_quoted_value) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += s[i];
    } else if (c < 0x20 || c == 0x7F) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    } else {
      out += s[i];
    }
  }
  return out + "\"";
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return n.Tag() == quoted_tag ? "the string " + quoted(n.Scalar()) : quoted(n.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "null";
}

std::string key_text(const YAML::Node& k) {
  if (k.IsScalar()) return k.Scalar();
  if (k.IsNull()) return "null";
  return "<" + describe(k) + ">";
}

// Decimal only, [-+]?[0-9]+ (Go would also take 0x1F, 0o17 and 1_000).
enum class int_parse { ok, syntax, range };
int_parse parse_decimal(std::string_view s, std::int64_t& out) {
  const bool negative = !s.empty() && s.front() == '-';
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  if (s.empty()) return int_parse::syntax;
  for (const char c : s) {
    if (c < '0' || c > '9') return int_parse::syntax;
  }
  std::uint64_t magnitude = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude);
  if (ec != std::errc{} || end != s.data() + s.size()) return int_parse::range;
  const auto limit = static_cast<std::uint64_t>(int64_max);
  if (negative) {
    if (magnitude > limit + 1) return int_parse::range;
    out = magnitude == limit + 1 ? int64_min : -static_cast<std::int64_t>(magnitude);
  } else {
    if (magnitude > limit) return int_parse::range;
    out = static_cast<std::int64_t>(magnitude);
  }
  return int_parse::ok;
}

// --- Go's reading of a plain scalar into a string field ---------------------------------------
// edgecore reads its file with sigs.k8s.io/yaml: go-yaml v2 resolves a plain scalar with YAML 1.1
// rules, and a number or boolean that lands in a Go string field is written back as Go prints it
// (ints in decimal, floats with FormatFloat(v, 'g', -1, 32), booleans as true/false). Anything
// else, and every quoted scalar, stays as written.

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? (go-yaml's yamlStyleFloat).
bool yaml_style_float(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    return i > from;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  } else {
    if (!digits()) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// Go's strconv.ParseUint(s, 0, 64) without sign: 0x, 0o, 0b prefixes, a leading 0 for octal.
std::optional<std::uint64_t> go_parse_uint(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int base = 10;
  if (s.front() == '0') {
    const char p = s.size() >= 3 ? ascii_lower(s[1]) : '\0';
    if (p == 'b' || p == 'o' || p == 'x') {
      base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
      if (s.empty()) return 0;
    }
  }
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n, base);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return n;
}

// Go's FormatFloat(v, 'g', -1, 32): the shortest digits of the float32, in %e form when the
// exponent is below -4 or at least 6 (21 for integers would be %v; this is 'g').
std::string go_format_float32(double v) {
  const auto f = static_cast<float>(v);
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  std::array<char, 64> buf{};
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), f, std::chars_format::scientific);
  const std::string sci(buf.data(), r.ptr);
  const int exponent = std::stoi(sci.substr(sci.find('e') + 1));
  if (exponent < -4 || exponent >= 6) return sci;
  r = std::to_chars(buf.data(), buf.data() + buf.size(), f, std::chars_format::fixed);
  return std::string(buf.data(), r.ptr);
}

std::optional<std::string> go_string_of_plain_scalar(std::string_view in) {
  static constexpr std::array<std::string_view, 11> trues = {
      "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  static constexpr std::array<std::string_view, 11> falses = {
      "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"};
  for (const auto t : trues) {
    if (in == t) return "true";
  }
  for (const auto f : falses) {
    if (in == f) return "false";
  }
  for (const auto inf : {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}) {
    if (in == inf) return "+Inf";
  }
  for (const auto inf : {"-.inf", "-.Inf", "-.INF"}) {
    if (in == inf) return "-Inf";
  }
  for (const auto nan : {".nan", ".NaN", ".NAN"}) {
    if (in == nan) return "NaN";
  }
  if (in.empty()) return std::nullopt;
  const char first = in.front();
  const auto parse_double = [](std::string_view text) -> std::optional<double> {
    double d = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    // Out of range is an error for Go too (ParseFloat returns ErrRange): the text stays.
    if (ec != std::errc{} || end != text.data() + text.size() || std::isinf(d)) {
      return std::nullopt;
    }
    return d;
  };
  if (first == '.') {
    if (!yaml_style_float(in)) return std::nullopt;
    if (const auto d = parse_double(in)) return go_format_float32(*d);
    return std::nullopt;
  }
  if (!(first == '+' || first == '-' || (first >= '0' && first <= '9'))) return std::nullopt;
  std::string plain;
  for (const char c : in) {
    if (c != '_') plain += c;
  }
  // A timestamp (2001-12-14) stays text when read into a string; it never parses as a number.
  std::string_view digits = plain;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) digits.remove_prefix(1);
  if (const auto n = go_parse_uint(digits)) {
    if (!negative) return std::to_string(*n);  // int64, or uint64 beyond it
    constexpr auto int64_magnitude = std::uint64_t{1} << 63;
    if (*n <= int64_magnitude) return *n == 0 ? std::string("0") : "-" + std::to_string(*n);
  }
  if (yaml_style_float(plain)) {
    // from_chars takes no leading '+'.
    std::string_view text = plain;
    if (text.front() == '+') text.remove_prefix(1);
    if (const auto d = parse_double(text)) return go_format_float32(*d);
    return std::nullopt;
  }
  if (plain.starts_with("0b") || plain.starts_with("-0b")) {
    // Binary without Go's base-0 prefix rules (go-yaml's own branch); from_chars takes no sign.
    const bool minus = plain.front() == '-';
    const std::string_view bits = std::string_view(plain).substr(minus ? 3 : 2);
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n, 2);
    if (ec == std::errc{} && end == bits.data() + bits.size() && !bits.empty() &&
        n <= (std::uint64_t{1} << 63) - (minus ? 0 : 1)) {
      return minus && n != 0 ? "-" + std::to_string(n) : std::to_string(n);
    }
  }
  return std::nullopt;
}

// One key of a mapping, found by name: the path as written in the file, and its value.
struct entry {
  std::string path;
  YAML::Node value;
};

// The entries of one mapping that we read, by canonical name.
class section {
 public:
  const entry* get(std::string_view name) const {
    const auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }

 private:
  friend class loader;
  std::map<std::string_view, entry, std::less<>> entries_;
};

class loader {
 public:
  explicit loader(daemon_config defaults) : cfg_(std::move(defaults)) {}

  void load(const YAML::Node& root);

  daemon_config cfg_;
  std::vector<config_issue> errors_;
  std::vector<config_issue> warnings_;
  /// Canonical path -> the path as written in the file, for every value the file set.
  std::map<std::string, std::string, std::less<>> written_;

 private:
  section pick(const YAML::Node& map, const std::string& path,
               std::span<const std::string_view> names, bool owned);
  std::optional<YAML::Node> mapping(const entry* e);

  void set(std::string_view canonical, const entry& e);
  void defer(const char* canonical, const entry& e, std::string message);
  void error(const entry& e, std::string message) {
    errors_.push_back({e.path, std::move(message)});
  }

  std::optional<std::int64_t> read_int(const entry* e, std::int64_t min, std::int64_t max);
  void read_bool(const entry* e, std::string_view canonical, bool& out);
  void read_optional_bool(const entry* e, std::string_view canonical, std::optional<bool>& out);
  void read_string(const entry* e, std::string_view canonical, std::string& out);
  template <class T>
  void read_unsigned(const entry* e, const char* canonical, std::int64_t max, T& out);
  void read_ids(const entry* e, const char* canonical, std::vector<std::uint32_t>& out);
  void read_mode(const entry* e);
  void read_queue_size(const entry* e);

  void old_mqtt(const YAML::Node& map, const std::string& path);
  void old_edgehub(const YAML::Node& map, const std::string& path);
  void eventbus(const YAML::Node& map, const std::string& path);
  void tls(const YAML::Node& map, const std::string& path);
  void listener(const YAML::Node& map, const std::string& path, const std::string& canonical,
                bool with_url, listener_config& out);
  void listeners(const entry& e);
  void limits(const section& s);
  void finish();
  config_issue written(config_issue issue) const;

  bool in_old_layout_ = false;
  std::optional<std::string> old_mqtt_path_;
  /// Canonical path -> where the v1.1 layout set it, until the current layout overrides it.
  std::map<std::string, std::string, std::less<>> old_written_;
  /// Out-of-range values daemon_config cannot hold; errors when the key is in use (the eventbus
  /// keys when it is enabled, the embedded broker's always).
  std::map<std::string, config_issue, std::less<>> deferred_;
  /// Canonical paths of listener entries that are not mappings.
  std::vector<std::string> broken_;
};

section loader::pick(const YAML::Node& map, const std::string& path,
                     std::span<const std::string_view> names, bool owned) {
  section out;
  for (const auto& kv : map) {
    const std::string text = key_text(kv.first);
    std::string child = path;
    if (!child.empty()) child += '.';
    child += text;
    const std::string_view* name = nullptr;
    if (kv.first.IsScalar()) {
      for (const auto& n : names) {
        if (iequals(n, text)) {
          name = &n;
          break;
        }
      }
    }
    if (name == nullptr) {
      if (owned) warnings_.push_back({std::move(child), "unknown key, ignored"});
      continue;
    }
    if (const auto it = out.entries_.find(*name); it != out.entries_.end()) {
      warnings_.push_back(
          {it->second.path, "set again as '" + child + "'; the last value is used"});
      out.entries_.erase(it);  // never assign a YAML::Node: that rewrites the node it refers to
    }
    out.entries_.emplace(*name, entry{std::move(child), kv.second});
  }
  return out;
}

std::optional<YAML::Node> loader::mapping(const entry* e) {
  if (e == nullptr || e->value.IsNull()) return std::nullopt;
  if (!e->value.IsMap()) {
    error(*e, "expected a mapping, got " + describe(e->value));
    return std::nullopt;
  }
  return e->value;
}

void loader::set(std::string_view canonical, const entry& e) {
  if (in_old_layout_) {
    old_written_[std::string(canonical)] = e.path;
  } else if (const auto it = old_written_.find(canonical); it != old_written_.end()) {
    warnings_.push_back({it->second, "overridden by " + e.path});
    old_written_.erase(it);
  }
  written_[std::string(canonical)] = e.path;
  if (const auto it = deferred_.find(canonical); it != deferred_.end()) deferred_.erase(it);
}

void loader::defer(const char* canonical, const entry& e, std::string message) {
  set(canonical, e);
  deferred_[canonical] = config_issue{e.path, std::move(message)};
}

std::optional<std::int64_t> loader::read_int(const entry* e, std::int64_t min, std::int64_t max) {
  if (e == nullptr || e->value.IsNull()) return std::nullopt;
  const auto& v = e->value;
  std::int64_t n = 0;
  const auto parsed = v.IsScalar() && (v.Tag() == plain_tag || v.Tag() == int_tag)
                          ? parse_decimal(v.Scalar(), n)
                          : int_parse::syntax;
  if (parsed == int_parse::syntax) {
    error(*e, "expected an integer, got " + describe(v));
    return std::nullopt;
  }
  if (parsed == int_parse::range || n < min || n > max) {
    error(*e, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                  ", got " + std::string(v.Scalar().substr(0, max_quoted_value)));
    return std::nullopt;
  }
  return n;
}

void loader::read_bool(const entry* e, std::string_view canonical, bool& out) {
  if (e == nullptr || e->value.IsNull()) return;
  const auto& v = e->value;
  if (v.IsScalar() && (v.Tag() == plain_tag || v.Tag() == bool_tag)) {
    // Only true and false: Go's YAML 1.1 yes/no/on/off are a classic source of surprises.
    if (iequals(v.Scalar(), "true") || iequals(v.Scalar(), "false")) {
      out = iequals(v.Scalar(), "true");
      set(canonical, *e);
      return;
    }
  }
  error(*e, "expected true or false, got " + describe(v));
}

// A bool whose absence means something of its own (allowAnonymous); null keeps it unset.
void loader::read_optional_bool(const entry* e, std::string_view canonical,
                                std::optional<bool>& out) {
  if (e == nullptr || e->value.IsNull()) return;
  bool value = false;
  const std::size_t before = errors_.size();
  read_bool(e, canonical, value);
  if (errors_.size() == before) out = value;
}

// Any scalar is taken as text, quoted or not: `hostnameOverride: 1234` means the name "1234".
// An unquoted number or boolean is read as edgecore reads it (go_string_of_plain_scalar), with a
// warning when that is not the text as written: `0x1F` is "31", `yes` is "true".
void loader::read_string(const entry* e, std::string_view canonical, std::string& out) {
  if (e == nullptr || e->value.IsNull()) return;
  if (!e->value.IsScalar()) {
    error(*e, "expected a string, got " + describe(e->value));
    return;
  }
  out = e->value.Scalar();
  if (e->value.Tag() == plain_tag) {
    if (auto go = go_string_of_plain_scalar(out); go && *go != out) {
      // Secrets are never repeated in messages.
      const bool secret = canonical == key::password;
      warnings_.push_back({e->path, "an unquoted number or boolean, read as edgecore reads it" +
                                        (secret ? std::string() : ": " + quoted(*go)) +
                                        "; quote the value to keep the text as written"});
      out = std::move(*go);
    }
  }
  set(canonical, *e);
}

template <class T>
void loader::read_unsigned(const entry* e, const char* canonical, std::int64_t max, T& out) {
  if (const auto n = read_int(e, 0, max)) {
    out = static_cast<T>(*n);
    set(canonical, *e);
  }
}

// A sequence of user or group ids (uint32); each bad element is an error at its index.
void loader::read_ids(const entry* e, const char* canonical, std::vector<std::uint32_t>& out) {
  if (e == nullptr || e->value.IsNull()) return;
  if (!e->value.IsSequence()) {
    error(*e, "expected a sequence of integers, got " + describe(e->value));
    return;
  }
  std::vector<std::uint32_t> ids;
  bool ok = true;
  std::size_t index = 0;
  for (const auto& item : e->value) {
    const entry element{e->path + "[" + std::to_string(index++) + "]", item};
    if (item.IsNull()) {
      error(element, "expected an integer, got null");
      ok = false;
    } else if (const auto n = read_int(&element, 0, uint32_max)) {
      ids.push_back(static_cast<std::uint32_t>(*n));
    } else {
      ok = false;
    }
  }
  if (!ok) return;
  out = std::move(ids);
  set(canonical, *e);
}

// Go int. daemon_config holds 0..255; validate() reports 3..255, the loader the rest.
void loader::read_mode(const entry* e) {
  if (const auto n = read_int(e, int64_min, int64_max)) {
    if (*n >= 0 && *n <= 255) {
      cfg_.eventbus.mode = static_cast<mqtt_mode>(*n);
      set(key::mode, *e);
    } else {
      defer(key::mode, *e, detail::mode_message(*n));
    }
  }
}

// Go int32. daemon_config holds no negative size, so the loader reports those (and 0, alike).
void loader::read_queue_size(const entry* e) {
  if (const auto n = read_int(e, int32_min, int32_max)) {
    if (*n > 0) {
      cfg_.eventbus.session_queue_size = static_cast<std::size_t>(*n);
      set(key::session_queue_size, *e);
    } else {
      defer(key::session_queue_size, *e, detail::positive_message(*n));
    }
  }
}

void loader::load(const YAML::Node& root) {
  if (!root.IsDefined() || root.IsNull()) {  // an empty file: all defaults
    finish();
    return;
  }
  if (!root.IsMap()) {
    errors_.push_back({"", "expected a mapping at the top level, got " + describe(root)});
    return;
  }
  // apiVersion and kind are accepted and not checked; every other top-level key belongs to
  // edgecore's other modules and is ignored silently.
  static constexpr std::string_view top_names[] = {"database", "modules", "mqtt", "edgehub"};
  const section top = pick(root, "", top_names, false);

  // The v1.1 layout first, so that the current layout overrides it whatever the key order.
  in_old_layout_ = true;
  if (const auto m = mapping(top.get("mqtt"))) {
    old_mqtt_path_ = top.get("mqtt")->path;
    old_mqtt(*m, *old_mqtt_path_);
  }
  if (const auto m = mapping(top.get("edgehub"))) old_edgehub(*m, top.get("edgehub")->path);
  in_old_layout_ = false;

  if (const auto m = mapping(top.get("database"))) {
    static constexpr std::string_view names[] = {"dataSource"};
    const section db = pick(*m, top.get("database")->path, names, false);
    read_string(db.get("dataSource"), key::data_source, cfg_.data_source);
  }
  if (const auto m = mapping(top.get("modules"))) {
    static constexpr std::string_view names[] = {"edged", "eventBus"};
    const section modules = pick(*m, top.get("modules")->path, names, false);
    if (const auto edged = mapping(modules.get("edged"))) {
      static constexpr std::string_view edged_names[] = {"hostnameOverride"};
      const section s = pick(*edged, modules.get("edged")->path, edged_names, false);
      read_string(s.get("hostnameOverride"), key::node_name, cfg_.node_name);
    }
    if (const auto eb = mapping(modules.get("eventBus"))) {
      eventbus(*eb, modules.get("eventBus")->path);
    }
  }
  finish();
}

void loader::old_mqtt(const YAML::Node& map, const std::string& path) {
  static constexpr std::string_view names[] = {"server", "internal-server", "mode",
                                               "qos",    "retain",          "session-queue-size"};
  const section s = pick(map, path, names, true);
  auto& eb = cfg_.eventbus;
  read_string(s.get("server"), key::server_external, eb.server_external);
  read_string(s.get("internal-server"), key::server_internal, eb.server_internal);
  read_mode(s.get("mode"));
  read_unsigned(s.get("qos"), key::qos, 255, eb.qos);
  read_bool(s.get("retain"), key::retain, eb.retain);
  read_queue_size(s.get("session-queue-size"));
}

void loader::old_edgehub(const YAML::Node& map, const std::string& path) {
  static constexpr std::string_view names[] = {"controller"};
  const section hub = pick(map, path, names, false);
  if (const auto controller = mapping(hub.get("controller"))) {
    static constexpr std::string_view controller_names[] = {"node-id"};
    const section s = pick(*controller, hub.get("controller")->path, controller_names, false);
    read_string(s.get("node-id"), key::node_name, cfg_.node_name);
  }
}

void loader::eventbus(const YAML::Node& map, const std::string& path) {
  static constexpr std::string_view names[] = {
      "enable",
      "mqttMode",
      "mqttQOS",
      "mqttRetain",
      "mqttSessionQueueSize",
      "mqttServerInternal",
      "mqttServerExternal",
      "mqttSubClientID",
      "mqttPubClientID",
      "mqttUsername",
      "mqttPassword",
      "eventBusTLS",
      "mqttMaxPacketSize",
      "mqttMaxConnections",
      "mqttMaxInflightMessages",
      "mqttQueueOverflowPolicy",
      "mqttConnectTimeoutSeconds",
      "mqttExternalBufferSize",
      "mqttReconnectMinMilliseconds",
      "mqttReconnectMaxMilliseconds",
      "mqttKeepAliveSeconds",
      "moduleSocket",
      "moduleStreamSocket",
      "moduleSocketMaxConnections",
      "moduleSocketMaxMessageBytes",
      "groupBacklogSize",
      "maxMemoryBytes",
      "mqttSessionQueueBytes",
      "mqttSlowSubscriberTimeoutMilliseconds",
      "mqttPacketTimeoutSeconds",
      "mqttMaxRetainedMessages",
      "mqttMaxRetainedBytes",
      "mqttMaxSubscriptionsPerClient",
      "mqttMaxTopicLength",
      "mqttMaxTopicLevels",
      "mqttMaxPersistentSessions",
      "mqttSessionExpirySeconds",
      "mqttExternalBufferBytes",
      "moduleInboxBytes",
      "groupBacklogBytes",
      "moduleSocketOutboundBytes",
      "maxRuntimeSubscriptions",
      "maxRuntimeSubscriptionBytes",
      "storeQueueSize",
      "storeQueueBytes",
      "storeShutdownTimeoutSeconds",
      "internalListener",
      "listeners",
      "passwordFile",
      "aclFile",
      "moduleSocketAllowedUids",
      "moduleSocketAllowedGids",
  };
  const section s = pick(map, path, names, true);
  auto& eb = cfg_.eventbus;
  read_bool(s.get("enable"), key::enable, eb.enable);
  read_mode(s.get("mqttMode"));
  read_unsigned(s.get("mqttQOS"), key::qos, 255, eb.qos);  // Go uint8
  read_bool(s.get("mqttRetain"), key::retain, eb.retain);
  read_queue_size(s.get("mqttSessionQueueSize"));
  read_string(s.get("mqttServerInternal"), key::server_internal, eb.server_internal);
  read_string(s.get("mqttServerExternal"), key::server_external, eb.server_external);
  read_string(s.get("mqttSubClientID"), key::sub_client_id, eb.sub_client_id);
  read_string(s.get("mqttPubClientID"), key::pub_client_id, eb.pub_client_id);
  read_string(s.get("mqttUsername"), key::username, eb.username);
  read_string(s.get("mqttPassword"), key::password, eb.password);
  if (const auto m = mapping(s.get("eventBusTLS"))) tls(*m, s.get("eventBusTLS")->path);

  read_unsigned(s.get("mqttMaxPacketSize"), key::max_packet_size, uint32_max, eb.max_packet_size);
  read_unsigned(s.get("mqttMaxConnections"), key::max_connections, uint32_max, eb.max_connections);
  read_unsigned(s.get("mqttMaxInflightMessages"), key::max_inflight, uint32_max, eb.max_inflight);
  if (const auto* e = s.get("mqttQueueOverflowPolicy")) {
    std::string text;
    const bool was_string = e->value.IsScalar();
    read_string(e, key::overflow, text);
    if (iequals(text, "dropNewest")) {
      eb.overflow = overflow_policy::drop_newest;
    } else if (iequals(text, "dropOldest")) {
      eb.overflow = overflow_policy::drop_oldest;
    } else if (iequals(text, "disconnect")) {
      eb.overflow = overflow_policy::disconnect;
    } else if (was_string) {
      error(*e, "expected dropNewest, dropOldest or disconnect, got " + describe(e->value));
    }
  }
  if (const auto n = read_int(s.get("mqttConnectTimeoutSeconds"), 0, uint32_max)) {
    eb.connect_timeout = std::chrono::seconds(*n);
    set(key::connect_timeout, *s.get("mqttConnectTimeoutSeconds"));
  }
  read_unsigned(s.get("mqttExternalBufferSize"), key::external_buffer_size, uint32_max,
                eb.external_buffer_size);
  if (const auto n = read_int(s.get("mqttReconnectMinMilliseconds"), 0, uint32_max)) {
    eb.reconnect_min = std::chrono::milliseconds(*n);
    set(key::reconnect_min, *s.get("mqttReconnectMinMilliseconds"));
  }
  if (const auto n = read_int(s.get("mqttReconnectMaxMilliseconds"), 0, uint32_max)) {
    eb.reconnect_max = std::chrono::milliseconds(*n);
    set(key::reconnect_max, *s.get("mqttReconnectMaxMilliseconds"));
  }
  if (const auto* e = s.get("mqttKeepAliveSeconds")) {
    if (const auto n = read_int(e, 0, uint32_max)) {
      if (*n <= 65535) {
        eb.keepalive_seconds = static_cast<std::uint16_t>(*n);
        set(key::keepalive, *e);
      } else {
        defer(key::keepalive, *e, detail::keepalive_message(*n));
      }
    }
  }
  read_string(s.get("moduleSocket"), key::module_socket, eb.module_socket);
  read_string(s.get("moduleStreamSocket"), key::module_stream_socket, eb.module_stream_socket);
  read_unsigned(s.get("moduleSocketMaxConnections"), key::module_socket_max_connections, uint32_max,
                eb.module_socket_max_connections);
  read_unsigned(s.get("moduleSocketMaxMessageBytes"), key::module_socket_max_message_bytes,
                uint32_max, eb.module_socket_max_message_bytes);
  read_unsigned(s.get("groupBacklogSize"), key::group_backlog_size, uint32_max,
                eb.group_backlog_size);
  limits(s);

  if (const auto m = mapping(s.get("internalListener"))) {
    set(key::internal_listener, *s.get("internalListener"));
    listener(*m, s.get("internalListener")->path, key::internal_listener, false,
             eb.internal_listener);
  }
  if (const auto* e = s.get("listeners")) listeners(*e);
  read_string(s.get("passwordFile"), key::password_file, eb.password_file);
  read_string(s.get("aclFile"), key::acl_file, eb.acl_file);
  read_ids(s.get("moduleSocketAllowedUids"), key::module_socket_allowed_uids,
           eb.module_socket_allowed_uids);
  read_ids(s.get("moduleSocketAllowedGids"), key::module_socket_allowed_gids,
           eb.module_socket_allowed_gids);
}

// One listener's keys; `canonical` is its current-layout path. internalListener has no url: it
// is mqttServerInternal.
void loader::listener(const YAML::Node& map, const std::string& path, const std::string& canonical,
                      bool with_url, listener_config& out) {
  namespace lk = key::listener;
  static constexpr std::string_view all_names[] = {lk::url,
                                                   lk::allow_anonymous,
                                                   lk::cert_file,
                                                   lk::key_file,
                                                   lk::ca_file,
                                                   lk::require_certificate,
                                                   lk::use_identity_as_username,
                                                   lk::path};
  const auto names = with_url ? std::span<const std::string_view>(all_names)
                              : std::span<const std::string_view>(all_names).subspan(1);
  const std::size_t warned = warnings_.size();
  const section s = pick(map, path, names, true);
  if (!with_url) {
    for (auto it = warnings_.begin() + static_cast<std::ptrdiff_t>(warned); it != warnings_.end();
         ++it) {
      if (it->path.starts_with(path) &&
          iequals(std::string_view(it->path).substr(path.size()), ".url")) {
        it->message += ": the URL of this listener is mqttServerInternal";
      }
    }
  }
  const auto at = [&](const char* name) { return canonical + "." + name; };
  if (with_url) read_string(s.get(lk::url), at(lk::url), out.url);
  read_optional_bool(s.get(lk::allow_anonymous), at(lk::allow_anonymous), out.allow_anonymous);
  read_string(s.get(lk::cert_file), at(lk::cert_file), out.cert_file);
  read_string(s.get(lk::key_file), at(lk::key_file), out.key_file);
  read_string(s.get(lk::ca_file), at(lk::ca_file), out.ca_file);
  read_bool(s.get(lk::require_certificate), at(lk::require_certificate), out.require_certificate);
  read_bool(s.get(lk::use_identity_as_username), at(lk::use_identity_as_username),
            out.use_identity_as_username);
  read_string(s.get(lk::path), at(lk::path), out.path);
}

void loader::listeners(const entry& e) {
  if (e.value.IsNull()) return;
  if (!e.value.IsSequence()) {
    error(e, "expected a sequence of mappings, got " + describe(e.value));
    return;
  }
  set(key::listeners, e);
  auto& out = cfg_.eventbus.listeners;
  out.clear();
  std::size_t index = 0;
  for (const auto& item : e.value) {
    const entry element{e.path + "[" + std::to_string(index) + "]", item};
    const std::string canonical = detail::listener_path(index++);
    // Kept even when it is not a mapping, so that later entries keep their index; its own
    // checks would only repeat the error.
    listener_config& l = out.emplace_back();
    if (!item.IsMap()) {
      error(element, "expected a mapping, got " + describe(item));
      broken_.push_back(canonical);
      continue;
    }
    set(canonical, element);
    listener(item, element.path, canonical, true, l);
  }
}

void loader::limits(const section& s) {
  auto& eb = cfg_.eventbus;
  const struct {
    const char* name;
    const char* canonical;
    std::size_t* out;
  } sizes[] = {
      {"maxMemoryBytes", key::max_memory_bytes, &eb.max_memory_bytes},
      {"mqttSessionQueueBytes", key::session_queue_bytes, &eb.session_queue_bytes},
      {"mqttMaxRetainedMessages", key::max_retained_messages, &eb.max_retained_messages},
      {"mqttMaxRetainedBytes", key::max_retained_bytes, &eb.max_retained_bytes},
      {"mqttMaxSubscriptionsPerClient", key::max_subscriptions_per_client,
       &eb.max_subscriptions_per_client},
      {"mqttMaxTopicLength", key::max_topic_length, &eb.max_topic_length},
      {"mqttMaxTopicLevels", key::max_topic_levels, &eb.max_topic_levels},
      {"mqttMaxPersistentSessions", key::max_persistent_sessions, &eb.max_persistent_sessions},
      {"mqttExternalBufferBytes", key::external_buffer_bytes, &eb.external_buffer_bytes},
      {"moduleInboxBytes", key::module_inbox_bytes, &eb.module_inbox_bytes},
      {"groupBacklogBytes", key::group_backlog_bytes, &eb.group_backlog_bytes},
      {"moduleSocketOutboundBytes", key::module_socket_outbound_bytes,
       &eb.module_socket_outbound_bytes},
      {"maxRuntimeSubscriptions", key::max_runtime_subscriptions, &eb.max_runtime_subscriptions},
      {"maxRuntimeSubscriptionBytes", key::max_runtime_subscription_bytes,
       &eb.max_runtime_subscription_bytes},
      {"storeQueueSize", key::store_queue_size, &eb.store_queue_size},
      {"storeQueueBytes", key::store_queue_bytes, &eb.store_queue_bytes},
  };
  for (const auto& k : sizes) {
    // Byte counts may exceed 4 GiB on a large box; counts are checked by validate().
    read_unsigned(s.get(k.name), k.canonical, int64_max, *k.out);
  }
  if (const auto n = read_int(s.get("mqttSlowSubscriberTimeoutMilliseconds"), 0, uint32_max)) {
    eb.slow_subscriber_timeout = std::chrono::milliseconds(*n);
    set(key::slow_subscriber_timeout, *s.get("mqttSlowSubscriberTimeoutMilliseconds"));
  }
  if (const auto n = read_int(s.get("mqttPacketTimeoutSeconds"), 0, uint32_max)) {
    eb.packet_timeout = std::chrono::seconds(*n);
    set(key::packet_timeout, *s.get("mqttPacketTimeoutSeconds"));
  }
  if (const auto n = read_int(s.get("mqttSessionExpirySeconds"), 0, uint32_max)) {
    eb.session_expiry = std::chrono::seconds(*n);
    set(key::session_expiry, *s.get("mqttSessionExpirySeconds"));
  }
  if (const auto n = read_int(s.get("storeShutdownTimeoutSeconds"), 0, uint32_max)) {
    eb.store_shutdown_timeout = std::chrono::seconds(*n);
    set(key::store_shutdown_timeout, *s.get("storeShutdownTimeoutSeconds"));
  }
}

void loader::tls(const YAML::Node& map, const std::string& path) {
  static constexpr std::string_view names[] = {"enable", "tlsMqttCAFile", "tlsMqttCertFile",
                                               "tlsMqttPrivateKeyFile"};
  const section s = pick(map, path, names, true);
  auto& t = cfg_.eventbus.tls;
  read_bool(s.get("enable"), key::tls_enable, t.enable);
  read_string(s.get("tlsMqttCAFile"), key::tls_ca_file, t.ca_file);
  read_string(s.get("tlsMqttCertFile"), key::tls_cert_file, t.cert_file);
  read_string(s.get("tlsMqttPrivateKeyFile"), key::tls_key_file, t.private_key_file);
}

void loader::finish() {
  const auto& eb = cfg_.eventbus;
  // The queue size serves the embedded broker, which runs in broker-only mode too.
  if (const auto it = deferred_.find(key::session_queue_size);
      it != deferred_.end() && !eb.enable) {
    errors_.push_back(std::move(it->second));
  }
  if (eb.enable) {
    for (auto& [canonical, issue] : deferred_)
      errors_.push_back(std::move(issue));
    // v1.1 had no default broker URL: edgecore panicked without mqtt.server in modes 1 and 2.
    if (old_mqtt_path_ && !written_.contains(key::server_external) &&
        (eb.mode == mqtt_mode::both || eb.mode == mqtt_mode::external)) {
      errors_.push_back({*old_mqtt_path_ + ".server", "required when mqtt.mode is 1 or 2"});
    }
    // A user in the URL takes the password along (credentials_for, as Paho does).
    const auto url = mqtt::client::parse_broker_url(eb.server_external);
    const bool url_user = url && url->username.has_value();
    if (!eb.password.empty() && eb.username.empty() && !url_user) {
      const auto it = written_.find(key::password);
      warnings_.push_back({it != written_.end() ? it->second : key::password,
                           "set without mqttUsername; it is never sent"});
    }
  }
  const auto below_broken = [&](const config_issue& issue) {
    for (const auto& b : broken_) {
      if (issue.path.starts_with(b) && issue.path.size() > b.size() &&
          issue.path[b.size()] == '.') {
        return true;
      }
    }
    return false;
  };
  // A value refused by the loader keeps its default; a check of that default would only add
  // noise at the same key (a listener url of the wrong type is not also "required").
  std::set<std::string, std::less<>> refused;
  for (const auto& issue : errors_)
    refused.insert(issue.path);
  std::vector<config_issue> warnings;
  for (auto& issue : detail::check(cfg_, &warnings)) {
    if (below_broken(issue)) continue;
    issue = written(std::move(issue));
    if (!refused.contains(issue.path)) errors_.push_back(std::move(issue));
  }
  for (auto& issue : warnings) {
    if (!below_broken(issue)) warnings_.push_back(written(std::move(issue)));
  }
}

// Points an issue at the key the user wrote (v1.1 name, other case) rather than the canonical
// one; below a written key (a listener entry) the rest of the path stays canonical.
config_issue loader::written(config_issue issue) const {
  for (std::size_t end = issue.path.size(); end != 0 && end != std::string::npos;
       end = issue.path.find_last_of(".[", end - 1)) {
    if (const auto it = written_.find(std::string_view(issue.path).substr(0, end));
        it != written_.end()) {
      issue.path = it->second + issue.path.substr(end);
      break;
    }
  }
  return issue;
}

std::string syntax_error(const YAML::Exception& e) {
  if (e.mark.is_null()) return "YAML syntax error: " + e.msg;
  return "YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
         std::to_string(e.mark.column + 1) + ": " + e.msg;
}

}  // namespace

expected<loaded_config, config_errors> parse_config(std::string_view yaml) {
  std::optional<YAML::Node> root;
  try {
    root.emplace(YAML::Load(std::string(yaml)));
  } catch (const YAML::Exception& e) {
    return fail(config_errors(std::vector<config_issue>{{"", syntax_error(e)}}));
  }
  loader l(default_config());
  try {
    l.load(*root);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on misuse of its node API; a bug here must not take the daemon down.
    return fail(
        config_errors(std::vector<config_issue>{{"", std::string("internal error: ") + e.what()}}));
  }
  if (!l.errors_.empty()) {
    config_errors failed(std::move(l.errors_));
    failed.warnings = std::move(l.warnings_);
    return fail(std::move(failed));
  }
  return loaded_config{std::move(l.cfg_), std::move(l.warnings_)};
}

expected<loaded_config, config_errors> load_config(const std::string& file) {
  auto text = read_text_file(file, max_config_bytes);
  if (!text) return fail(config_errors(std::vector<config_issue>{{"", std::move(text.error())}}));
  return parse_config(*text);
}

}  // namespace ebus::config
