// Listeners, authentication, ACL and module-socket credentials: internalListener, listeners,
// passwordFile, aclFile, moduleSocketAllowedUids/Gids. Each key read, each check with its key
// path, and the warnings. Certificates are made with the openssl command in a temp directory.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/config_loader.hpp"
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

constexpr const char* internal = "modules.eventBus.internalListener";
constexpr const char* l0 = "modules.eventBus.listeners[0]";
constexpr const char* l1 = "modules.eventBus.listeners[1]";

std::string at(const char* base, const char* key) {
  return std::string(base) + "." + key;
}

// Two EC key pairs, an RSA key, a password file and an ACL file, made once for the suite.
class config_listeners : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new temp_path("listeners");
    dir_->make_directory();
    const auto pair = [](const std::string& name) {
      return "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
             "-subj /CN=" +
             name + " -keyout " + file(name + ".key") + " -out " + file(name + ".crt") +
             " 2>/dev/null";
    };
    ASSERT_EQ(std::system(pair("a").c_str()), 0) << "the openssl command is needed";
    ASSERT_EQ(std::system(pair("b").c_str()), 0);
    ASSERT_EQ(std::system(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
                           file("rsa.key") + " 2>/dev/null")
                              .c_str()),
              0);
    std::ofstream(file("passwd")) << "dev1:$7$101$c2FsdA==$aGFzaA==\n";
    std::ofstream(file("acl")) << "pattern write $hw/events/device/%u/#\n";
    std::ofstream(file("junk.pem")) << "not PEM\n";
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string file(const std::string& name) { return dir_->str() + "/" + name; }
  static std::string cert() { return file("a.crt"); }
  static std::string key() { return file("a.key"); }
  static std::string passwd() { return file("passwd"); }
  static std::string acl() { return file("acl"); }

  /// A `listeners` entry with the given url and the readable certificate pair.
  static std::string tls_entry(const std::string& url, const std::string& more = "") {
    return "      - url: " + url + "\n        certFile: " + cert() + "\n        keyFile: " + key() +
           "\n" + more;
  }

 private:
  static temp_path* dir_;
};

temp_path* config_listeners::dir_ = nullptr;

// --- reading -------------------------------------------------------------------------------

TEST(config_listeners_defaults, every_key_has_its_documented_default) {
  const auto c = default_config();
  const auto& e = c.eventbus;
  EXPECT_EQ(e.internal_listener, listener_config{});
  EXPECT_EQ(e.internal_listener.allow_anonymous, std::nullopt);
  EXPECT_EQ(e.internal_listener.cert_file, "");
  EXPECT_EQ(e.internal_listener.key_file, "");
  EXPECT_EQ(e.internal_listener.ca_file, "");
  EXPECT_FALSE(e.internal_listener.require_certificate);
  EXPECT_FALSE(e.internal_listener.use_identity_as_username);
  EXPECT_EQ(e.internal_listener.path, "/mqtt");
  EXPECT_THAT(e.listeners, IsEmpty());
  EXPECT_EQ(e.password_file, "");
  EXPECT_EQ(e.acl_file, "");
  EXPECT_THAT(e.module_socket_allowed_uids, IsEmpty());
  EXPECT_THAT(e.module_socket_allowed_gids, IsEmpty());
}

