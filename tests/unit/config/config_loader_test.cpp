// Configuration loader: edgecore.yaml (v1alpha2) and v1.1 edge.yaml layouts, Go-style typing
// and key matching, every validation rule with its key path, and the printed default files.
#include "config/config_loader.hpp"

#include <array>
#include <unistd.h>

#include "config_test_support.hpp"

namespace ebus::config {
namespace {

using test::errors_of;
using test::eventbus_doc;
using test::issue;
using test::load;
using test::temp_path;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

std::string host_name() {
  std::array<char, 256> buf{};
  EXPECT_EQ(::gethostname(buf.data(), buf.size() - 1), 0);
  return buf.data();
}

// --- defaults ------------------------------------------------------------------------------

TEST(config_defaults, default_config_uses_the_host_name_and_the_documented_defaults) {
  const auto c = default_config();
  EXPECT_EQ(c.node_name, node_name_from_host(host_name()));
  EXPECT_EQ(c.data_source, "/var/lib/kubeedge/edgecore.db");
  EXPECT_TRUE(c.eventbus.enable);
  EXPECT_EQ(c.eventbus.mode, mqtt_mode::internal);
  EXPECT_EQ(c.eventbus.server_internal, "tcp://127.0.0.1:1884");
  EXPECT_EQ(c.eventbus.server_external, "tcp://127.0.0.1:1883");
  EXPECT_EQ(c.eventbus.module_socket, "/var/run/kubeedge/eventbus.sock");
  EXPECT_EQ(c.eventbus.module_stream_socket, "/var/run/kubeedge/eventbus-stream.sock");
  EXPECT_EQ(c.eventbus.module_socket_max_connections, 64u);
  EXPECT_EQ(c.eventbus.module_socket_max_message_bytes, 8388608u);
  EXPECT_EQ(c.eventbus.max_memory_bytes, 268435456u);
  EXPECT_EQ(c.eventbus.session_queue_bytes, 16777216u);
  EXPECT_EQ(c.eventbus.max_retained_messages, 100000u);
  EXPECT_EQ(c.eventbus.packet_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.eventbus.group_backlog_size, 1000u);
  EXPECT_THAT(validate(c), IsEmpty());
}

TEST(config_defaults, empty_document_gives_the_defaults) {
  const auto r = load("");
  EXPECT_EQ(r.config, default_config());
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(config_defaults, comment_only_document_gives_the_defaults) {
  EXPECT_EQ(load("# nothing here\n").config, default_config());
}

TEST(config_defaults, default_config_yaml_round_trips_without_warnings) {
  const auto r = load(default_config_yaml());
  EXPECT_EQ(r.config, default_config());
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(config_defaults, default_config_yaml_writes_every_key_and_says_why_mode_is_0) {
  const auto text = default_config_yaml();
  for (const char* key : {"apiVersion:",
                          "kind: EdgeCore",
                          "dataSource:",
                          "hostnameOverride:",
                          "enable:",
                          "mqttMode: 0",
                          "mqttQOS:",
                          "mqttRetain:",
                          "mqttSessionQueueSize:",
                          "mqttServerInternal:",
                          "mqttServerExternal:",
                          "mqttSubClientID:",
                          "mqttPubClientID:",
                          "mqttUsername:",
                          "mqttPassword:",
                          "eventBusTLS:",
                          "tlsMqttCAFile:",
                          "tlsMqttCertFile:",
                          "tlsMqttPrivateKeyFile:",
                          "mqttMaxPacketSize:",
                          "mqttMaxConnections:",
                          "mqttMaxInflightMessages:",
                          "mqttQueueOverflowPolicy:",
                          "mqttConnectTimeoutSeconds:",
                          "mqttExternalBufferSize:",
                          "mqttReconnectMinMilliseconds:",
                          "mqttReconnectMaxMilliseconds:",
                          "mqttKeepAliveSeconds:",
                          "moduleSocket: /var/run/kubeedge/eventbus.sock",
                          "moduleStreamSocket: /var/run/kubeedge/eventbus-stream.sock",
                          "moduleSocketMaxConnections: 64",
                          "moduleSocketMaxMessageBytes: 8388608",
                          "groupBacklogSize: 1000",
                          "moduleSocketAllowedUids: []",
                          "moduleSocketAllowedGids: []",
                          "    internalListener:\n",
                          "      allowAnonymous: null\n",
                          "      certFile: \"\"\n",
                          "      keyFile: \"\"\n",
                          "      caFile: \"\"\n",
                          "      requireCertificate: false\n",
                          "      useIdentityAsUsername: false\n",
                          "      path: /mqtt\n",
                          "    listeners: []\n",
                          "    passwordFile: \"\"\n",
                          "    aclFile: \"\"\n"}) {
    EXPECT_THAT(text, HasSubstr(key));
  }
  EXPECT_THAT(text, HasSubstr("null: true without passwordFile, false with one"));
  EXPECT_THAT(text, HasSubstr("edgecore's default is 2"));
  EXPECT_THAT(text, HasSubstr(node_name_from_host(host_name())));
  // The printed range is the one validate() applies.
  EXPECT_THAT(text, HasSubstr("0 (none) or 5 to 65535"));
}

TEST(config_defaults, min_config_yaml_round_trips_without_warnings) {
  const auto text = min_config_yaml();
  const auto r = load(text);
  // edgecore's minimal file has the eventbus disabled (its Enable field is left at false).
  auto expected = default_config();
  expected.eventbus.enable = false;
  EXPECT_EQ(r.config, expected);
  EXPECT_THAT(text, HasSubstr("    enable: false\n"));
  EXPECT_THAT(text, Not(HasSubstr("enable: true")));
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_THAT(text, HasSubstr("hostnameOverride"));
  EXPECT_THAT(text, Not(HasSubstr("mqttMaxPacketSize")));
  EXPECT_THAT(text, Not(HasSubstr("moduleSocket")));
  EXPECT_THAT(text, Not(HasSubstr("groupBacklogSize")));
  // Our extensions stay out of the file that mirrors edgecore's.
  EXPECT_THAT(text, Not(HasSubstr("istener")));
  EXPECT_THAT(text, Not(HasSubstr("passwordFile")));
  EXPECT_THAT(text, Not(HasSubstr("aclFile")));
}

// --- current layout ------------------------------------------------------------------------

TEST(config_parse, current_layout_sets_every_field) {
  const auto r = load(R"(apiVersion: edgecore.config.kubeedge.io/v1alpha2
kind: EdgeCore
database:
  dataSource: /tmp/ebus.db
modules:
  edged:
    hostnameOverride: edge-7
  eventBus:
    enable: true
    mqttMode: 1
    mqttQOS: 2
    mqttRetain: true
    mqttSessionQueueSize: 42
    mqttServerInternal: mqtt://0.0.0.0:2884
    mqttServerExternal: ssl://broker.local:8883
    mqttSubClientID: sub-1
    mqttPubClientID: pub-1
    mqttUsername: user
    mqttPassword: secret
    eventBusTLS:
      enable: false
      tlsMqttCAFile: /ca.crt
      tlsMqttCertFile: /c.crt
      tlsMqttPrivateKeyFile: /c.key
    mqttMaxPacketSize: 4096
    mqttMaxConnections: 7
    mqttMaxInflightMessages: 3
    mqttQueueOverflowPolicy: dropOldest
    mqttConnectTimeoutSeconds: 4
    mqttExternalBufferSize: 9
    mqttReconnectMinMilliseconds: 100
    mqttReconnectMaxMilliseconds: 900
    mqttKeepAliveSeconds: 60
    moduleSocket: /run/ebus/bus.sock
    moduleStreamSocket: /run/ebus/bus-stream.sock
    moduleSocketMaxConnections: 8
    moduleSocketMaxMessageBytes: 131072
    groupBacklogSize: 50
)");
  // 0.0.0.0 without a password file: the one warning, tested with the listeners.
  EXPECT_THAT(r.warnings, ElementsAre(issue("modules.eventBus.mqttServerInternal",
                                            "takes anonymous clients without TLS")));
  const auto& c = r.config;
  EXPECT_EQ(c.data_source, "/tmp/ebus.db");
  EXPECT_EQ(c.node_name, "edge-7");
  const auto& e = c.eventbus;
  EXPECT_TRUE(e.enable);
  EXPECT_EQ(e.mode, mqtt_mode::both);
  EXPECT_EQ(e.qos, 2);
  EXPECT_TRUE(e.retain);
  EXPECT_EQ(e.session_queue_size, 42u);
  EXPECT_EQ(e.server_internal, "mqtt://0.0.0.0:2884");
  EXPECT_EQ(e.server_external, "ssl://broker.local:8883");
  EXPECT_EQ(e.sub_client_id, "sub-1");
  EXPECT_EQ(e.pub_client_id, "pub-1");
  EXPECT_EQ(e.username, "user");
  EXPECT_EQ(e.password, "secret");
  EXPECT_FALSE(e.tls.enable);
  EXPECT_EQ(e.tls.ca_file, "/ca.crt");
  EXPECT_EQ(e.tls.cert_file, "/c.crt");
  EXPECT_EQ(e.tls.private_key_file, "/c.key");
  EXPECT_EQ(e.max_packet_size, 4096u);
  EXPECT_EQ(e.max_connections, 7u);
  EXPECT_EQ(e.max_inflight, 3u);
  EXPECT_EQ(e.overflow, overflow_policy::drop_oldest);
  EXPECT_EQ(e.connect_timeout, std::chrono::seconds(4));
  EXPECT_EQ(e.external_buffer_size, 9u);
  EXPECT_EQ(e.reconnect_min, std::chrono::milliseconds(100));
  EXPECT_EQ(e.reconnect_max, std::chrono::milliseconds(900));
  EXPECT_EQ(e.keepalive_seconds, 60);
  EXPECT_EQ(e.module_socket, "/run/ebus/bus.sock");
  EXPECT_EQ(e.module_stream_socket, "/run/ebus/bus-stream.sock");
  EXPECT_EQ(e.module_socket_max_connections, 8u);
  EXPECT_EQ(e.module_socket_max_message_bytes, 131072u);
  EXPECT_EQ(e.group_backlog_size, 50u);
}

TEST(config_parse, missing_keys_keep_their_defaults) {
  const auto r = load(eventbus_doc("    mqttQOS: 1\n"));
  auto expected = default_config();
  expected.eventbus.qos = 1;
  EXPECT_EQ(r.config, expected);
}

TEST(config_parse, null_and_empty_values_keep_the_defaults) {
  const auto r = load(R"(database:
  dataSource: ~
modules:
  edged:
    hostnameOverride: null
  eventBus:
    mqttMode:
    mqttQOS: ~
    mqttRetain: Null
    mqttServerInternal: NULL
    mqttQueueOverflowPolicy:
    eventBusTLS:
)");
  EXPECT_EQ(r.config, default_config());
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_EQ(load("modules:\n  eventBus:\n").config, default_config());
  EXPECT_EQ(load("modules:\n").config, default_config());
}

TEST(config_parse, keys_match_case_insensitively_at_every_level) {
  const auto r = load(R"(DATABASE:
  datasource: /tmp/x.db
Modules:
  EDGED:
    HostnameOverride: n1
  eventbus:
    ENABLE: true
    MQTTMODE: 2
    mqttqos: 1
    MqttServerExternal: tcp://10.0.0.1:1883
    EVENTBUSTLS:
      Enable: false
      TLSMQTTCAFILE: /ca
MQTT:
  Internal-Server: tcp://127.0.0.1:1999
)");
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_EQ(r.config.data_source, "/tmp/x.db");
  EXPECT_EQ(r.config.node_name, "n1");
  EXPECT_EQ(r.config.eventbus.mode, mqtt_mode::external);
  EXPECT_EQ(r.config.eventbus.qos, 1);
  EXPECT_EQ(r.config.eventbus.server_external, "tcp://10.0.0.1:1883");
  EXPECT_EQ(r.config.eventbus.tls.ca_file, "/ca");
  EXPECT_EQ(r.config.eventbus.server_internal, "tcp://127.0.0.1:1999");
}

TEST(config_parse, error_paths_are_written_as_in_the_file) {
  EXPECT_THAT(errors_of("Modules:\n  EVENTBUS:\n    mqttqos: 3\n"),
              ElementsAre(issue("Modules.EVENTBUS.mqttqos", "must be 0, 1 or 2, got 3")));
  EXPECT_THAT(errors_of("MODULES:\n  eventbus:\n    MQTTMODE: two\n"),
              ElementsAre(issue("MODULES.eventbus.MQTTMODE", R"(expected an integer, got "two")")));
}

TEST(config_parse, booleans_are_true_or_false_in_any_case) {
  EXPECT_FALSE(load(eventbus_doc("    enable: FALSE\n")).config.eventbus.enable);
  EXPECT_TRUE(load(eventbus_doc("    mqttRetain: True\n")).config.eventbus.retain);
}

TEST(config_parse, scalars_of_any_kind_are_accepted_as_strings) {
  const auto r = load(R"(modules:
  edged:
    hostnameOverride: 1234
  eventBus:
    mqttUsername: true
    mqttPassword: "007"
)");
  EXPECT_EQ(r.config.node_name, "1234");
  EXPECT_EQ(r.config.eventbus.username, "true");
  EXPECT_EQ(r.config.eventbus.password, "007");
}

TEST(config_parse, unquoted_numbers_and_booleans_in_strings_read_as_edgecore_reads_them) {
  // sigs.k8s.io/yaml: go-yaml v2 resolves the plain scalar (YAML 1.1), and a number or boolean
  // put into a Go string is written as Go prints it.
  const auto text_of = [](const std::string& scalar) {
    return load("modules:\n  eventBus:\n    mqttSubClientID: " + scalar + "\n")
        .config.eventbus.sub_client_id;
  };
  EXPECT_EQ(text_of("1234"), "1234");
  EXPECT_EQ(text_of("+7"), "7");
  EXPECT_EQ(text_of("007"), "7");     // octal
  EXPECT_EQ(text_of("0755"), "493");  // octal
  EXPECT_EQ(text_of("0x1F"), "31");   // hexadecimal
  EXPECT_EQ(text_of("0o17"), "15");   // Go's octal prefix
  EXPECT_EQ(text_of("0b101"), "5");   // binary
  EXPECT_EQ(text_of("-0x10"), "-16");
  EXPECT_EQ(text_of("1_000"), "1000");  // underscores dropped
  EXPECT_EQ(text_of("08"), "8");        // not octal: a float
  EXPECT_EQ(text_of("1e3"), "1000");    // float, printed as float32 %g
  EXPECT_EQ(text_of("1.50"), "1.5");
  EXPECT_EQ(text_of("1e6"), "1e+06");
  EXPECT_EQ(text_of("123456"), "123456");
  EXPECT_EQ(text_of("3.14159265"), "3.1415927");
  EXPECT_EQ(text_of(".5"), "0.5");
  EXPECT_EQ(text_of("18446744073709551615"), "18446744073709551615");  // uint64
  EXPECT_EQ(text_of("99999999999999999999"), "1e+20");                 // beyond uint64: a float
  EXPECT_EQ(text_of(".inf"), "+Inf");
  EXPECT_EQ(text_of("-.Inf"), "-Inf");
  EXPECT_EQ(text_of(".NaN"), "NaN");
  EXPECT_EQ(text_of("yes"), "true");  // YAML 1.1 booleans
  EXPECT_EQ(text_of("Off"), "false");
  EXPECT_EQ(text_of("True"), "true");
  EXPECT_EQ(text_of("y"), "true");
  // Not numbers or booleans for go-yaml: the text as written.
  for (const char* same : {"edge-1", "2001-12-14", "1.2.3", "12:30", "0x", "-1-2", "1e400", "0xZ",
                           "yess", "TRue", "+", "0b", "0b12", "1__0a"}) {
    EXPECT_EQ(text_of(same), same);
  }
  // Quoted: always the text.
  EXPECT_EQ(text_of("\"007\""), "007");
  EXPECT_EQ(text_of("'yes'"), "yes");

  // A changed value is warned about, with the value it became (never a password's).
  const auto r = load(R"(modules:
  edged:
    hostnameOverride: 0x1F
  eventBus:
    mqttUsername: 1234
    mqttPassword: 0123
)");
  EXPECT_EQ(r.config.node_name, "31");
  EXPECT_EQ(r.config.eventbus.password, "83");
  EXPECT_THAT(
      r.warnings,
      ElementsAre(issue("modules.edged.hostnameOverride",
                        "an unquoted number or boolean, read as edgecore reads it: \"31\"; "
                        "quote the value to keep the text as written"),
                  issue("modules.eventBus.mqttPassword",
                        "an unquoted number or boolean, read as edgecore reads it; quote")));
  EXPECT_THAT(r.warnings[1].message, Not(HasSubstr("83")));
}

TEST(config_parse, integers_take_a_sign) {
  EXPECT_EQ(load(eventbus_doc("    mqttQOS: +1\n")).config.eventbus.qos, 1);
}

TEST(config_parse, overflow_policy_names) {
  EXPECT_EQ(
      load(eventbus_doc("    mqttQueueOverflowPolicy: dropNewest\n")).config.eventbus.overflow,
      overflow_policy::drop_newest);
  EXPECT_EQ(
      load(eventbus_doc("    mqttQueueOverflowPolicy: dropOldest\n")).config.eventbus.overflow,
      overflow_policy::drop_oldest);
  EXPECT_EQ(
      load(eventbus_doc("    mqttQueueOverflowPolicy: disconnect\n")).config.eventbus.overflow,
      overflow_policy::disconnect);
  EXPECT_THAT(errors_of(eventbus_doc("    mqttQueueOverflowPolicy: block\n")),
              ElementsAre(issue("modules.eventBus.mqttQueueOverflowPolicy",
                                R"(expected dropNewest, dropOldest or disconnect, got "block")")));
}

TEST(config_parse, timeouts_are_converted_to_milliseconds) {
  const auto r = load(eventbus_doc("    mqttConnectTimeoutSeconds: 3\n"));
  EXPECT_EQ(r.config.eventbus.connect_timeout, std::chrono::milliseconds(3000));
}

TEST(config_parse, empty_module_socket_paths_disable_the_sockets) {
  const auto r = load(eventbus_doc("    moduleSocket: \"\"\n    moduleStreamSocket: \"\"\n"));
  EXPECT_EQ(r.config.eventbus.module_socket, "");
  EXPECT_EQ(r.config.eventbus.module_stream_socket, "");
  EXPECT_THAT(r.warnings, IsEmpty());
}

// --- types ---------------------------------------------------------------------------------

TEST(config_types, word_where_an_integer_is_expected) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: two\n")),
              ElementsAre(issue("modules.eventBus.mqttMode", R"(expected an integer, got "two")")));
}

TEST(config_types, quoted_number_where_an_integer_is_expected) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: \"1\"\n")),
              ElementsAre(issue("modules.eventBus.mqttMode",
                                R"(expected an integer, got the string "1")")));
}

