// The Asio-free rules of the module sockets (docs/REMOTE.md): line framing, SEQPACKET packets,
// registration requests, destinations, the registration response and message sizes.
#include <cstdint>
#include <limits>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "bus/bus_error.hpp"
#include "bus/message_json.hpp"
#include "remote/frame.hpp"
#include "remote/registration.hpp"
#include "remote/sizing.hpp"

namespace ebus::remote {
namespace {

std::vector<std::string> drain(line_splitter& s) {
  std::vector<std::string> out;
  for (;;) {
    auto line = s.next();
    if (!line || !*line) return out;
    out.emplace_back(**line);
  }
}

bus::message registration_request(std::string name, bus::content c = bus::content::text("")) {
  auto m = bus::new_message();
  m.header.sync = true;
  bus::build_router(m, std::move(name), "", "module", "add");
  m.content = std::move(c);
  return m;
}

// --- line_splitter ---------------------------------------------------------------------------

TEST(line_splitter, line_split_across_reads_comes_out_whole) {
  line_splitter s(100);
  s.append(R"({"a":)");
  EXPECT_TRUE(drain(s).empty());
  s.append("1}");
  EXPECT_TRUE(drain(s).empty());
  s.append("\n");
  EXPECT_EQ(drain(s), std::vector<std::string>{R"({"a":1})"});
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(line_splitter, several_lines_in_one_read_come_out_in_order) {
  line_splitter s(100);
  s.append("one\ntwo\nthree\nfour");
  EXPECT_EQ(drain(s), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(s.buffered(), 4u);
  s.append("\n");
  EXPECT_EQ(drain(s), std::vector<std::string>{"four"});
}

TEST(line_splitter, empty_lines_are_skipped) {
  line_splitter s(100);
  s.append("\n\na\n\n\nb\n\n");
  EXPECT_EQ(drain(s), (std::vector<std::string>{"a", "b"}));
}

TEST(line_splitter, line_of_exactly_the_limit_is_accepted) {
  line_splitter s(5);
  s.append("12345\n");
  EXPECT_EQ(drain(s), std::vector<std::string>{"12345"});
}

TEST(line_splitter, over_long_line_fails_before_its_newline_arrives) {
  line_splitter s(5);
  s.append("12345");
  auto r = s.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  s.append("6");
  r = s.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().length, 6u);
  s.append("\nok\n");  // the error is final
  EXPECT_FALSE(s.next());
}

TEST(line_splitter, over_long_complete_line_fails) {
  line_splitter s(3);
  s.append("ok\ntoolong\nok\n");
  auto r = s.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, "ok");
  r = s.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().length, 7u);
}

TEST(line_splitter, limit_applies_per_line_not_per_buffer) {
  line_splitter s(4);
  std::string many;
  for (int i = 0; i < 1000; ++i)
    many += "abcd\n";
  s.append(many);
  EXPECT_EQ(drain(s).size(), 1000u);
  // Byte by byte: the buffer keeps only the unfinished line.
  for (int i = 0; i < 1000; ++i) {
    s.append("x");
    s.append("y\n");
    ASSERT_EQ(drain(s), std::vector<std::string>{"xy"});
  }
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(take_line, hands_out_the_lines_of_a_batched_packet_and_skips_empty_ones) {
  std::string_view rest = "\n{\"a\":1}\n\n{\"b\":2}\n{\"c\":3}";
  EXPECT_EQ(take_line(rest), R"({"a":1})");
  EXPECT_EQ(take_line(rest), R"({"b":2})");
  EXPECT_EQ(take_line(rest), R"({"c":3})");  // the last line needs no '\n'
  EXPECT_EQ(take_line(rest), "");
  EXPECT_TRUE(rest.empty());
  rest = "\n\n";
  EXPECT_EQ(take_line(rest), "");
  EXPECT_TRUE(rest.empty());
}

TEST(packet_message, strips_one_trailing_newline) {
  EXPECT_EQ(packet_message("{}\n"), "{}");
  EXPECT_EQ(packet_message("{}"), "{}");
  EXPECT_EQ(packet_message("{}\n\n"), "{}\n");
  EXPECT_EQ(packet_message(""), "");
}

// --- registration ----------------------------------------------------------------------------

TEST(registration, beehive_request_registers_module_in_its_own_group) {
  const auto r = parse_registration(registration_request("my-twin"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->name, "my-twin");
  EXPECT_EQ(r->group, "my-twin");
}

TEST(registration, null_content_and_empty_group_mean_own_group) {
  auto r = parse_registration(registration_request("m", bus::content{}));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->group, "m");
  r = parse_registration(registration_request("m", bus::content::json({{"group", ""}})));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->group, "m");
  r = parse_registration(registration_request("m", bus::content::json(nlohmann::json::object())));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->group, "m");
}