TEST_F(config_listeners, every_key_is_read) {
  const auto r =
      load(eventbus_doc("    mqttServerInternal: wss://127.0.0.1:8443\n"
                        "    internalListener:\n"
                        "      allowAnonymous: false\n"
                        "      certFile: " +
                        cert() + "\n      keyFile: " + key() + "\n      caFile: " + cert() +
                        "\n"
                        "      requireCertificate: true\n"
                        "      useIdentityAsUsername: true\n"
                        "      path: /broker\n"
                        "    listeners:\n"
                        "      - url: ws://127.0.0.1:8080\n"
                        "        allowAnonymous: true\n"
                        "        path: /ws\n" +
                        tls_entry("ssl://127.0.0.1:8883") + "    passwordFile: " + passwd() +
                        "\n    aclFile: " + acl() +
                        "\n"
                        "    moduleSocketAllowedUids: [1000, 0, 4294967295]\n"
                        "    moduleSocketAllowedGids:\n"
                        "      - 20\n"));
  EXPECT_THAT(r.warnings, IsEmpty());
  const auto& e = r.config.eventbus;
  EXPECT_EQ(e.server_internal, "wss://127.0.0.1:8443");
  const auto& i = e.internal_listener;
  EXPECT_EQ(i.url, "");
  EXPECT_EQ(i.allow_anonymous, false);
  EXPECT_EQ(i.cert_file, cert());
  EXPECT_EQ(i.key_file, key());
  EXPECT_EQ(i.ca_file, cert());
  EXPECT_TRUE(i.require_certificate);
  EXPECT_TRUE(i.use_identity_as_username);
  EXPECT_EQ(i.path, "/broker");
  ASSERT_THAT(e.listeners, SizeIs(2));
  EXPECT_EQ(e.listeners[0].url, "ws://127.0.0.1:8080");
  EXPECT_EQ(e.listeners[0].allow_anonymous, true);
  EXPECT_EQ(e.listeners[0].path, "/ws");
  EXPECT_EQ(e.listeners[0].cert_file, "");
  EXPECT_EQ(e.listeners[1].url, "ssl://127.0.0.1:8883");
  EXPECT_EQ(e.listeners[1].allow_anonymous, std::nullopt);
  EXPECT_EQ(e.listeners[1].cert_file, cert());
  EXPECT_EQ(e.listeners[1].key_file, key());
  EXPECT_EQ(e.listeners[1].path, "/mqtt");
  EXPECT_EQ(e.password_file, passwd());
  EXPECT_EQ(e.acl_file, acl());
  EXPECT_EQ(e.module_socket_allowed_uids, (std::vector<std::uint32_t>{1000, 0, 4294967295u}));
  EXPECT_EQ(e.module_socket_allowed_gids, (std::vector<std::uint32_t>{20}));
}

TEST(config_listeners_read, allow_anonymous_unset_or_null_stays_unset) {
  EXPECT_EQ(load(eventbus_doc("    internalListener:\n      path: /x\n"))
                .config.eventbus.internal_listener.allow_anonymous,
            std::nullopt);
  EXPECT_EQ(load(eventbus_doc("    internalListener:\n      allowAnonymous: ~\n"))
                .config.eventbus.internal_listener.allow_anonymous,
            std::nullopt);
  EXPECT_EQ(load(eventbus_doc("    internalListener:\n      allowAnonymous: TRUE\n"))
                .config.eventbus.internal_listener.allow_anonymous,
            true);
}

TEST(config_listeners_read, null_and_empty_sections_keep_the_defaults) {
  const auto r =
      load(eventbus_doc("    internalListener:\n    listeners:\n    passwordFile: ~\n    aclFile:\n"
                        "    moduleSocketAllowedUids:\n    moduleSocketAllowedGids: []\n"));
  EXPECT_EQ(r.config, default_config());
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(config_listeners_read, keys_match_case_insensitively_and_paths_are_written_as_in_the_file) {
  const auto r =
      load(eventbus_doc("    LISTENERS:\n      - URL: ws://127.0.0.1:8080\n        PATH: /p\n"
                        "    INTERNALLISTENER:\n      AllowAnonymous: true\n"
                        "    moduleSocketAllowedUIDs: [7]\n"));
  ASSERT_THAT(r.config.eventbus.listeners, SizeIs(1));
  EXPECT_EQ(r.config.eventbus.listeners[0].url, "ws://127.0.0.1:8080");
  EXPECT_EQ(r.config.eventbus.listeners[0].path, "/p");
  EXPECT_EQ(r.config.eventbus.internal_listener.allow_anonymous, true);
  EXPECT_EQ(r.config.eventbus.module_socket_allowed_uids, (std::vector<std::uint32_t>{7}));
  // A check's path keeps the spelling of the file, also below a written key.
  EXPECT_THAT(errors_of(eventbus_doc("    LISTENERS:\n      - URL: ws://127.0.0.1:8080\n"
                                     "        PATH: p\n      - {}\n")),
              ElementsAre(issue("modules.eventBus.LISTENERS[0].PATH", "must start with '/'"),
                          issue("modules.eventBus.LISTENERS[1].url", "required")));
}

TEST(config_listeners_read, listeners_must_be_a_sequence_of_mappings) {
  EXPECT_THAT(errors_of(eventbus_doc("    listeners: tcp://127.0.0.1:1999\n")),
              ElementsAre(issue("modules.eventBus.listeners",
                                "expected a sequence of mappings, got \"tcp://127.0.0.1:1999\"")));
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      url: ws://127.0.0.1:8080\n")),
              ElementsAre(issue("modules.eventBus.listeners",
                                "expected a sequence of mappings, got a mapping")));
  // The entry that is not a mapping is reported once (not also as missing its url); the
  // entries after it keep their index.
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      - ws://127.0.0.1:8080\n      - ~\n"
                                     "      - url: ws://127.0.0.1:8080/x\n")),
              ElementsAre(issue(l0, "expected a mapping, got \"ws://127.0.0.1:8080\""),
                          issue(l1, "expected a mapping, got null"),
                          issue("modules.eventBus.listeners[2].url", "unexpected path '/x'")));
  EXPECT_THAT(errors_of(eventbus_doc("    internalListener: [1]\n")),
              ElementsAre(issue(internal, "expected a mapping, got a sequence")));
}