TEST(config_types, fraction_where_an_integer_is_expected) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttSessionQueueSize: 1.5\n")),
              ElementsAre(issue("modules.eventBus.mqttSessionQueueSize",
                                R"(expected an integer, got "1.5")")));
}

TEST(config_types, integer_outside_the_go_type) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttQOS: 256\n")),
      ElementsAre(issue("modules.eventBus.mqttQOS", "expected an integer from 0 to 255, got 256")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttSessionQueueSize: 2147483648\n")),
              ElementsAre(issue("modules.eventBus.mqttSessionQueueSize",
                                "expected an integer from -2147483648 to 2147483647")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 99999999999999999999\n")),
              ElementsAre(issue("modules.eventBus.mqttMode", "expected an integer from")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMaxConnections: -1\n")),
              ElementsAre(issue("modules.eventBus.mqttMaxConnections",
                                "expected an integer from 0 to 4294967295, got -1")));
}

TEST(config_types, module_bus_keys_of_the_wrong_type) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    moduleSocket: [/a, /b]\n")),
      ElementsAre(issue("modules.eventBus.moduleSocket", "expected a string, got a sequence")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleStreamSocket: {path: /a}\n")),
              ElementsAre(issue("modules.eventBus.moduleStreamSocket",
                                "expected a string, got a mapping")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocketMaxConnections: many\n")),
              ElementsAre(issue("modules.eventBus.moduleSocketMaxConnections",
                                R"(expected an integer, got "many")")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocketMaxMessageBytes: \"4096\"\n")),
              ElementsAre(issue("modules.eventBus.moduleSocketMaxMessageBytes",
                                R"(expected an integer, got the string "4096")")));
  EXPECT_THAT(errors_of(eventbus_doc("    groupBacklogSize: -1\n")),
              ElementsAre(issue("modules.eventBus.groupBacklogSize",
                                "expected an integer from 0 to 4294967295, got -1")));
}