TEST(registration, group_in_content_is_joined) {
  const auto r =
      parse_registration(registration_request("m", bus::content::json({{"group", "twin"}})));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->group, "twin");
}

TEST(registration, beehive_request_asks_for_one_message_per_packet) {
  const auto r = parse_registration(registration_request("my-twin"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->batch);
}

TEST(registration, batch_in_content_asks_for_batched_packets) {
  auto r = parse_registration(
      registration_request("m", bus::content::json({{"group", "twin"}, {"batch", true}})));
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->batch);
  EXPECT_EQ(r->group, "twin");
  r = parse_registration(registration_request("m", bus::content::json({{"batch", false}})));
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->batch);
  EXPECT_EQ(r->group, "m");
}

TEST(registration, refuses_batch_that_is_not_a_boolean) {
  const auto r = parse_registration(registration_request("m", bus::content::json({{"batch", 1}})));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid batch: not true or false");
}

TEST(registration, decoded_from_beehive_json) {
  const auto m = bus::from_json(
      R"({"header":{"msg_id":"7f1c","timestamp":1700000000000,"sync":true},)"
      R"("route":{"source":"my-twin","resource":"module","operation":"add"},"content":""})");
  ASSERT_TRUE(m);
  const auto r = parse_registration(*m);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->name, "my-twin");
}

TEST(registration, refuses_wrong_operation_or_resource) {
  auto m = registration_request("m");
  m.route.operation = "publish";
  auto r = parse_registration(m);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("not a registration"), std::string::npos) << r.error();
  m = registration_request("m");
  m.route.resource = "modules";
  r = parse_registration(m);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("not a registration"), std::string::npos) << r.error();
}

TEST(registration, refuses_request_without_sync) {
  auto m = registration_request("m");
  m.header.sync = false;
  const auto r = parse_registration(m);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("sync"), std::string::npos) << r.error();
}

TEST(registration, refuses_invalid_names) {
  for (const std::string& bad :
       std::vector<std::string>{"", "a b", "a/b", "group:x", "ü", std::string(129, 'a')}) {
    const auto r = parse_registration(registration_request(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().find("invalid module name"), std::string::npos) << r.error();
    EXPECT_LT(r.error().size(), 200u);  // long names are cut short in the reason
  }
  EXPECT_TRUE(parse_registration(registration_request(std::string(128, 'a'))));
  EXPECT_TRUE(parse_registration(registration_request("A.z_0-9")));
}

TEST(registration, refuses_bad_content) {
  const std::vector<bus::content> bad{
      bus::content::text("twin"), bus::content::binary("x"), bus::content::json({1, 2}),
      bus::content::json({{"group", 5}}), bus::content::json({{"group", "a b"}})};
  for (const auto& c : bad) {
    const auto r = parse_registration(registration_request("m", c));
    ASSERT_FALSE(r) << bus::to_json(registration_request("m", c));
    EXPECT_NE(r.error().find("invalid"), std::string::npos) << r.error();
  }
}

TEST(registration, valid_name_rules) {
  EXPECT_TRUE(valid_name("eventbus"));
  EXPECT_TRUE(valid_name("-._"));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name("a:b"));
  EXPECT_FALSE(valid_name(std::string_view("a\0b", 3)));
}

TEST(registration, response_content_lists_sorted_modules_and_groups) {
  const auto c = registration_content({"my-twin", "eventbus", "bus-x"},
                                      {{"twin", {"z", "my-twin"}}, {"bus", {"eventbus"}}});
  std::string out;
  bus::append_go_json(out, c);
  EXPECT_EQ(out, R"({"groups":{"bus":["eventbus"],"twin":["my-twin","z"]},)"
                 R"("modules":["bus-x","eventbus","my-twin"]})");
  EXPECT_EQ(registration_content({}, {}).dump(), R"({"groups":{},"modules":[]})");
}

// --- destinations and reasons ----------------------------------------------------------------

TEST(destination, module_name) {
  const auto d = parse_destination("eventbus");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, destination::kind::module);
  EXPECT_EQ(d->name, "eventbus");
}

TEST(destination, group_prefix_names_a_group) {
  const auto d = parse_destination("group:twin");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, destination::kind::group);
  EXPECT_EQ(d->name, "twin");
}

TEST(destination, empty_destination_or_group_is_refused) {
  EXPECT_FALSE(parse_destination(""));
  EXPECT_FALSE(parse_destination("group:"));
  // Only the exact prefix names a group.
  const auto d = parse_destination("Group:twin");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, destination::kind::module);
}