TEST(config_listeners_read, values_of_the_wrong_type) {
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      - url: [a]\n"
                                     "        allowAnonymous: yes\n"
                                     "        requireCertificate: 1\n"
                                     "        path: {a: b}\n")),
              ElementsAre(issue(at(l0, "url"), "expected a string, got a sequence"),
                          issue(at(l0, "allowAnonymous"), "expected true or false, got \"yes\""),
                          issue(at(l0, "requireCertificate"), "expected true or false, got \"1\""),
                          issue(at(l0, "path"), "expected a string, got a mapping")));
  EXPECT_THAT(errors_of(eventbus_doc("    passwordFile: [a]\n    aclFile: {a: b}\n")),
              ElementsAre(issue("modules.eventBus.passwordFile", "expected a string"),
                          issue("modules.eventBus.aclFile", "expected a string")));
}

TEST(config_listeners_read, unknown_keys_in_a_listener_are_warned) {
  const auto r =
      load(eventbus_doc("    listeners:\n      - url: ws://127.0.0.1:8080\n        certfil: /x\n"
                        "    internalListener:\n      url: tcp://127.0.0.1:1999\n      pth: /x\n"));
  EXPECT_THAT(r.warnings, ElementsAre(issue(at(internal, "url"),
                                            "unknown key, ignored: the URL of this listener is "
                                            "mqttServerInternal"),
                                      issue(at(internal, "pth"), "unknown key, ignored"),
                                      issue(at(l0, "certfil"), "unknown key, ignored")));
  EXPECT_THAT(r.warnings[2].message, Not(HasSubstr("mqttServerInternal")));
}

TEST(config_listeners_read, module_socket_ids_are_uint32_sequences) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    moduleSocketAllowedUids: [1, -1, x, ~, 4294967296, \"5\"]\n"
                             "    moduleSocketAllowedGids: 20\n")),
      ElementsAre(
          issue("modules.eventBus.moduleSocketAllowedUids[1]",
                "expected an integer from 0 to 4294967295, got -1"),
          issue("modules.eventBus.moduleSocketAllowedUids[2]", "expected an integer, got \"x\""),
          issue("modules.eventBus.moduleSocketAllowedUids[3]", "expected an integer, got null"),
          issue("modules.eventBus.moduleSocketAllowedUids[4]",
                "expected an integer from 0 to 4294967295, got 4294967296"),
          issue("modules.eventBus.moduleSocketAllowedUids[5]",
                "expected an integer, got the string \"5\""),
          issue("modules.eventBus.moduleSocketAllowedGids",
                "expected a sequence of integers, got \"20\"")));
}

TEST(config_listeners_read, module_socket_ids_apply_in_every_mode) {
  for (const char* mode : {"    enable: false\n", "    mqttMode: 2\n"}) {
    const auto r = load(eventbus_doc(std::string(mode) + "    moduleSocketAllowedGids: [3]\n"));
    EXPECT_EQ(r.config.eventbus.module_socket_allowed_gids, (std::vector<std::uint32_t>{3}));
    EXPECT_THAT(r.warnings, IsEmpty());
  }
}

// --- listener URLs -------------------------------------------------------------------------