TEST(config_types, yes_is_not_a_boolean) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttRetain: yes\n")),
      ElementsAre(issue("modules.eventBus.mqttRetain", R"(expected true or false, got "yes")")));
  EXPECT_THAT(errors_of(eventbus_doc("    enable: \"true\"\n")),
              ElementsAre(issue("modules.eventBus.enable", "expected true or false")));
}

TEST(config_types, collection_where_a_string_is_expected) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: {host: a}\n")),
              ElementsAre(issue("modules.eventBus.mqttServerInternal",
                                "expected a string, got a mapping")));
  EXPECT_THAT(errors_of("database:\n  dataSource: [a, b]\n"),
              ElementsAre(issue("database.dataSource", "expected a string, got a sequence")));
}

TEST(config_types, scalar_or_sequence_where_a_section_is_expected) {
  EXPECT_THAT(errors_of("modules:\n  eventBus: [1, 2]\n"),
              ElementsAre(issue("modules.eventBus", "expected a mapping, got a sequence")));
  EXPECT_THAT(errors_of("modules: on\n"),
              ElementsAre(issue("modules", R"(expected a mapping, got "on")")));
  EXPECT_THAT(errors_of(eventbus_doc("    eventBusTLS: true\n")),
              ElementsAre(issue("modules.eventBus.eventBusTLS", "expected a mapping")));
}

TEST(config_types, top_level_must_be_a_mapping) {
  EXPECT_THAT(errors_of("- a\n- b\n"),
              ElementsAre(issue("", "expected a mapping at the top level, got a sequence")));
  EXPECT_THAT(errors_of("just text\n"), ElementsAre(issue("", "expected a mapping at the top")));
}

TEST(config_types, type_errors_count_even_when_the_eventbus_is_disabled) {
  EXPECT_THAT(errors_of(eventbus_doc("    enable: false\n    mqttMode: two\n")),
              ElementsAre(issue("modules.eventBus.mqttMode", "expected an integer")));
}

TEST(config_types, values_are_not_echoed_beyond_a_short_prefix) {
  const std::string long_word(200, 'x');
  const auto errors = errors_of(eventbus_doc("    mqttMode: " + long_word + "\n"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_LT(errors[0].message.size(), 100u);
}

// --- YAML syntax ---------------------------------------------------------------------------

TEST(config_syntax, syntax_error_names_line_and_column) {
  const auto errors = errors_of("modules:\n  eventBus:\n    mqttMode: [1\n");
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "");
  EXPECT_THAT(errors[0].message, HasSubstr("YAML syntax error at line 4, column 1"));
}

TEST(config_syntax, bad_indentation_is_a_syntax_error) {
  const auto errors = errors_of("modules:\n  eventBus:\n    mqttMode: 1\n   mqttQOS: 1\n");
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message, HasSubstr("line 4, column"));
}

// --- unknown and foreign keys --------------------------------------------------------------

TEST(config_keys, unknown_keys_in_our_sections_are_warned_with_their_path) {
  const auto r = load(R"(modules:
  eventBus:
    mqttModee: 1
    eventBusTLS:
      tlsMqttCaFile2: /x
mqtt:
  servr: tcp://127.0.0.1:1883
)");
  EXPECT_THAT(r.warnings, ElementsAre(issue("mqtt.servr", "unknown key, ignored"),
                                      issue("modules.eventBus.mqttModee", "unknown key, ignored"),
                                      issue("modules.eventBus.eventBusTLS.tlsMqttCaFile2",
                                            "unknown key, ignored")));
  EXPECT_EQ(r.config, default_config());
}

