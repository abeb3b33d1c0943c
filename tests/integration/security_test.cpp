// The daemon binary exposed safely: TLS, WebSocket and WebSocket-over-TLS listeners next to the
// plain one, a password file made by mosquitto_passwd, an ACL file in mosquitto's format, client
// certificates as usernames, reload on SIGHUP. Only real clients: mosquitto_pub/sub, Python Paho
// (TCP, TLS, WebSocket), openssl s_client. Certificates are made by the test with the openssl
// CLI; no key is committed.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ebus_test/process.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string daemon_path = built_program("apps/eventbus/eventbus");

// A CA, a server certificate for 127.0.0.1 and two client certificates (CN dev1, CN mapper).
const char* const make_certificates = R"(set -e
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null
sign() {
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
sign server
sign dev1
sign mapper
)";

// Paho over each transport: connects, subscribes, publishes to itself, prints what came back.
const char* const paho_client = R"(import sys, threading
import paho.mqtt.client as mqtt
transport, port, ca, user, password = sys.argv[1:6]
got = threading.Event()
seen = []
c = mqtt.Client(client_id="paho-" + transport, transport="websockets" if transport.startswith("ws") else "tcp")
if transport.startswith("ws"):
    c.ws_set_options(path="/mqtt")
if transport in ("tls", "wss"):
    c.tls_set(ca_certs=ca)
if user:
    c.username_pw_set(user, password)
def on_connect(client, userdata, flags, rc):
    print("CONNACK", rc, flush=True)
    if rc == 0:
        client.subscribe("$hw/events/device/dev1/#", qos=1)
def on_subscribe(client, userdata, mid, granted):
    print("SUBACK", list(granted), flush=True)
    client.publish("$hw/events/device/dev1/state/update", "via-" + transport, qos=1)
def on_message(client, userdata, msg):
    seen.append(msg.payload.decode())
    print("MSG", msg.topic, msg.payload.decode(), flush=True)
    got.set()
c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_message = on_message
c.connect("127.0.0.1", int(port), keepalive=30)
c.loop_start()
ok = got.wait(20)
c.disconnect()
c.loop_stop()
sys.exit(0 if ok else 1)
)";

class security : public ::testing::Test {
 protected:
  void SetUp() override {
    process certs({"/bin/sh", "-c", make_certificates, "sh", dir.path().string()});
    ASSERT_EQ(certs.wait(60s), 0) << certs.output();
    process passwd({"mosquitto_passwd", "-c", "-b", file("passwd"), "dev1", "secret1"});
    ASSERT_EQ(passwd.wait(), 0) << passwd.output();
    process more({"mosquitto_passwd", "-b", file("passwd"), "mapper", "secret2"});
    ASSERT_EQ(more.wait(), 0) << more.output();
    write("acl", acl_text);
    tcp = free_port();
    tls = free_port();
    ws = free_port();
    wss = free_port();
    mtls = free_port();
  }