TEST_F(config_listeners, every_scheme_is_accepted_for_the_internal_listener) {
  for (const char* scheme : {"tcp", "mqtt", "ws"}) {
    const auto r = load(
        eventbus_doc("    mqttServerInternal: " + std::string(scheme) + "://127.0.0.1:1884\n"));
    EXPECT_THAT(r.warnings, IsEmpty()) << scheme;
  }
  for (const char* scheme : {"tls", "ssl", "mqtts", "wss"}) {
    const auto r =
        load(eventbus_doc("    mqttServerInternal: " + std::string(scheme) +
                          "://127.0.0.1:1884\n    internalListener:\n      certFile: " + cert() +
                          "\n      keyFile: " + key() + "\n"));
    EXPECT_THAT(r.warnings, IsEmpty()) << scheme;
  }
}

TEST(config_listeners_urls, each_url_is_checked_at_its_path) {
  const auto errors =
      errors_of(eventbus_doc("    listeners:\n"
                             "      - url: quic://127.0.0.1:1\n"
                             "      - url: ws://127.0.0.1:8080/mqtt\n"
                             "      - url: tcp://127.0.0.1\n"
                             "      - url: tcp://127.0.0.1:0\n"
                             "      - url: tcp://u:p@127.0.0.1:1\n"
                             "      - allowAnonymous: true\n"
                             "      - url: \"\"\n"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          issue("modules.eventBus.listeners[0].url", "unsupported scheme 'quic'"),
          issue("modules.eventBus.listeners[1].url",
                "unexpected path '/mqtt' in 'ws://127.0.0.1:8080/mqtt': a listen URL has none; a "
                "ws:// or wss:// listener takes its HTTP path from the listener's `path` key"),
          issue("modules.eventBus.listeners[2].url", "missing port in 'tcp://127.0.0.1'"),
          issue("modules.eventBus.listeners[3].url",
                "invalid port '0' in 'tcp://127.0.0.1:0' (must be 1 to 65535)"),
          issue("modules.eventBus.listeners[4].url",
                "user information in the URL is not supported"),
          issue("modules.eventBus.listeners[5].url",
                "required: the address to listen on, e.g. tls://0.0.0.0:8883"),
          issue("modules.eventBus.listeners[6].url", "required")));
  // The password is never repeated.
  for (const auto& e : errors)
    EXPECT_THAT(e.message, Not(HasSubstr("u:p")));
}

TEST(config_listeners_urls, two_listeners_on_one_address_and_port) {
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      - url: ws://127.0.0.1:1884\n")),
              ElementsAre(issue(at(l0, "url"),
                                "'ws://127.0.0.1:1884' listens on the address and port of "
                                "mqttServerInternal 'tcp://127.0.0.1:1884'")));
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      - url: ws://[::1]:8080\n"
                                     "      - url: tcp://[::1]:8080\n")),
              ElementsAre(issue(at(l1, "url"), "of listeners[0].url 'ws://[::1]:8080'")));
  // Host names compare without letter case.
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://LocalHost:1999\n"
                                     "    listeners:\n      - url: ws://localhost:1999\n")),
              ElementsAre(issue(at(l0, "url"), "mqttServerInternal")));
}

TEST(config_listeners_urls, a_wildcard_address_covers_the_others_on_its_port) {
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: tcp://0.0.0.0:1884\n"
                                     "    listeners:\n      - url: ws://127.0.0.1:1884\n")),
              Contains(issue(at(l0, "url"), "mqttServerInternal 'tcp://0.0.0.0:1884'")));
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      - url: ws://[::]:1884\n")),
              Contains(issue(at(l0, "url"), "mqttServerInternal")));
  // Other ports, and IPv6 beside the IPv4 wildcard, are distinct sockets.
  const auto r =
      load(eventbus_doc("    listeners:\n      - url: ws://127.0.0.1:1885\n"
                        "      - url: ws://[::1]:1884\n"));
  EXPECT_THAT(r.config.eventbus.listeners, SizeIs(2));
}

// --- TLS -----------------------------------------------------------------------------------

TEST(config_listeners_tls, certificate_and_key_are_required) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    listeners:\n      - url: tls://127.0.0.1:8883\n")),
      ElementsAre(issue(at(l0, "certFile"),
                        "required for a tls:// listener: the server certificate chain (PEM)"),
                  issue(at(l0, "keyFile"),
                        "required for a tls:// listener: the private key of certFile (PEM)")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: wss://127.0.0.1:8443\n")),
              ElementsAre(issue(at(internal, "certFile"), "required for a wss:// listener"),
                          issue(at(internal, "keyFile"), "required for a wss:// listener")));
}