TEST(config_keys, keys_of_other_sections_are_ignored_silently) {
  const auto r = load(R"(featureGates:
  moduleRestart: true
somethingNew: 1
database:
  driverName: sqlite3
  aliasName: default
modules:
  edgeHub:
    enable: true
  edged:
    enable: true
    tailoredKubeletConfig: {cgroupDriver: systemd}
)");
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_EQ(r.config, default_config());
}

TEST(config_keys, a_key_given_twice_uses_the_last_value_and_warns) {
  const auto r = load(eventbus_doc("    mqttQOS: 1\n    MQTTQOS: 2\n"));
  EXPECT_EQ(r.config.eventbus.qos, 2);
  EXPECT_THAT(r.warnings, ElementsAre(issue("modules.eventBus.mqttQOS",
                                            "set again as 'modules.eventBus.MQTTQOS'")));
}

// A trimmed `edgecore --defaultconfig` of KubeEdge 1.15, eventBus in mode 0.
TEST(config_keys, real_edgecore_yaml_loads_without_warnings) {
  const auto r = load(R"(apiVersion: edgecore.config.kubeedge.io/v1alpha2
database:
  aliasName: default
  dataSource: /var/lib/kubeedge/edgecore.db
  driverName: sqlite3
featureGates:
  requireAuthorization: false
kind: EdgeCore
modules:
  dbTest:
    enable: false
  deviceTwin:
    dmiSockPath: /etc/kubeedge/dmi.sock
    enable: true
  edgeHub:
    enable: true
    heartbeat: 15
    httpServer: https://192.168.1.10:10002
    messageBurst: 60
    messageQPS: 30
    projectID: e632aba927ea4ac2b575ec1603d56f10
    quic:
      enable: false
      handshakeTimeout: 30
      readDeadline: 15
      server: 192.168.1.10:10001
      writeDeadline: 15
    rotateCertificates: true
    tlsCaFile: /etc/kubeedge/ca/rootCA.crt
    tlsCertFile: /etc/kubeedge/certs/server.crt
    tlsPrivateKeyFile: /etc/kubeedge/certs/server.key
    token: ""
    websocket:
      enable: true
      handshakeTimeout: 30
      readDeadline: 15
      server: 192.168.1.10:10000
      writeDeadline: 15
  edgeStream:
    enable: false
    handshakeTimeout: 30
    readDeadline: 15
    server: 192.168.1.10:10004
    tlsTunnelCAFile: /etc/kubeedge/ca/rootCA.crt
    tlsTunnelCertFile: /etc/kubeedge/certs/server.crt
    tlsTunnelPrivateKeyFile: /etc/kubeedge/certs/server.key
    writeDeadline: 15
  edged:
    enable: true
    hostnameOverride: edge-node-1
    maxContainerCount: -1
    maxPerPodContainerCount: 1
    minimumGCAge: 0s
    podSandboxImage: kubeedge/pause:3.6
    registerNodeNamespace: default
    remoteImageEndpoint: unix:///run/containerd/containerd.sock
    remoteRuntimeEndpoint: unix:///run/containerd/containerd.sock
    tailoredKubeletConfig:
      address: 127.0.0.1
      cgroupDriver: cgroupfs
      clusterDNS:
      - 169.254.96.16
      clusterDomain: cluster.local
      evictionHard:
        imagefs.available: 15%
        memory.available: 100Mi
      maxPods: 110
    tailoredKubeletFlag:
      nodeLabels: {}
  eventBus:
    enable: true
    eventBusTLS:
      enable: false
      tlsMqttCAFile: /etc/kubeedge/ca/rootCA.crt
      tlsMqttCertFile: /etc/kubeedge/certs/server.crt
      tlsMqttPrivateKeyFile: /etc/kubeedge/certs/server.key
    mqttMode: 0
    mqttPassword: ""
    mqttPubClientID: ""
    mqttQOS: 0
    mqttRetain: false
    mqttServerExternal: tcp://127.0.0.1:1883
    mqttServerInternal: tcp://127.0.0.1:1884
    mqttSessionQueueSize: 100
    mqttSubClientID: ""
    mqttUsername: ""
  metaManager:
    contextSendGroup: hub
    contextSendModule: websocket
    enable: true
    metaServer:
      enable: false
      server: 127.0.0.1:10550
    remoteQueryTimeout: 60
  serviceBus:
    enable: false
    port: 9060
    server: 127.0.0.1
    timeout: 60
  taskManager:
    enable: false
)");
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_EQ(r.config.node_name, "edge-node-1");
  EXPECT_EQ(r.config.eventbus.mode, mqtt_mode::internal);
}

// --- v1.1 layout ---------------------------------------------------------------------------

TEST(config_old_layout, v1_1_edge_yaml_keys_are_mapped) {
  const auto r = load(R"(mqtt:
    server: tcp://10.1.1.1:1883
    internal-server: tcp://127.0.0.1:1885
    mode: 1
    qos: 1
    retain: true
    session-queue-size: 50
edgehub:
    websocket:
        url: wss://0.0.0.0:10000/e632aba927ea4ac2b575ec1603d56f10/edge-node/events
    controller:
        protocol: websocket
        heartbeat: 15
        project-id: e632aba927ea4ac2b575ec1603d56f10
        node-id: edge-node
edged:
    register-node-namespace: default
mesh:
    loadbalance:
        strategy-name: RoundRobin
)");
  EXPECT_THAT(r.warnings, IsEmpty());
  const auto& e = r.config.eventbus;
  EXPECT_EQ(e.server_external, "tcp://10.1.1.1:1883");
  EXPECT_EQ(e.server_internal, "tcp://127.0.0.1:1885");
  EXPECT_EQ(e.mode, mqtt_mode::both);
  EXPECT_EQ(e.qos, 1);
  EXPECT_TRUE(e.retain);
  EXPECT_EQ(e.session_queue_size, 50u);
  EXPECT_EQ(r.config.node_name, "edge-node");
}

TEST(config_old_layout, node_id_missing_keeps_the_host_name) {
  EXPECT_EQ(load("mqtt:\n  mode: 0\n").config.node_name, node_name_from_host(host_name()));
}

TEST(config_old_layout, current_layout_wins_with_a_warning) {
  // The current layout comes first in the file: the order of sections does not matter.
  const auto r = load(R"(modules:
  edged:
    hostnameOverride: new-name
  eventBus:
    mqttMode: 0
    mqttQOS: 1
mqtt:
  mode: 2
  qos: 2
  server: tcp://10.0.0.1:1883
edgehub:
  controller:
    node-id: old-name
)");
  EXPECT_EQ(r.config.eventbus.mode, mqtt_mode::internal);
  EXPECT_EQ(r.config.eventbus.qos, 1);
  EXPECT_EQ(r.config.node_name, "new-name");
  EXPECT_EQ(r.config.eventbus.server_external, "tcp://10.0.0.1:1883");
  EXPECT_THAT(r.warnings, ElementsAre(issue("edgehub.controller.node-id",
                                            "overridden by modules.edged.hostnameOverride"),
                                      issue("mqtt.mode", "overridden by modules.eventBus.mqttMode"),
                                      issue("mqtt.qos", "overridden by modules.eventBus.mqttQOS")));
}

TEST(config_old_layout, server_is_required_in_modes_1_and_2) {
  EXPECT_THAT(errors_of("mqtt:\n  mode: 2\n"),
              ElementsAre(issue("mqtt.server", "required when mqtt.mode is 1 or 2")));
  EXPECT_THAT(errors_of("mqtt:\n  mode: 1\n"),
              ElementsAre(issue("mqtt.server", "required when mqtt.mode is 1 or 2")));
  EXPECT_THAT(errors_of("mqtt:\n  qos: 0\nmodules:\n  eventBus:\n    mqttMode: 2\n"),
              ElementsAre(issue("mqtt.server", "required")));
}