  std::string file(const std::string& name) const { return (dir.path() / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name)) << text;
  }

  // The plain listener on loopback allows anonymous clients (they get what the ACL's anonymous
  // block gives: nothing here); the others ask for a login or a client certificate.
  std::string write_config() const {
    const auto tls_files = [&](const std::string& indent) {
      return indent + "certFile: " + file("server.crt") + "\n" + indent +
             "keyFile: " + file("server.key") + "\n";
    };
    std::string yaml = "database:\n  dataSource: " + file("edgecore.db") +
                       "\nmodules:\n  edged:\n    hostnameOverride: edge-node\n"
                       "  eventBus:\n    enable: false\n"
                       "    mqttServerInternal: tcp://127.0.0.1:" +
                       std::to_string(tcp) +
                       "\n    internalListener:\n      allowAnonymous: true\n"
                       "    moduleSocket: \"\"\n    moduleStreamSocket: \"\"\n"
                       "    passwordFile: " +
                       file("passwd") + "\n    aclFile: " + file("acl") + "\n    listeners:\n";
    yaml += "      - url: tls://127.0.0.1:" + std::to_string(tls) + "\n" + tls_files("        ");
    yaml += "      - url: ws://127.0.0.1:" + std::to_string(ws) + "\n";
    yaml += "      - url: wss://127.0.0.1:" + std::to_string(wss) + "\n" + tls_files("        ");
    yaml += "      - url: mqtts://127.0.0.1:" + std::to_string(mtls) + "\n" +
            tls_files("        ") + "        caFile: " + file("ca.crt") +
            "\n        useIdentityAsUsername: true\n";
    write("eventbus.yaml", yaml);
    return file("eventbus.yaml");
  }

  std::unique_ptr<process> start_daemon() {
    auto d = std::make_unique<process>(
        std::vector<std::string>{daemon_path, "--config", write_config()});
    EXPECT_TRUE(d->wait_for_output("ready")) << d->output();
    return d;
  }

  // mosquitto_pub / mosquitto_sub arguments for a listener: port, CA for the TLS ones, login.
  std::vector<std::string> client_args(const std::string& program, std::uint16_t port,
                                       const std::string& user = "",
                                       const std::string& password = "") const {
    std::vector<std::string> a{program, "-h", "127.0.0.1", "-p", std::to_string(port)};
    if (port == tls || port == mtls) {
      a.insert(a.end(), {"--cafile", file("ca.crt")});
    }
    if (!user.empty()) a.insert(a.end(), {"-u", user, "-P", password});
    return a;
  }

  // Runs mosquitto_pub to its end; returns its exit status and output.
  std::pair<int, std::string> publish(std::vector<std::string> args, const std::string& topic,
                                      const std::string& payload,
                                      std::vector<std::string> extra = {}) const {
    args.insert(args.end(), {"-q", "1", "-t", topic, "-m", payload});
    args.insert(args.end(), extra.begin(), extra.end());
    process p(std::move(args));
    const auto status = p.wait(20s);
    return {status.value_or(-1), p.output()};
  }

  // A mosquitto_sub that prints "<topic> <payload>" lines; returns once it is subscribed (or
  // refused: the caller checks its output).
  std::unique_ptr<process> subscribe(std::vector<std::string> args, const std::string& filter) {
    args.insert(args.begin(), {"stdbuf", "-oL"});
    args.insert(args.end(), {"-q", "1", "-t", filter, "-v", "-d"});
    auto p = std::make_unique<process>(std::move(args));
    EXPECT_TRUE(p->wait_for_output("SUBACK")) << p->output();
    return p;
  }

  static constexpr const char* acl_text = R"(# anonymous clients: nothing
# every device publishes and reads under its own device topics only
pattern readwrite $hw/events/device/%u/#
user mapper
topic readwrite $hw/events/device/+/#
topic read $hw/events/node/#
)";

  temp_dir dir;
  std::uint16_t tcp = 0, tls = 0, ws = 0, wss = 0, mtls = 0;
};

TEST_F(security, every_listener_is_announced_and_each_transport_carries_mqtt_for_paho) {
  auto d = start_daemon();
  for (const auto& url :
       {"mqtt=tcp://127.0.0.1:" + std::to_string(tcp), "tls://127.0.0.1:" + std::to_string(tls),
        "ws://127.0.0.1:" + std::to_string(ws), "wss://127.0.0.1:" + std::to_string(wss)}) {
    EXPECT_NE(d->output().find(url), std::string::npos) << url << "\n" << d->output();
  }
  write("mqtt_client.py", paho_client);
  const std::vector<std::pair<std::string, std::uint16_t>> transports = {
      {"tcp", tcp}, {"tls", tls}, {"ws", ws}, {"wss", wss}};
  for (const auto& [name, port] : transports) {
    process paho({"/usr/bin/python3", file("mqtt_client.py"), name, std::to_string(port),
                  file("ca.crt"), "dev1", "secret1"});
    EXPECT_EQ(paho.wait(30s), 0) << name << "\n" << paho.output() << "\n" << d->output();
    EXPECT_NE(paho.output().find("CONNACK 0"), std::string::npos) << name << paho.output();
    EXPECT_NE(paho.output().find("SUBACK [1]"), std::string::npos) << name << paho.output();
    EXPECT_NE(paho.output().find("MSG $hw/events/device/dev1/state/update via-" + name),
              std::string::npos)
        << name << "\n"
        << paho.output();
  }
}