TEST_F(config_listeners, files_must_be_readable) {
  const temp_path dir("certs");
  dir.make_directory();
  const std::string missing = file("missing.pem");
  EXPECT_THAT(
      errors_of(eventbus_doc("    listeners:\n      - url: mqtts://127.0.0.1:8883\n"
                             "        certFile: " +
                             missing + "\n        keyFile: " + dir.str() +
                             "\n        caFile: /dev/null\n")),
      ElementsAre(
          issue(at(l0, "certFile"), "cannot read '" + missing + "': No such file or directory"),
          issue(at(l0, "keyFile"), "cannot read '" + dir.str() + "': Is a directory"),
          issue(at(l0, "caFile"), "cannot read '/dev/null': not a regular file")));
}

TEST_F(config_listeners, client_certificates_need_a_ca_file) {
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n" +
                                     tls_entry("tls://127.0.0.1:8883",
                                               "        requireCertificate: true\n"
                                               "        useIdentityAsUsername: true\n"))),
              ElementsAre(issue(at(l0, "requireCertificate"),
                                "needs caFile: client certificates are checked against its CAs"),
                          issue(at(l0, "useIdentityAsUsername"), "needs caFile")));
  const auto r = load(eventbus_doc(
      "    listeners:\n" + tls_entry("tls://127.0.0.1:8883", "        caFile: " + cert() +
                                                                 "\n        requireCertificate: "
                                                                 "true\n")));
  EXPECT_TRUE(r.config.eventbus.listeners.at(0).require_certificate);
}

TEST_F(config_listeners, certificate_and_key_must_belong_together) {
  const auto doc = [&](const std::string& cert_file, const std::string& key_file) {
    return eventbus_doc("    listeners:\n      - url: tls://127.0.0.1:8883\n        certFile: " +
                        cert_file + "\n        keyFile: " + key_file + "\n");
  };
  EXPECT_THAT(
      errors_of(doc(cert(), file("b.key"))),
      ElementsAre(issue(at(l0, "keyFile"), "'" + file("b.key") + "' does not match certFile '" +
                                               cert() + "': error:")));
  // A key of another type loads, and fails the check.
  EXPECT_THAT(errors_of(doc(cert(), file("rsa.key"))),
              ElementsAre(issue(at(l0, "keyFile"), "' does not match certFile '" + cert())));
  EXPECT_THAT(
      errors_of(doc(file("junk.pem"), key())),
      ElementsAre(issue(at(l0, "certFile"),
                        "'" + file("junk.pem") + "' is not a PEM certificate chain: error:")));
  EXPECT_THAT(errors_of(doc(cert(), file("junk.pem"))),
              ElementsAre(issue(at(l0, "keyFile"), "cannot load '" + file("junk.pem") +
                                                       "' as an unencrypted PEM private key: "
                                                       "error:")));
}

TEST_F(config_listeners, settings_that_do_not_apply_are_warned_as_ignored) {
  const auto r = load(eventbus_doc("    internalListener:\n      certFile: " + cert() +
                                   "\n      keyFile: /k\n      caFile: /ca\n"
                                   "      requireCertificate: true\n"
                                   "      useIdentityAsUsername: true\n"
                                   "      path: /tcp\n"
                                   "    listeners:\n      - url: ws://127.0.0.1:8080\n"
                                   "        certFile: /c\n" +
                                   tls_entry("tls://127.0.0.1:8883", "        path: /tls\n")));
  const std::string tcp = "ignored: 'tcp://127.0.0.1:1884' is not TLS";
  EXPECT_THAT(
      r.warnings,
      ElementsAre(issue(at(internal, "certFile"), tcp), issue(at(internal, "keyFile"), tcp),
                  issue(at(internal, "caFile"), tcp),
                  issue(at(internal, "requireCertificate"), tcp),
                  issue(at(internal, "useIdentityAsUsername"), tcp),
                  issue(at(internal, "path"), "ignored: 'tcp://127.0.0.1:1884' is not WebSocket"),
                  issue(at(l0, "certFile"), "ignored: 'ws://127.0.0.1:8080' is not TLS"),
                  issue(at(l1, "path"), "ignored: 'tls://127.0.0.1:8883' is not WebSocket")));
}