TEST(config_old_layout, server_is_not_required_in_mode_0_or_when_the_current_layout_sets_it) {
  EXPECT_EQ(load("mqtt:\n  mode: 0\n").config.eventbus.mode, mqtt_mode::internal);
  EXPECT_EQ(load("mqtt:\n  retain: false\n").config.eventbus.mode, mqtt_mode::internal);
  const auto r = load(R"(mqtt:
  mode: 2
modules:
  eventBus:
    mqttServerExternal: tcp://10.0.0.2:1883
)");
  EXPECT_EQ(r.config.eventbus.server_external, "tcp://10.0.0.2:1883");
  EXPECT_EQ(
      load("mqtt:\n  mode: 2\nmodules:\n  eventBus:\n    enable: false\n").config.eventbus.mode,
      mqtt_mode::external);
}

TEST(config_old_layout, invalid_values_are_reported_at_the_old_key) {
  EXPECT_THAT(errors_of("mqtt:\n  qos: 5\n"), ElementsAre(issue("mqtt.qos", "must be 0, 1 or 2")));
  EXPECT_THAT(errors_of("mqtt:\n  mode: -1\n"),
              ElementsAre(issue("mqtt.mode", "must be 0 (internal broker), 1 (both) or 2")));
  EXPECT_THAT(errors_of("mqtt:\n  session-queue-size: 0\n"),
              ElementsAre(issue("mqtt.session-queue-size", "must be greater than 0, got 0")));
  EXPECT_THAT(errors_of("mqtt:\n  internal-server: http://127.0.0.1:1884\n"),
              ElementsAre(issue("mqtt.internal-server", "unsupported scheme 'http'")));
  EXPECT_THAT(errors_of("edgehub:\n  controller:\n    node-id: \"\"\n"),
              ElementsAre(issue("edgehub.controller.node-id", "must not be empty")));
}

TEST(config_old_layout, an_invalid_old_value_overridden_by_a_valid_one_is_no_error) {
  const auto r = load("mqtt:\n  mode: -1\nmodules:\n  eventBus:\n    mqttMode: 0\n");
  EXPECT_EQ(r.config.eventbus.mode, mqtt_mode::internal);
  EXPECT_THAT(r.warnings, ElementsAre(issue("mqtt.mode", "overridden")));
}

// --- validation: one test per rule ---------------------------------------------------------

TEST(config_validate, mode_outside_0_to_2) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 3\n")),
              ElementsAre(issue("modules.eventBus.mqttMode",
                                "must be 0 (internal broker), 1 (both) or 2 (external broker), "
                                "got 3")));
}

TEST(config_validate, negative_mode) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: -1\n")),
              ElementsAre(issue("modules.eventBus.mqttMode", "or 2 (external broker), got -1")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 1000\n")),
              ElementsAre(issue("modules.eventBus.mqttMode", "got 1000")));
}

TEST(config_validate, qos_outside_0_to_2) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttQOS: 3\n")),
              ElementsAre(issue("modules.eventBus.mqttQOS", "must be 0, 1 or 2, got 3")));
}

TEST(config_validate, session_queue_size_not_positive) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttSessionQueueSize: 0\n")),
      ElementsAre(issue("modules.eventBus.mqttSessionQueueSize", "must be greater than 0, got 0")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttSessionQueueSize: -5\n")),
              ElementsAre(issue("modules.eventBus.mqttSessionQueueSize",
                                "must be greater than 0, got -5")));
}

TEST(config_validate, max_packet_size_outside_mqtt_limits) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttMaxPacketSize: 63\n")),
      ElementsAre(issue("modules.eventBus.mqttMaxPacketSize", "must be between 64 and 268435455")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMaxPacketSize: 268435456\n")),
              ElementsAre(issue("modules.eventBus.mqttMaxPacketSize", "got 268435456")));
  EXPECT_EQ(
      load(eventbus_doc("    mqttMaxPacketSize: 268435455\n    mqttSessionQueueBytes: 268435455\n"
                        "    mqttMaxRetainedBytes: 268435455\n"
                        "    mqttExternalBufferBytes: 268435455\n"))
          .config.eventbus.max_packet_size,
      268435455u);
}

TEST(config_validate, max_connections_zero) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMaxConnections: 0\n")),
              ElementsAre(issue("modules.eventBus.mqttMaxConnections", "must be greater than 0")));
}

TEST(config_validate, max_inflight_outside_1_to_65535) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMaxInflightMessages: 0\n")),
              ElementsAre(issue("modules.eventBus.mqttMaxInflightMessages",
                                "must be between 1 and 65535")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMaxInflightMessages: 65536\n")),
              ElementsAre(issue("modules.eventBus.mqttMaxInflightMessages", "got 65536")));
}

TEST(config_validate, external_buffer_size_zero) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttExternalBufferSize: 0\n")),
      ElementsAre(issue("modules.eventBus.mqttExternalBufferSize", "must be greater than 0")));
}

TEST(config_validate, connect_timeout_zero) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttConnectTimeoutSeconds: 0\n")),
      ElementsAre(issue("modules.eventBus.mqttConnectTimeoutSeconds", "must be greater than 0")));
}

TEST(config_validate, reconnect_min_zero) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttReconnectMinMilliseconds: 0\n")),
              ElementsAre(issue("modules.eventBus.mqttReconnectMinMilliseconds",
                                "must be greater than 0")));
}

TEST(config_validate, reconnect_min_above_max) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttReconnectMinMilliseconds: 5000\n"
                                     "    mqttReconnectMaxMilliseconds: 1000\n")),
              ElementsAre(issue("modules.eventBus.mqttReconnectMinMilliseconds",
                                "must not exceed mqttReconnectMaxMilliseconds (1000), got 5000")));
}

TEST(config_validate, keepalive_above_65535) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttKeepAliveSeconds: 65536\n")),
              ElementsAre(issue("modules.eventBus.mqttKeepAliveSeconds",
                                "must be 0 (none) or between 5 and 65535, got 65536")));
  EXPECT_EQ(
      load(eventbus_doc("    mqttKeepAliveSeconds: 65535\n")).config.eventbus.keepalive_seconds,
      65535);
}

TEST(config_validate, keepalive_below_5_except_0) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttKeepAliveSeconds: 4\n")),
              ElementsAre(issue("modules.eventBus.mqttKeepAliveSeconds",
                                "must be 0 (none) or between 5 and 65535, got 4")));
  EXPECT_EQ(load(eventbus_doc("    mqttKeepAliveSeconds: 0\n")).config.eventbus.keepalive_seconds,
            0);
  EXPECT_EQ(load(eventbus_doc("    mqttKeepAliveSeconds: 5\n")).config.eventbus.keepalive_seconds,
            5);
}

TEST(config_validate, same_client_ids_in_external_modes) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 2\n    mqttSubClientID: edge\n"
                                     "    mqttPubClientID: edge\n")),
              ElementsAre(issue("modules.eventBus.mqttPubClientID",
                                "must differ from mqttSubClientID 'edge'")));
  EXPECT_EQ(load(eventbus_doc("    mqttMode: 0\n    mqttSubClientID: edge\n"
                              "    mqttPubClientID: edge\n"))
                .config.eventbus.pub_client_id,
            "edge");
}

TEST(config_validate, internal_url_with_an_unknown_scheme) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: http://127.0.0.1:1884\n")),
              ElementsAre(issue("modules.eventBus.mqttServerInternal",
                                "unsupported scheme 'http' in 'http://127.0.0.1:1884' (supported: "
                                "tcp, mqtt, tls, ssl, mqtts, ws, wss)")));
}