TEST_F(security, logins_are_checked_against_the_mosquitto_passwd_file) {
  auto d = start_daemon();
  auto [ok_status, ok_out] = publish(client_args("mosquitto_pub", tls, "dev1", "secret1"),
                                     "$hw/events/device/dev1/a", "x");
  EXPECT_EQ(ok_status, 0) << ok_out;

  auto [bad_status, bad_out] = publish(client_args("mosquitto_pub", tls, "dev1", "Wr0ngPa55"),
                                       "$hw/events/device/dev1/a", "x");
  EXPECT_NE(bad_status, 0);
  EXPECT_NE(bad_out.find("bad user name or password"), std::string::npos) << bad_out;

  auto [unknown_status, unknown_out] =
      publish(client_args("mosquitto_pub", tls, "nobody", "x"), "$hw/events/device/dev1/a", "x");
  EXPECT_NE(unknown_status, 0);
  EXPECT_NE(unknown_out.find("bad user name or password"), std::string::npos) << unknown_out;

  // With a password file, listeners ask for a login unless told otherwise (as mosquitto 2).
  auto [anon_status, anon_out] =
      publish(client_args("mosquitto_pub", tls), "$hw/events/device/dev1/a", "x");
  EXPECT_NE(anon_status, 0);
  EXPECT_NE(anon_out.find("not authorised"), std::string::npos) << anon_out;

  // The plain loopback listener was told to let anonymous clients in.
  auto [plain_status, plain_out] = publish(client_args("mosquitto_pub", tcp), "anything", "x");
  EXPECT_EQ(plain_status, 0) << plain_out;

  EXPECT_TRUE(d->wait_for_output("login_refused")) << d->output();
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait(), 0) << d->output();
  EXPECT_NE(d->output().find("mqtt.refused_logins=3"), std::string::npos) << d->output();
  // No password reaches the log.
  EXPECT_EQ(d->output().find("Wr0ngPa55"), std::string::npos) << d->output();
  EXPECT_EQ(d->output().find("secret1"), std::string::npos) << d->output();
}

TEST_F(security, the_acl_keeps_devices_to_their_own_topics) {
  auto d = start_daemon();
  auto mapper = subscribe(client_args("mosquitto_sub", tls, "mapper", "secret2"),
                          "$hw/events/device/+/state/update");
  // dev1 publishes under its own topic, then tries to forge dev2's state: the forgery is
  // acknowledged (MQTT 3.1.1 has no refusal for PUBLISH) and dropped.
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "dev1", "secret1"),
                    "$hw/events/device/dev2/state/update", "forged")
                .first,
            0);
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "dev1", "secret1"),
                    "$hw/events/device/dev1/state/update", "genuine")
                .first,
            0);
  ASSERT_TRUE(mapper->wait_for_output("genuine")) << mapper->output();
  EXPECT_EQ(mapper->output().find("forged"), std::string::npos) << mapper->output();

  // A filter that could deliver nothing gets SUBACK 0x80.
  {
    auto args = client_args("mosquitto_sub", tls, "dev1", "secret1");
    args.insert(args.end(), {"-t", "$hw/events/device/dev2/#", "-d", "-W", "5"});
    process p(std::move(args));
    p.wait(20s);
    EXPECT_NE(p.output().find("Subscribed (mid: 1): 128"), std::string::npos) << p.output();
  }

  // A wildcard that overlaps what dev1 may read is granted; other devices' messages, live and
  // retained, are filtered out per message.
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "mapper", "secret2"),
                    "$hw/events/device/dev2/twin", "dev2-retained", {"-r"})
                .first,
            0);
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "mapper", "secret2"),
                    "$hw/events/device/dev1/twin", "dev1-retained", {"-r"})
                .first,
            0);
  auto dev1 =
      subscribe(client_args("mosquitto_sub", tls, "dev1", "secret1"), "$hw/events/device/#");
  ASSERT_TRUE(dev1->wait_for_output("dev1-retained")) << dev1->output();
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "mapper", "secret2"),
                    "$hw/events/device/dev2/state/update", "dev2-live")
                .first,
            0);
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "mapper", "secret2"),
                    "$hw/events/device/dev1/state/update", "dev1-live")
                .first,
            0);
  ASSERT_TRUE(dev1->wait_for_output("dev1-live")) << dev1->output();
  EXPECT_EQ(dev1->output().find("dev2-"), std::string::npos) << dev1->output();

  d->signal(SIGTERM);
  ASSERT_EQ(d->wait(), 0) << d->output();
  EXPECT_NE(d->output().find("mqtt.acl_denied_publishes=1"), std::string::npos) << d->output();
  EXPECT_NE(d->output().find("mqtt.acl_denied_subscriptions=1"), std::string::npos) << d->output();
  EXPECT_NE(d->output().find("mqtt.acl_denied_deliveries=2"), std::string::npos) << d->output();
}

TEST_F(security, a_will_is_subject_to_the_acl) {
  auto d = start_daemon();
  auto mapper =
      subscribe(client_args("mosquitto_sub", tls, "mapper", "secret2"), "$hw/events/device/#");
  const auto dies_with_will = [&](const std::string& will_topic) {
    auto args = client_args("mosquitto_sub", tls, "dev1", "secret1");
    args.insert(args.begin(), {"stdbuf", "-oL"});
    args.insert(args.end(), {"-t", "$hw/events/device/dev1/in", "--will-topic", will_topic,
                             "--will-payload", "gone:" + will_topic, "-d"});
    process p(std::move(args));
    EXPECT_TRUE(p.wait_for_output("SUBACK")) << p.output();
    p.signal(SIGKILL);  // no DISCONNECT: the will is due
    p.wait();
  };
  dies_with_will("$hw/events/device/dev2/state/update");  // not dev1's: dropped
  dies_with_will("$hw/events/device/dev1/state/update");
  ASSERT_TRUE(mapper->wait_for_output("gone:$hw/events/device/dev1")) << mapper->output();
  EXPECT_EQ(mapper->output().find("gone:$hw/events/device/dev2"), std::string::npos)
      << mapper->output();
  EXPECT_TRUE(d->wait_for_output("will_denied")) << d->output();
}