TEST_F(config_listeners, websocket_path_must_start_with_a_slash) {
  EXPECT_THAT(errors_of(eventbus_doc("    listeners:\n      - url: ws://127.0.0.1:8080\n"
                                     "        path: mqtt\n"
                                     "      - url: ws://127.0.0.1:8081\n"
                                     "        path: \"\"\n"
                                     "      - url: ws://127.0.0.1:8082\n"
                                     "        path: \"/a b\"\n")),
              ElementsAre(issue(at(l0, "path"),
                                "must start with '/' and hold no spaces or "
                                "control characters, got 'mqtt'"),
                          issue(at(l1, "path"), "got ''"),
                          issue("modules.eventBus.listeners[2].path", "got '/a b'")));
  EXPECT_THAT(errors_of(eventbus_doc("    mqttServerInternal: wss://127.0.0.1:8443\n"
                                     "    internalListener:\n      certFile: " +
                                     cert() + "\n      keyFile: " + key() + "\n      path: x\n")),
              ElementsAre(issue(at(internal, "path"), "must start with '/'")));
}

// --- authentication ------------------------------------------------------------------------

TEST_F(config_listeners, password_and_acl_files_must_be_readable_regular_files) {
  const temp_path dir("etc");
  dir.make_directory();
  EXPECT_THAT(errors_of(eventbus_doc("    passwordFile: " + file("nope") +
                                     "\n    aclFile: " + dir.str() + "\n")),
              ElementsAre(issue("modules.eventBus.passwordFile",
                                "cannot read '" + file("nope") + "': No such file or directory"),
                          issue("modules.eventBus.aclFile",
                                "cannot read '" + dir.str() + "': Is a directory")));
  EXPECT_THAT(errors_of(eventbus_doc("    aclFile: /dev/null\n")),
              ElementsAre(issue("modules.eventBus.aclFile", "not a regular file")));
}

TEST(config_listeners_auth, allow_anonymous_false_needs_a_way_in) {
  const std::string why =
      "false with no passwordFile and no useIdentityAsUsername: no client could ever connect";
  EXPECT_THAT(errors_of(eventbus_doc("    internalListener:\n      allowAnonymous: false\n")),
              ElementsAre(issue(at(internal, "allowAnonymous"), why)));
  // useIdentityAsUsername counts only where it applies, on TLS.
  const auto r = parse_config(
      eventbus_doc("    listeners:\n      - url: ws://127.0.0.1:8080\n"
                   "        allowAnonymous: false\n        useIdentityAsUsername: true\n"));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), ElementsAre(issue(at(l0, "allowAnonymous"), why)));
  EXPECT_THAT(r.error().warnings, ElementsAre(issue(at(l0, "useIdentityAsUsername"), "not TLS")));
}

