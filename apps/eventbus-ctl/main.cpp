// eventbus-ctl: talks to a running eventbus daemon through its module socket, as a remote bus
// module (docs/REMOTE.md): watch what a group receives, publish, manage subscriptions, send raw
// beehive messages.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bus/message.hpp"
#include "bus/message_json.hpp"
#include "remote/client.hpp"

namespace {

using ebus::remote::bus_client;
using std::chrono::milliseconds;

// Exit statuses: 0 done; 1 the daemon answered with an error, did not answer, or went away;
// 2 no daemon to talk to (cannot connect, registration refused).
constexpr int status_failed = 1;
constexpr int status_no_daemon = 2;

constexpr const char* eventbus_module = "eventbus";
// route.group of what the ctl sends: it acts for a user, as the cloud router does.
constexpr const char* source_group = "user";

volatile std::sig_atomic_t stop_requested = 0;

extern "C" void on_stop_signal(int /*signo*/) {
  stop_requested = 1;
}

struct connection_options {
  std::string socket;
  bool stream = false;
  std::string module;  // "": eventbus-ctl-<pid>
};

void add_connection_options(CLI::App* cmd, connection_options& o) {
  cmd->add_option("--socket", o.socket,
                  std::string("module socket of the daemon (default ") +
                      ebus::remote::default_socket_path + ", or " +
                      ebus::remote::default_stream_socket_path + " with --stream)")
      ->group("Connection");
  cmd->add_flag("--stream", o.stream, "use the stream socket (one JSON message per line)")
      ->group("Connection");
  cmd->add_option("--module", o.module, "module name to register as (default eventbus-ctl-<pid>)")
      ->group("Connection");
}

void print_error(const std::string& what) {
  std::fprintf(stderr, "eventbus-ctl: %s\n", what.c_str());
}

void print_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::optional<bus_client> open(const connection_options& o, const std::string& group = {}) {
  std::string path = o.socket;
  if (path.empty()) {
    path = o.stream ? ebus::remote::default_stream_socket_path : ebus::remote::default_socket_path;
  }
  auto client = bus_client::connect(path, o.module, group, o.stream);
  if (!client) {
    print_error(client.error());
    return std::nullopt;
  }
  return std::move(*client);
}

ebus::bus::message new_request(const std::string& source, std::string destination,
                               std::string operation, std::string resource,
                               ebus::bus::content content = {}) {
  auto m = ebus::bus::new_message();
  ebus::bus::build_router(m, source, source_group, std::move(resource), std::move(operation));
  m.route.destination = std::move(destination);
  m.content = std::move(content);
  return m;
}

ebus::bus::message subscriptions_query(const std::string& source) {
  return new_request(source, eventbus_module, "query", "subscriptions");
}

bool is_error(const ebus::bus::message& m) {
  return m.route.operation == ebus::bus::operation::error;
}

int run_watch(const connection_options& o, const std::string& group) {
  auto client = open(o, group);
  if (!client) return status_no_daemon;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;  // no SA_RESTART: poll() returns at once on a signal
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::fprintf(stderr, "eventbus-ctl: watching as %s in group %s\n", client->name().c_str(),
               group.empty() ? client->name().c_str() : group.c_str());
  while (stop_requested == 0) {
    auto got = client->receive(milliseconds(500));
    if (!got) {
      print_error(got.error());
      return status_failed;
    }
    if (*got) print_line(ebus::bus::to_json(**got));
  }
  return 0;
}

// Sends one message to module eventbus, then waits until eventbus has handled it: the daemon
// keeps a connection's messages in order and eventbus handles its inbox in order, so the answer
// to a query sent next means the message was taken, and any error for it arrived before.
int run_eventbus_operation(const connection_options& o, milliseconds timeout, std::string operation,
                           std::string resource, ebus::bus::content content) {
  auto client = open(o);
  if (!client) return status_no_daemon;
  const auto m = new_request(o.module, eventbus_module, std::move(operation), std::move(resource),
                             std::move(content));
  if (auto sent = client->send(m); !sent) {
    print_error(sent.error());
    return status_failed;
  }
  const auto barrier = client->request(subscriptions_query(o.module), timeout);
  for (;;) {
    auto got = client->receive(milliseconds(0));
    if (!got || !*got) break;
    if (is_error(**got) && (*got)->header.parent_id == m.header.id) {
      print_error(m.route.operation + " " + m.route.resource + ": " + (*got)->content.data());
      return status_failed;
    }
  }
  if (!barrier) {
    print_error(m.route.operation + " " + m.route.resource +
                ": sent, but the eventbus did not confirm it: " + barrier.error());
    return status_failed;
  }
  return 0;
}

int run_topics(const connection_options& o, milliseconds timeout) {
  auto client = open(o);
  if (!client) return status_no_daemon;
  auto reply = client->request(subscriptions_query(o.module), timeout);
  if (!reply) {
    print_error("topics: " + reply.error());
    return status_failed;
  }
  if (is_error(*reply)) {
    print_error("topics: " + reply->content.data());
    return status_failed;
  }
  const auto& list = reply->content.json_value();
  if (reply->content.type() != ebus::bus::content::kind::json || !list.is_array()) {
    if (reply->content.is_null()) return 0;  // Go encodes an empty slice as null
    print_error("topics: unexpected reply " + reply->content.data());
    return status_failed;
  }
  for (const auto& topic : list)
    print_line(topic.is_string() ? topic.get<std::string>() : topic.dump());
  return 0;
}

struct send_options {
  std::string to;
  std::string group;
  std::string operation;
  std::string resource;
  std::optional<nlohmann::json> content;
  std::optional<std::string> text;
  bool sync = false;
};

int run_send(const connection_options& o, const send_options& s, milliseconds timeout) {
  auto client = open(o);
  if (!client) return status_no_daemon;
  ebus::bus::content content;
  if (s.content) content = ebus::bus::content::json(*s.content);
  if (s.text) content = ebus::bus::content::text(*s.text);
  auto m = new_request(o.module, s.to.empty() ? "group:" + s.group : s.to, s.operation, s.resource,
                       std::move(content));
  if (!s.sync) {
    if (auto sent = client->send(m); !sent) {
      print_error(sent.error());
      return status_failed;
    }
    return 0;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto reply = client->request(m, timeout);
  if (!reply) {
    print_error(reply.error());
    return status_failed;
  }
  print_line(ebus::bus::to_json(*reply));
  bool failed = is_error(*reply);
  // A group request is answered once per member: expect as many as registration listed.
  std::size_t expected = 1;
  if (!s.group.empty() && !failed) {
    const auto& groups = client->registration().value("groups", nlohmann::json::object());
    if (auto it = groups.find(s.group); it != groups.end() && it->is_array()) {
      expected = std::max<std::size_t>(1, it->size());
    }
  }
  for (std::size_t answered = 1; answered < expected;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    auto got = client->receive(std::max(left, milliseconds(0)));
    if (!got) {
      print_error(got.error());
      return status_failed;
    }
    if (!*got) {
      if (left.count() > 0) continue;
      print_error(std::to_string(answered) + " of " + std::to_string(expected) +
                  " members answered within " + std::to_string(timeout.count()) + " ms");
      return status_failed;
    }
    if ((*got)->header.parent_id != m.header.id) continue;
    ++answered;
    failed = failed || is_error(**got);
    print_line(ebus::bus::to_json(**got));
  }
  return failed ? status_failed : 0;
}

const char* const examples = R"(
Examples:
  eventbus-ctl watch --group twin            print what devicetwin would receive
  eventbus-ctl watch --group hub             print what edgehub would receive (uploads)
  eventbus-ctl publish test/x 'Hello World!'
  eventbus-ctl subscribe default/test        intercept default/test from now on (kept in sub_topics)
  eventbus-ctl topics                        list the run-time subscriptions
  eventbus-ctl unsubscribe default/test
  eventbus-ctl send --to eventbus --op query --resource subscriptions --sync
  eventbus-ctl send --group twin --op response --resource JGh3 --text '{"event_id":"e1"}'

Messages are printed and sent as beehive JSON, one per line. Exit status: 0 done; 1 the daemon
answered with an error, did not answer in time, or went away; 2 no daemon to talk to.)";

const char* const publish_note = R"(
The socket protocol carries no per-message QoS or retain flag: the daemon publishes with mqttQOS
and mqttRetain on the embedded broker, and with QoS 1 and no retain on the external one.
)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eventbus-ctl - talk to a running eventbus daemon as a bus module"};
  app.footer(examples);
  app.require_subcommand(1);
  connection_options conn;

  auto* watch = app.add_subcommand(
      "watch", "print every message the module receives, one JSON line each, until Ctrl-C");
  std::string watch_group;
  watch->add_option("--group", watch_group,
                    "group to join: twin (device events), hub (uploads) or any name; default: a "
                    "group named after the module");
  add_connection_options(watch, conn);

  auto* publish =
      app.add_subcommand("publish", "publish PAYLOAD on MQTT topic TOPIC through the eventbus");
  std::string topic;
  std::string payload;
  publish->add_option("TOPIC", topic, "MQTT topic (no wildcards)")->required();
  publish->add_option("PAYLOAD", payload, "payload, sent as text")->required();
  publish->footer(std::string(publish_note) + examples);
  add_connection_options(publish, conn);

  auto* subscribe = app.add_subcommand(
      "subscribe", "make the eventbus intercept TOPIC (sent to group hub), kept in sub_topics");
  subscribe->add_option("TOPIC", topic, "MQTT topic filter")->required();
  add_connection_options(subscribe, conn);

  auto* unsubscribe = app.add_subcommand("unsubscribe", "undo a subscribe of TOPIC");
  unsubscribe->add_option("TOPIC", topic, "MQTT topic filter")->required();
  add_connection_options(unsubscribe, conn);

  long long eventbus_timeout_ms = 5000;
  for (auto* cmd : {publish, subscribe, unsubscribe}) {
    cmd->add_option("--timeout", eventbus_timeout_ms,
                    "milliseconds to wait for the eventbus to take the message")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
  }

  auto* topics = app.add_subcommand("topics", "list the eventbus's run-time subscriptions");
  topics->add_option("--timeout", eventbus_timeout_ms, "milliseconds to wait for the answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_connection_options(topics, conn);

  auto* send = app.add_subcommand("send", "send one raw beehive message");
  send_options s;
  auto* destination = send->add_option_group("Destination", "where the message goes");
  destination->add_option("--to", s.to, "module name");
  destination->add_option("--group", s.group, "group name (every member gets a copy)");
  destination->require_option(1);
  send->add_option("--op", s.operation, "route.operation")->required();
  send->add_option("--resource", s.resource, "route.resource")->required();
  auto* content_opt = send->add_option_function<std::string>(
                              "--content",
                              [&s](const std::string& text) {
                                s.content = nlohmann::json::parse(text, nullptr, false);
                              },
                              "content as JSON (a JSON string is sent as text)")
                          ->check(CLI::Validator(
                              [](std::string& text) {
                                return nlohmann::json::accept(text)
                                           ? std::string{}
                                           : "--content is not valid JSON: " + text;
                              },
                              "JSON"));
  send->add_option_function<std::string>(
          "--text", [&s](const std::string& text) { s.text = text; }, "content as plain text")
      ->excludes(content_opt);
  send->add_flag("--sync", s.sync,
                 "wait for the response(s) and print them; exit 1 on an error response or timeout");
  long long send_timeout_ms = 30000;  // the daemon's own limit for sync requests
  send->add_option("--timeout", send_timeout_ms, "milliseconds to wait with --sync")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_connection_options(send, conn);

  CLI11_PARSE(app, argc, argv);
  if (conn.module.empty()) conn.module = "eventbus-ctl-" + std::to_string(::getpid());

  const milliseconds eventbus_timeout(eventbus_timeout_ms);
  if (watch->parsed()) return run_watch(conn, watch_group);
  if (publish->parsed()) {
    return run_eventbus_operation(conn, eventbus_timeout, "publish", topic,
                                  ebus::bus::content::text(payload));
  }
  // Content is ignored by the eventbus; "" is what the cloud router sends.
  if (subscribe->parsed()) {
    return run_eventbus_operation(conn, eventbus_timeout, "subscribe", topic,
                                  ebus::bus::content::text({}));
  }
  if (unsubscribe->parsed()) {
    return run_eventbus_operation(conn, eventbus_timeout, "unsubscribe", topic,
                                  ebus::bus::content::text({}));
  }
  if (topics->parsed()) return run_topics(conn, eventbus_timeout);
  return run_send(conn, s, milliseconds(send_timeout_ms));
}