TEST_F(security, a_client_certificate_names_the_user) {
  auto d = start_daemon();
  auto mapper = subscribe(client_args("mosquitto_sub", tls, "mapper", "secret2"),
                          "$hw/events/device/+/state/update");
  const auto with_cert = [&](const std::string& who, const std::string& topic) {
    auto args = client_args("mosquitto_pub", mtls);
    args.insert(args.end(), {"--cert", file(who + ".crt"), "--key", file(who + ".key")});
    return publish(args, topic, "from-cert-" + who);
  };
  // CN=dev1: user dev1 (no password asked), so the pattern lets it publish under dev1 only.
  EXPECT_EQ(with_cert("dev1", "$hw/events/device/dev1/state/update").first, 0);
  EXPECT_EQ(with_cert("dev1", "$hw/events/device/dev2/state/update").first, 0);  // dropped
  ASSERT_TRUE(mapper->wait_for_output("from-cert-dev1")) << mapper->output();
  EXPECT_EQ(mapper->output().find("dev2/state/update from-cert"), std::string::npos)
      << mapper->output();

  // Without a certificate the handshake fails: that connection only.
  auto [status, out] = publish(client_args("mosquitto_pub", mtls), "x", "y");
  EXPECT_NE(status, 0) << out;
  EXPECT_EQ(publish(client_args("mosquitto_pub", tcp), "still/serving", "yes").first, 0);
}

TEST_F(security, tls_below_1_2_is_refused_and_1_2_is_served) {
  auto d = start_daemon();
  const auto handshake = [&](const std::string& version) {
    // SECLEVEL=0: the client itself would offer TLS 1.1; the refusal must come from the broker.
    process p({"/bin/sh", "-c",
               "openssl s_client -connect 127.0.0.1:" + std::to_string(tls) + " " + version +
                   " -cipher DEFAULT@SECLEVEL=0 -CAfile " + file("ca.crt") + " -brief </dev/null"});
    const auto status = p.wait(20s);
    return std::make_pair(status.value_or(-1), p.output());
  };
  const auto [old_status, old_out] = handshake("-tls1_1");
  EXPECT_NE(old_status, 0) << old_out;
  EXPECT_NE(old_out.find("alert protocol version"), std::string::npos) << old_out;
  const auto [ok_status, ok_out] = handshake("-tls1_2");
  EXPECT_NE(ok_out.find("Protocol version: TLSv1.2"), std::string::npos) << ok_out;
  EXPECT_NE(ok_out.find("Verification: OK"), std::string::npos) << ok_out;
}

TEST_F(security, sighup_reloads_the_acl_and_keeps_the_old_rules_when_the_new_file_is_broken) {
  auto d = start_daemon();
  // Not allowed yet: dropped.
  EXPECT_EQ(
      publish(client_args("mosquitto_pub", tls, "dev1", "secret1"), "extra/a", "before").first, 0);

  // A broken file: the error names its line; the old rules stay.
  write("acl", std::string(acl_text) + "topic sometimes extra/#\n");
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_for_output("reload failed")) << d->output();
  EXPECT_NE(d->output().find("line 7"), std::string::npos) << d->output();

  // The text so far ends in mapper's block.
  write("acl", std::string(acl_text) + "topic read extra/#\nuser dev1\ntopic write extra/#\n");
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_for_output("reloaded acl_file")) << d->output();
  auto mapper = subscribe(client_args("mosquitto_sub", tls, "mapper", "secret2"), "extra/#");
  EXPECT_EQ(publish(client_args("mosquitto_pub", tls, "dev1", "secret1"), "extra/a", "after").first,
            0);
  ASSERT_TRUE(mapper->wait_for_output("extra/a after")) << mapper->output();
  EXPECT_EQ(mapper->output().find("before"), std::string::npos) << mapper->output();
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait(), 0) << d->output();
  EXPECT_NE(d->output().find("mqtt.acl_denied_publishes=1"), std::string::npos) << d->output();
}

}  // namespace
}  // namespace ebus::test