TEST(config_validate, internal_url_needs_host_and_port) {
  const auto path = "modules.eventBus.mqttServerInternal";
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://127.0.0.1\n")),
              ElementsAre(issue(path, "missing port in 'tcp://127.0.0.1'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://:1884\n")),
              ElementsAre(issue(path, "missing host")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://127.0.0.1:0\n")),
              ElementsAre(issue(path, "invalid port '0'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://127.0.0.1:65536\n")),
              ElementsAre(issue(path, "invalid port '65536'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://127.0.0.1:http\n")),
              ElementsAre(issue(path, "invalid port 'http'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: 127.0.0.1:1884\n")),
              ElementsAre(issue(path, "is not a URL of the form tcp://host:port")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://::1:1884\n")),
              ElementsAre(issue(path, "IPv6 address without brackets")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://127.0.0.1:1884/mqtt\n")),
              ElementsAre(issue(path, "unexpected path")));
}

TEST(config_validate, internal_url_forms_that_are_accepted) {
  for (const char* url :
       {"tcp://127.0.0.1:1884", "mqtt://0.0.0.0:1", "tcp://[::1]:65535", "tcp://localhost:1884/"}) {
    EXPECT_EQ(load(eventbus_doc(std::string("    mqttServerInternal: ") + url + "\n"))
                  .config.eventbus.server_internal,
              url);
  }
}

TEST(config_validate, internal_url_is_not_checked_in_external_mode) {
  EXPECT_EQ(load(eventbus_doc("    mqttMode: 2\n    mqttServerInternal: ws://x\n"))
                .config.eventbus.server_internal,
            "ws://x");
}

TEST(config_validate, external_url_with_websocket_scheme) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: ws://b:80\n")),
              ElementsAre(issue("modules.eventBus.mqttServerExternal",
                                "unsupported scheme 'ws': the MQTT client does not speak "
                                "WebSocket")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 1\n    mqttServerExternal: wss://b\n")),
              ElementsAre(issue("modules.eventBus.mqttServerExternal", "scheme 'wss'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: http://b\n")),
              ElementsAre(issue("modules.eventBus.mqttServerExternal",
                                "unsupported scheme 'http': use tcp://, mqtt://, ssl://")));
}

TEST(config_validate, external_url_port_may_be_left_out) {
  for (const char* url : {"tcp://broker", "mqtt://broker:1883", "ssl://broker", "tls://b:8883",
                          "mqtts://[fe80::1]", "tcp://10.0.0.1/", "tcps://b"}) {
    EXPECT_EQ(
        load(eventbus_doc(std::string("    mqttMode: 2\n    mqttServerExternal: ") + url + "\n"))
            .config.eventbus.server_external,
        url);
  }
}

TEST(config_validate, external_url_needs_a_host_and_a_valid_port) {
  const auto path = "modules.eventBus.mqttServerExternal";
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: tcp://\n")),
              ElementsAre(issue(path, "missing host")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: tcp://b:0\n")),
              ElementsAre(issue(path, "invalid port '0'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: \"tcp://b:\"\n")),
              ElementsAre(issue(path, "invalid port ''")));
}

TEST(config_validate, external_url_forms_that_paho_dials_are_accepted) {
  // Credentials, a Unix socket, and AddBroker's scheme-less forms.
  for (const char* url : {"tcp://u:hunter2@b:1883", "ssl://u%40x:p%2Fw@b", "unix:///run/mqtt.sock",
                          "10.0.0.2:1883", ":1883"}) {
    EXPECT_EQ(load(eventbus_doc(std::string("    mqttMode: 2\n    mqttServerExternal: \"") + url +
                                "\"\n"))
                  .config.eventbus.server_external,
              url);
  }
}

TEST(config_validate, external_url_errors_do_not_echo_the_password) {
  const auto errors =
      errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: tcp://u:hunter2@b:0\n"));
  EXPECT_THAT(errors,
              ElementsAre(issue("modules.eventBus.mqttServerExternal",
                                "invalid port '0' in 'tcp://u:***@b:0' (must be 1 to 65535)")));
  EXPECT_THAT(errors.at(0).message, Not(HasSubstr("hunter2")));
  const auto unencoded =
      errors_of(eventbus_doc("    mqttMode: 2\n    mqttServerExternal: tcp://u:hun/ter2@b\n"));
  EXPECT_THAT(unencoded, ElementsAre(issue("modules.eventBus.mqttServerExternal", "%2F")));
  EXPECT_THAT(unencoded.at(0).message, Not(HasSubstr("hun")));
}

TEST(config_validate, external_unix_socket_must_be_an_absolute_path) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttMode: 1\n    mqttServerExternal: unix://mosquitto.sock\n")),
      ElementsAre(issue("modules.eventBus.mqttServerExternal", "is relative")));
  EXPECT_THAT(
      errors_of(eventbus_doc(std::string("    mqttMode: 2\n    mqttServerExternal: unix:///") +
                             std::string(120, 'x') + "\n")),
      ElementsAre(issue("modules.eventBus.mqttServerExternal", "shorter than 108 bytes")));
}

TEST(config_validate, external_url_is_not_checked_in_internal_mode) {
  EXPECT_EQ(load(eventbus_doc("    mqttMode: 0\n    mqttServerExternal: ws://x\n"))
                .config.eventbus.server_external,
            "ws://x");
}

TEST(config_validate, tls_files_must_be_readable_in_external_modes) {
  const temp_path ca("ca.crt");
  ca.write("ca");
  const temp_path missing("missing.crt");
  const temp_path dir("certs");
  dir.make_directory();
  const auto doc = eventbus_doc(
      "    mqttMode: 2\n    eventBusTLS:\n      enable: true\n"
      "      tlsMqttCAFile: " +
      ca.str() + "\n      tlsMqttCertFile: " + missing.str() +
      "\n      tlsMqttPrivateKeyFile: " + dir.str() + "\n");
  EXPECT_THAT(errors_of(doc),
              ElementsAre(issue("modules.eventBus.eventBusTLS.tlsMqttCertFile",
                                "cannot read '" + missing.str() + "': No such file or directory"),
                          issue("modules.eventBus.eventBusTLS.tlsMqttPrivateKeyFile",
                                "cannot read '" + dir.str() + "': Is a directory")));
}

TEST(config_validate, tls_default_files_missing_is_the_documented_message) {
  auto c = default_config();
  c.eventbus.mode = mqtt_mode::both;
  c.eventbus.tls.enable = true;
  c.eventbus.tls.ca_file = "/x";
  EXPECT_THAT(validate(c), Contains(issue("modules.eventBus.eventBusTLS.tlsMqttCAFile",
                                          "cannot read '/x': No such file or directory")));
}

TEST(config_validate, readable_tls_files_are_accepted) {
  const temp_path ca("ca.crt");
  const temp_path cert("server.crt");
  const temp_path key("server.key");
  ca.write("ca");
  cert.write("cert");
  key.write("key");
  const auto r =
      load(eventbus_doc("    mqttMode: 1\n    eventBusTLS:\n      enable: true\n"
                        "      tlsMqttCAFile: " +
                        ca.str() + "\n      tlsMqttCertFile: " + cert.str() +
                        "\n      tlsMqttPrivateKeyFile: " + key.str() + "\n"));
  EXPECT_TRUE(r.config.eventbus.tls.enable);
  EXPECT_EQ(r.config.eventbus.tls.private_key_file, key.str());
}

TEST(config_validate, tls_files_are_not_checked_without_the_external_broker) {
  const auto r =
      load(eventbus_doc("    mqttMode: 0\n    eventBusTLS:\n      enable: true\n"
                        "      tlsMqttCAFile: /nonexistent/ca.crt\n"));
  EXPECT_TRUE(r.config.eventbus.tls.enable);
  EXPECT_TRUE(load(eventbus_doc("    mqttMode: 2\n    eventBusTLS:\n      enable: false\n"
                                "      tlsMqttCAFile: /nonexistent/ca.crt\n"))
                  .config.eventbus.server_external.size());
}

TEST(config_validate, module_socket_must_be_an_absolute_path) {
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocket: run/eventbus.sock\n")),
              ElementsAre(issue("modules.eventBus.moduleSocket",
                                "must be an absolute path, got 'run/eventbus.sock'")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleStreamSocket: eventbus.sock\n")),
              ElementsAre(issue("modules.eventBus.moduleStreamSocket",
                                "must be an absolute path, got 'eventbus.sock'")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocket: \"/run/a\\0b\"\n")),
              ElementsAre(issue("modules.eventBus.moduleSocket", "contains a NUL character")));
}

TEST(config_validate, module_socket_path_must_fit_sun_path) {
  const std::string longest = "/" + std::string(106, 's');  // 107 bytes and the NUL: 108
  EXPECT_EQ(load(eventbus_doc("    moduleSocket: " + longest + "\n")).config.eventbus.module_socket,
            longest);
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocket: " + longest + "s\n")),
              ElementsAre(issue("modules.eventBus.moduleSocket",
                                "must be shorter than 108 bytes (the limit of a Unix socket "
                                "path), got 108")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleStreamSocket: " + longest + "ss\n")),
              ElementsAre(issue("modules.eventBus.moduleStreamSocket", "got 109")));
}