TEST_F(config_listeners, allow_anonymous_false_with_a_password_file_or_identity) {
  EXPECT_EQ(load(eventbus_doc("    passwordFile: " + passwd() +
                              "\n    internalListener:\n      allowAnonymous: false\n"))
                .config.eventbus.internal_listener.allow_anonymous,
            false);
  const auto r = load(eventbus_doc(
      "    listeners:\n" + tls_entry("tls://127.0.0.1:8883", "        caFile: " + cert() +
                                                                 "\n        useIdentityAsUsername: "
                                                                 "true\n        allowAnonymous: "
                                                                 "false\n")));
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST_F(config_listeners, open_listener_beyond_loopback_is_warned_with_the_keys_to_set) {
  const auto r = load(
      "modules:\n  edged:\n    hostnameOverride: edge-3\n  eventBus:\n"
      "    mqttServerInternal: tcp://0.0.0.0:1883\n"
      "    listeners:\n      - url: ws://[fe80::1]:8080\n");
  EXPECT_THAT(
      r.warnings,
      ElementsAre(
          issue("modules.eventBus.mqttServerInternal",
                "'tcp://0.0.0.0:1883' takes anonymous clients without TLS on an address other "
                "than loopback: anyone who can reach it can read and publish every topic (e.g. "
                "$hw/events/node/edge-3/authInfo/get/result carries the node's keys); set "
                "passwordFile (anonymous clients are then refused), restrict anonymous clients "
                "with aclFile, listen on 127.0.0.1, or use a tls:// or wss:// listener with "
                "certFile and keyFile"),
          issue(at(l0, "url"), "'ws://[fe80::1]:8080' takes anonymous clients")));
}

TEST_F(config_listeners, loopback_tls_and_password_files_are_not_warned) {
  for (const char* host :
       {"127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LOCALHOST", "[::ffff:127.0.0.1]"}) {
    EXPECT_THAT(load(eventbus_doc("    mqttServerInternal: tcp://" + std::string(host) + ":1883\n"))
                    .warnings,
                IsEmpty())
        << host;
  }
  // With a password file, anonymous clients are refused by default.
  EXPECT_THAT(load(eventbus_doc("    mqttServerInternal: tcp://0.0.0.0:1883\n    passwordFile: " +
                                passwd() + "\n"))
                  .warnings,
              IsEmpty());
  EXPECT_THAT(load(eventbus_doc("    listeners:\n" + tls_entry("tls://0.0.0.0:8883"))).warnings,
              IsEmpty());
}

TEST_F(config_listeners, anonymous_allowed_beside_a_password_file_is_warned) {
  const auto r =
      load(eventbus_doc("    mqttServerInternal: tcp://10.1.2.3:1883\n"
                        "    internalListener:\n      allowAnonymous: true\n"
                        "    passwordFile: " +
                        passwd() + "\n    aclFile: " + acl() + "\n"));
  EXPECT_THAT(r.warnings, ElementsAre(issue("modules.eventBus.mqttServerInternal",
                                            "read and publish every topic that aclFile allows "
                                            "anonymous clients")));
}

// --- modes ---------------------------------------------------------------------------------

TEST(config_listeners_modes, broker_only_mode_checks_the_listeners) {
  EXPECT_THAT(
      errors_of(eventbus_doc("    enable: false\n    mqttMode: 2\n"
                             "    listeners:\n      - url: tls://127.0.0.1:8883\n"
                             "    passwordFile: /nonexistent/passwd\n")),
      ElementsAre(issue(at(l0, "certFile"), "required"), issue(at(l0, "keyFile"), "required"),
                  issue("modules.eventBus.passwordFile", "No such file or directory")));
}

TEST(config_listeners_modes, external_mode_ignores_the_broker_keys_with_a_warning) {
  // As mqttServerInternal, nothing is checked: no embedded broker runs.
  const auto r =
      load(eventbus_doc("    mqttMode: 2\n"
                        "    mqttServerInternal: tls://0.0.0.0:1\n"
                        "    internalListener:\n      allowAnonymous: false\n"
                        "    listeners:\n      - url: bogus\n"
                        "    passwordFile: /nonexistent/passwd\n"
                        "    aclFile: /nonexistent/acl\n"));
  const std::string why = "ignored: mqttMode 2 runs no embedded broker";
  EXPECT_THAT(r.warnings,
              ElementsAre(issue(internal, why), issue("modules.eventBus.listeners", why),
                          issue("modules.eventBus.passwordFile", why),
                          issue("modules.eventBus.aclFile", why)));
  EXPECT_THAT(load(eventbus_doc("    mqttMode: 2\n")).warnings, IsEmpty());
  EXPECT_THAT(load(eventbus_doc("    mqttMode: 1\n    listeners:\n      - url: ws://127.0.0.1:1\n"))
                  .warnings,
              IsEmpty());
}

TEST(config_listeners_modes, old_layout_internal_server_uses_the_internal_listener) {
  EXPECT_THAT(errors_of("mqtt:\n  internal-server: ssl://127.0.0.1:8883\n"),
              ElementsAre(issue(at(internal, "certFile"), "required for a ssl:// listener"),
                          issue(at(internal, "keyFile"), "required")));
}

// --- validate() ----------------------------------------------------------------------------

TEST(config_listeners_validate, validate_reports_errors_at_canonical_paths_and_no_warnings) {
  auto c = default_config();
  c.eventbus.server_internal = "tcp://0.0.0.0:1884";  // a warning only
  c.eventbus.internal_listener.cert_file = "/ignored";
  listener_config l;
  l.url = "wss://127.0.0.1:8443";
  l.path = "ws";
  c.eventbus.listeners.push_back(l);
  c.eventbus.acl_file = "/nonexistent/acl";
  EXPECT_THAT(validate(c), ElementsAre(issue(at(l0, "certFile"), "required"),
                                       issue(at(l0, "keyFile"), "required"),
                                       issue(at(l0, "path"), "must start with '/'"),
                                       issue("modules.eventBus.aclFile", "cannot read")));
}

}  // namespace
}  // namespace ebus::config