TEST(error_reason, bus_errors_use_their_names) {
  using bus::bus_errc;
  EXPECT_EQ(error_reason(bus_errc::no_route), "no_route");
  EXPECT_EQ(error_reason(bus_errc::queue_full), "queue_full");
  EXPECT_EQ(error_reason(bus_errc::timeout), "timeout");
  EXPECT_EQ(error_reason(bus_errc::module_removed), "module_removed");
  EXPECT_EQ(error_reason(bus_errc::cancelled), "cancelled");
  EXPECT_EQ(error_reason(bus_errc::no_pending_request), "no_pending_request");
  EXPECT_EQ(error_reason(std::make_error_code(std::errc::timed_out)),
            std::make_error_code(std::errc::timed_out).message());
}

TEST(error_reason, names_the_budget_and_size_refusals) {
  EXPECT_EQ(error_reason(bus::bus_errc::memory_budget), "memory_budget");
  EXPECT_EQ(error_reason(bus::bus_errc::too_large), "too_large");
}

// --- message sizes ---------------------------------------------------------------------------

/// The beehive message the EventBus makes of an MQTT message, with every optional field at its
/// largest and every byte of topic and payload at its costliest in JSON.
bus::message worst_case(std::size_t max_mqtt_packet, bool twin) {
  // A PUBLISH holds a fixed header (at least 2 bytes) and the topic's length (2 bytes).
  const std::size_t content = max_mqtt_packet - 4;
  const std::size_t topic_bytes = content / 8;
  std::string topic(topic_bytes, '\x01');  // control characters: "\u0001"
  std::string payload;
  payload.reserve(content - topic_bytes);
  for (std::size_t i = 0; payload.size() < content - topic_bytes; ++i) {
    payload += "\x01\xff<"[i % 3];  // "\u0001", invalid UTF-8 as "\ufffd", "\u003c"
  }
  bus::message m;
  m.header.id = bus::new_uuid();
  m.header.parent_id = bus::new_uuid();
  m.header.timestamp = std::numeric_limits<std::int64_t>::min();
  m.header.sync = true;
  m.header.type = "unixpacket";
  m.route.source = "eventbus";
  m.route.destination = std::string(max_name_length, 'd');
  m.route.group = "user";
  m.route.operation = twin ? "response" : "upload";
  m.route.resource = twin ? bus::base64_url(topic) : topic;
  m.content = bus::content::text(std::move(payload));
  return m;
}

TEST(required_message_bytes, covers_the_worst_case_encoding_of_an_mqtt_message) {
  for (const std::size_t packet : {std::size_t{64}, std::size_t{1024}, std::size_t{1} << 20}) {
    for (const bool twin : {false, true}) {
      const auto encoded = bus::to_json(worst_case(packet, twin)).size();
      const auto required = required_message_bytes(packet);
      EXPECT_LE(encoded, required) << "packet " << packet << (twin ? " twin" : " hub");
      if (!twin) {
        EXPECT_LE(required - encoded, envelope_bytes) << "packet " << packet;  // not far above
      }
    }
  }
}

TEST(required_message_bytes, is_six_times_the_packet_plus_the_envelope_and_saturates) {
  EXPECT_EQ(required_message_bytes(1000000), 6000000 + envelope_bytes);
  EXPECT_EQ(required_message_bytes(std::numeric_limits<std::size_t>::max()),
            std::numeric_limits<std::size_t>::max());
}

class socket_pair {
 public:
  socket_pair() {
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_) != 0) fds_[0] = fds_[1] = -1;
  }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    for (const int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  [[nodiscard]] int sender() const { return fds_[0]; }
  [[nodiscard]] int receiver() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

int send_buffer_of(int fd) {
  int size = 0;
  socklen_t length = sizeof size;
  ::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &length);
  return size;
}

TEST(packet_limit, a_socket_sized_for_a_packet_sends_one_of_the_probed_size) {
  constexpr std::size_t wanted = 256 * 1024;
  const auto probe = probe_packet_limit(wanted);
  ASSERT_GT(probe.packet_limit, 0u);
  EXPECT_LE(probe.packet_limit, wanted);
  socket_pair pair;
  ASSERT_GE(pair.sender(), 0);
  const auto sized = size_packet_send_buffer(pair.sender(), wanted);
  EXPECT_EQ(sized.forced, probe.forced);
  EXPECT_GE(sized.packet_limit, probe.packet_limit);
  const std::string packet(probe.packet_limit, 'x');
  EXPECT_EQ(::send(pair.sender(), packet.data(), packet.size(), MSG_DONTWAIT),
            static_cast<ssize_t>(packet.size()));
}

TEST(packet_limit, a_buffer_already_large_enough_is_left_alone) {
  socket_pair pair;
  ASSERT_GE(pair.sender(), 0);
  const int before = send_buffer_of(pair.sender());
  const auto sized = size_packet_send_buffer(pair.sender(), 1000);
  EXPECT_EQ(sized.packet_limit, 1000u);
  EXPECT_EQ(send_buffer_of(pair.sender()), before);
}

}  // namespace
}  // namespace ebus::remote