TEST(config_validate, module_sockets_must_differ) {
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocket: /run/bus.sock\n"
                                     "    moduleStreamSocket: /run/bus.sock\n")),
              ElementsAre(issue("modules.eventBus.moduleStreamSocket",
                                "must differ from moduleSocket '/run/bus.sock'")));
  const auto r =
      load(eventbus_doc("    moduleSocket: \"\"\n    moduleStreamSocket: /run/bus.sock\n"));
  EXPECT_EQ(r.config.eventbus.module_stream_socket, "/run/bus.sock");
}

TEST(config_validate, module_socket_max_connections_zero) {
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocketMaxConnections: 0\n")),
              ElementsAre(issue("modules.eventBus.moduleSocketMaxConnections",
                                "must be greater than 0, got 0")));
  EXPECT_EQ(load(eventbus_doc("    moduleSocketMaxConnections: 1\n"))
                .config.eventbus.module_socket_max_connections,
            1u);
}

TEST(config_validate, module_socket_max_message_bytes_outside_1024_to_268435455) {
  const auto path = "modules.eventBus.moduleSocketMaxMessageBytes";
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocketMaxMessageBytes: 1023\n")),
              ElementsAre(issue(path, "must be between 1024 and 268435455, got 1023")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocketMaxMessageBytes: 268435456\n")),
              ElementsAre(issue(path, "got 268435456")));
  for (const std::size_t n : {std::size_t{1024}, std::size_t{268435455}}) {
    // Disabled: a small limit would otherwise be refused for the broker's largest message.
    EXPECT_EQ(load(eventbus_doc("    enable: false\n    moduleSocketOutboundBytes: 268435455\n"
                                "    moduleSocketMaxMessageBytes: " +
                                std::to_string(n) + "\n"))
                  .config.eventbus.module_socket_max_message_bytes,
              n);
  }
}

TEST(config_validate, group_backlog_size_above_a_million) {
  EXPECT_THAT(errors_of(eventbus_doc("    groupBacklogSize: 1000001\n")),
              ElementsAre(issue("modules.eventBus.groupBacklogSize",
                                "must be at most 1000000 (0 keeps none), got 1000001")));
  EXPECT_EQ(
      load(eventbus_doc("    groupBacklogSize: 1000000\n")).config.eventbus.group_backlog_size,
      1000000u);
  EXPECT_EQ(load(eventbus_doc("    groupBacklogSize: 0\n")).config.eventbus.group_backlog_size, 0u);
}

TEST(config_validate, module_bus_keys_are_checked_even_when_the_eventbus_is_disabled) {
  const auto errors = errors_of(eventbus_doc(R"(    enable: false
    moduleSocket: relative.sock
    moduleSocketMaxConnections: 0
    moduleSocketMaxMessageBytes: 10
    groupBacklogSize: 2000000
)"));
  EXPECT_THAT(errors,
              ElementsAre(issue("modules.eventBus.moduleSocket", "absolute path"),
                          issue("modules.eventBus.moduleSocketMaxConnections", "greater than 0"),
                          issue("modules.eventBus.moduleSocketMaxMessageBytes", "between 1024"),
                          issue("modules.eventBus.groupBacklogSize", "at most 1000000")));
}

TEST(config_validate, password_without_username_is_a_warning) {
  const auto r = load(eventbus_doc("    mqttPassword: secret\n"));
  EXPECT_THAT(r.warnings, ElementsAre(issue("modules.eventBus.mqttPassword",
                                            "set without mqttUsername; it is never sent")));
  EXPECT_THAT(load(eventbus_doc("    mqttUsername: u\n    mqttPassword: p\n")).warnings, IsEmpty());
  // A user in the URL sends the password, as Paho does.
  EXPECT_THAT(load(eventbus_doc("    mqttServerExternal: tcp://edge@broker:1883\n"
                                "    mqttPassword: p\n"))
                  .warnings,
              IsEmpty());
}

TEST(config_validate, empty_node_name) {
  EXPECT_THAT(errors_of("modules:\n  edged:\n    hostnameOverride: \"\"\n"),
              ElementsAre(issue("modules.edged.hostnameOverride", "must not be empty")));
}

TEST(config_validate, node_name_must_be_an_rfc_1123_subdomain_as_edgecore_checks) {
  for (const char* name :
       {"Edge-Node", "edge_node", "-edge", "edge-", "a..b", "edge/1", "a b", "Example%$#com"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(
        errors_of("modules:\n  edged:\n    hostnameOverride: \"" + std::string(name) + "\"\n"),
        ElementsAre(issue("modules.edged.hostnameOverride",
                          "a lowercase RFC 1123 subdomain must consist of lower case "
                          "alphanumeric characters, '-' or '.'")));
  }
  EXPECT_THAT(
      errors_of("modules:\n  edged:\n    hostnameOverride: " + std::string(254, 'a') + "\n"),
      ElementsAre(issue("modules.edged.hostnameOverride", "must be no more than 253 characters")));
  // v1.1's node-id names the same thing.
  EXPECT_THAT(errors_of("edgehub:\n  controller:\n    node-id: Edge\n"),
              ElementsAre(issue("edgehub.controller.node-id", "invalid node name 'Edge'")));
  for (const char* name : {"edge-node", "a", "1234", "node-1.example.com", "0a-b.c9"}) {
    EXPECT_EQ(load("modules:\n  edged:\n    hostnameOverride: " + std::string(name) + "\n")
                  .config.node_name,
              name);
  }
  EXPECT_EQ(load("modules:\n  edged:\n    hostnameOverride: " + std::string(253, 'a') + "\n")
                .config.node_name.size(),
            253u);
  EXPECT_EQ(node_name_problem("edge-node"), std::nullopt);
}

TEST(config_defaults, node_name_from_the_host_name_is_trimmed_lower_cased_or_the_fallback) {
  EXPECT_EQ(node_name_from_host("Edge-Node-1"), "edge-node-1");
  EXPECT_EQ(node_name_from_host(" \tEDGE.Example.COM\n"), "edge.example.com");
  EXPECT_EQ(node_name_from_host("edge_node"), "default-edge-node");
  EXPECT_EQ(node_name_from_host("   "), "default-edge-node");
  EXPECT_EQ(node_name_from_host(""), "default-edge-node");
  EXPECT_EQ(node_name_from_host(std::string(254, 'a')), "default-edge-node");
  EXPECT_EQ(node_name_from_host("h\xc3\xa9te"), "default-edge-node");
}

TEST(config_validate, empty_data_source) {
  EXPECT_THAT(errors_of("database:\n  dataSource: \"\"\n"),
              ElementsAre(issue("database.dataSource", "must not be empty")));
}

TEST(config_validate, disabled_eventbus_skips_the_routing_and_external_checks) {
  const auto r = load(eventbus_doc(R"(    enable: false
    mqttMode: 7
    mqttQOS: 9
    mqttServerExternal: ws://x
    mqttKeepAliveSeconds: 70000
    mqttReconnectMinMilliseconds: 0
    mqttPassword: p
    maxRuntimeSubscriptions: 0
    storeQueueSize: 0
)"));
  EXPECT_FALSE(r.config.eventbus.enable);
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(config_validate, disabled_eventbus_still_checks_the_embedded_broker_it_runs) {
  // Broker-only mode: the embedded broker runs on mqttServerInternal whatever the mode says.
  const auto errors = errors_of(eventbus_doc(R"(    enable: false
    mqttMode: 2
    mqttSessionQueueSize: -1
    mqttServerInternal: http://x:1
    mqttMaxPacketSize: 10
    mqttMaxInflightMessages: 0
    maxMemoryBytes: 1000
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(issue("modules.eventBus.mqttSessionQueueSize", "must be greater than 0, got -1"),
                  issue("modules.eventBus.mqttMaxPacketSize", "got 10"),
                  issue("modules.eventBus.mqttMaxInflightMessages", "got 0"),
                  issue("modules.eventBus.mqttServerInternal", "unsupported scheme 'http'"),
                  issue("modules.eventBus.maxMemoryBytes", "got 1000")));
}

TEST(config_validate, warnings_are_kept_when_the_file_has_errors) {
  // A misspelt key is often the reason for the error: both must reach the user.
  const auto r = parse_config(eventbus_doc(R"(    mqttMod: 1
    moduleSockt: /run/x.sock
    mqttQOS: 7
)"));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), ElementsAre(issue("modules.eventBus.mqttQOS", "must be 0, 1 or 2")));
  EXPECT_THAT(r.error().warnings,
              ElementsAre(issue("modules.eventBus.mqttMod", "unknown key, ignored"),
                          issue("modules.eventBus.moduleSockt", "unknown key, ignored")));
}

TEST(config_validate, disabled_eventbus_still_needs_node_name_and_data_source) {
  EXPECT_THAT(
      errors_of("database:\n  dataSource: \"\"\nmodules:\n  eventBus:\n    enable: false\n"),
      ElementsAre(issue("database.dataSource", "must not be empty")));
}

TEST(config_validate, every_problem_is_reported_at_once) {
  const auto errors = errors_of(R"(database:
  dataSource: ""
modules:
  eventBus:
    mqttMode: 1
    mqttQOS: 3
    mqttRetain: maybe
    mqttSessionQueueSize: 0
    mqttServerInternal: http://127.0.0.1:1884
    mqttServerExternal: wss://broker
    mqttMaxInflightMessages: 0
    mqttKeepAliveSeconds: 100000
    moduleSocket: bus.sock
)");
  EXPECT_THAT(errors, SizeIs(9));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttRetain", "expected true or false")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttQOS", "must be 0, 1 or 2")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttSessionQueueSize", "greater than 0")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttServerInternal", "scheme 'http'")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttServerExternal", "scheme 'wss'")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttMaxInflightMessages", "between 1")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.mqttKeepAliveSeconds", "and 65535")));
  EXPECT_THAT(errors, Contains(issue("modules.eventBus.moduleSocket", "absolute path")));
  EXPECT_THAT(errors, Contains(issue("database.dataSource", "must not be empty")));
}

TEST(config_validate, validate_uses_the_canonical_paths) {
  auto c = default_config();
  c.eventbus.qos = 7;
  c.eventbus.mode = static_cast<mqtt_mode>(9);
  c.node_name.clear();
  c.eventbus.group_backlog_size = 1000001;
  EXPECT_THAT(validate(c),
              ElementsAre(issue("modules.eventBus.mqttMode", "got 9"),
                          issue("modules.eventBus.mqttQOS", "got 7"),
                          issue("modules.eventBus.groupBacklogSize", "got 1000001"),
                          issue("modules.edged.hostnameOverride", "must not be empty")));
}

// --- files and hostile input ---------------------------------------------------------------

TEST(config_file, missing_file_is_one_error_naming_it) {
  const temp_path missing("nope.yaml");
  const auto r = load_config(missing.str());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), ElementsAre(issue("", "cannot read '" + missing.str() +
                                                   "': No such file or directory")));
}

TEST(config_file, directory_is_refused) {
  const temp_path dir("conf.d");
  dir.make_directory();
  const auto r = load_config(dir.str());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), ElementsAre(issue("", "Is a directory")));
}

TEST(config_file, file_is_read_and_parsed) {
  const temp_path file("edgecore.yaml");
  file.write(eventbus_doc("    mqttQOS: 2\n"));
  const auto r = load_config(file.str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->config.eventbus.qos, 2);
}

TEST(config_hostile, aliases_deep_nesting_and_binary_do_not_crash) {
  EXPECT_FALSE(parse_config(std::string(5000, '[')));
  EXPECT_FALSE(parse_config("a: &x [*x]\nmodules: *x\n"));
  EXPECT_TRUE(parse_config("base: &b {mqttQOS: 1}\nmodules: {eventBus: *b}\n"));
  const auto binary = parse_config(std::string("\0\xff\xfe:\x01", 5));
  EXPECT_TRUE(binary || !binary.error().empty());
  EXPECT_TRUE(
      parse_config("? [complex, key]\n: 1\nmodules:\n  eventBus:\n    ? {a: 1}\n    : 2\n"));
}

TEST(config_limits, every_limit_key_is_read) {
  const auto r = load(eventbus_doc(R"(    maxMemoryBytes: 33554432
    mqttSessionQueueBytes: 2097152
    mqttSlowSubscriberTimeoutMilliseconds: 750
    mqttPacketTimeoutSeconds: 12
    mqttMaxRetainedMessages: 5
    mqttMaxRetainedBytes: 2097152
    mqttMaxSubscriptionsPerClient: 6
    mqttMaxTopicLength: 300
    mqttMaxTopicLevels: 9
    mqttMaxPersistentSessions: 11
    mqttSessionExpirySeconds: 0
    mqttExternalBufferBytes: 3145728
    moduleInboxBytes: 4096
    groupBacklogBytes: 8192
    moduleSocketOutboundBytes: 9437184
    maxRuntimeSubscriptions: 13
    maxRuntimeSubscriptionBytes: 1400
    storeQueueSize: 15
    storeQueueBytes: 1600
    storeShutdownTimeoutSeconds: 2
)"));
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_THAT(validate(r.config), IsEmpty());
  const auto& e = r.config.eventbus;
  EXPECT_EQ(e.max_memory_bytes, 33554432u);
  EXPECT_EQ(e.session_queue_bytes, 2097152u);
  EXPECT_EQ(e.slow_subscriber_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(e.packet_timeout, std::chrono::seconds(12));
  EXPECT_EQ(e.max_retained_messages, 5u);
  EXPECT_EQ(e.max_retained_bytes, 2097152u);
  EXPECT_EQ(e.max_subscriptions_per_client, 6u);
  EXPECT_EQ(e.max_topic_length, 300u);
  EXPECT_EQ(e.max_topic_levels, 9u);
  EXPECT_EQ(e.max_persistent_sessions, 11u);
  EXPECT_EQ(e.session_expiry, std::chrono::seconds(0));
  EXPECT_EQ(e.external_buffer_bytes, 3145728u);
  EXPECT_EQ(e.module_inbox_bytes, 4096u);
  EXPECT_EQ(e.group_backlog_bytes, 8192u);
  EXPECT_EQ(e.module_socket_outbound_bytes, 9437184u);
  EXPECT_EQ(e.max_runtime_subscriptions, 13u);
  EXPECT_EQ(e.max_runtime_subscription_bytes, 1400u);
  EXPECT_EQ(e.store_queue_size, 15u);
  EXPECT_EQ(e.store_queue_bytes, 1600u);
  EXPECT_EQ(e.store_shutdown_timeout, std::chrono::seconds(2));
}

TEST(config_limits, inconsistent_limits_fail_with_the_key_and_the_reason) {
  EXPECT_THAT(errors_of(eventbus_doc("    maxMemoryBytes: 1000\n")),
              ElementsAre(issue("modules.eventBus.maxMemoryBytes",
                                "must be 0 (unlimited) or at least 16777216 (16 MiB), got 1000")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttSessionQueueBytes: 1000\n")),
              ElementsAre(issue("modules.eventBus.mqttSessionQueueBytes",
                                "must be at least mqttMaxPacketSize (1048576)")));
  EXPECT_THAT(errors_of(eventbus_doc("    moduleSocketMaxMessageBytes: 4194304\n")),
              ElementsAre(issue("modules.eventBus.moduleSocketMaxMessageBytes",
                                "must be at least 6356992 (6 x mqttMaxPacketSize + 64 KiB)")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttMaxTopicLength: 65536\n")),
              ElementsAre(issue("modules.eventBus.mqttMaxTopicLength",
                                "must be between 1 and 65535 (the MQTT limit), got 65536")));
  EXPECT_THAT(
      errors_of(eventbus_doc("    mqttPacketTimeoutSeconds: 0\n")),
      ElementsAre(issue("modules.eventBus.mqttPacketTimeoutSeconds", "must be greater than 0")));
  EXPECT_THAT(validate(load(eventbus_doc("    maxMemoryBytes: 0\n")).config), IsEmpty())
      << "0: unlimited";
}

}  // namespace
}  // namespace ebus::config
