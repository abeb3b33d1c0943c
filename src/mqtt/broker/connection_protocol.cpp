#include "mqtt/broker/connection_protocol.hpp"

#include "mqtt/codec/codec_error.hpp"

namespace ebus::mqtt::broker {

using kind = protocol_action::kind;
using codec::packet_type;

std::string_view describe(close_cause cause) noexcept {
  switch (cause) {
    case close_cause::connect_timeout:
      return "no CONNECT within the connect timeout";
    case close_cause::packet_timeout:
      return "packet not completed within the packet timeout";
    case close_cause::keepalive_expired:
      return "keep-alive expired [MQTT-3.1.2-24]";
    case close_cause::first_not_connect:
    case close_cause::second_connect:
    case close_cause::server_packet:
      return "protocol error";
    case close_cause::malformed:
      return "malformed packet";
    case close_cause::refused:
      return "refused";
    case close_cause::disconnect:
      return "client sent DISCONNECT";
    case close_cause::server:
      break;
  }
  return "closed by the server";
}

std::string_view protocol_error_detail(close_cause cause) noexcept {
  switch (cause) {
    case close_cause::first_not_connect:
      return "first packet is not CONNECT [MQTT-3.1.0-1]";
    case close_cause::second_connect:
      return "second CONNECT [MQTT-3.1.0-2]";
    case close_cause::server_packet:
      return "server-only packet from client";
    default:
      return {};
  }
}

protocol_actions connection_protocol::start(time_point now) noexcept {
  since_ = now;
  return protocol_actions(rearm());
}

protocol_actions connection_protocol::on_partial_packet(time_point now) noexcept {
  protocol_actions out;
  if (partial_pending() || state_ >= state::closing) return out;
  partial_since_ = now;
  if (next_due() < armed_) out.push(rearm());
  return out;
}

protocol_action connection_protocol::on_other_packet(const codec::packet& p) noexcept {
  // The variant's alternatives follow packet_type.
  const auto type = static_cast<packet_type>(p.index() + 1);
  if (state_ == state::connected) {
    switch (type) {
      case packet_type::publish:
      case packet_type::puback:
      case packet_type::pubrec:
      case packet_type::pubrel:
      case packet_type::pubcomp:
      case packet_type::subscribe:
      case packet_type::unsubscribe:
        return {.what = kind::handle};
      case packet_type::pingreq:
        return {.what = kind::write_pingresp};
      case packet_type::disconnect:
        will_.reset();  // [MQTT-3.14.4-3]
        return close_for(close_cause::disconnect);
      case packet_type::connect:
        return close_for(close_cause::second_connect);
      case packet_type::connack:
      case packet_type::suback:
      case packet_type::unsuback:
      case packet_type::pingresp:
        break;
    }
    auto a = close_for(close_cause::server_packet);
    a.packet = type;
    return a;
  }
  if (state_ == state::awaiting_connect) {
    if (type == packet_type::connect) {
      keep_alive_ = std::get<codec::connect>(p).keep_alive;
      return {.what = kind::connect};
    }
    auto a = close_for(close_cause::first_not_connect);
    a.packet = type;
    return a;
  }
  return {};  // closing: the packet is dropped
}

protocol_actions connection_protocol::on_connect_result(codec::connect_return_code code,
                                                        std::optional<codec::will_message> will,
                                                        time_point now) {
  protocol_actions out;
  if (code != codec::connect_return_code::accepted) {
    if (state_ == state::awaiting_connect) {
      state_ = state::closing;
      out.push({.what = kind::close_after_flush, .cause = close_cause::refused});
    }
    return out;
  }
  // The broker linked the session to this connection even if the server closes it meanwhile:
  // it is released, and the will published, when the connection finishes.
  session_attached_ = true;
  accepted_ = true;
  will_ = will ? std::make_unique<codec::will_message>(std::move(*will)) : nullptr;
  if (state_ != state::awaiting_connect) return out;
  state_ = state::connected;
  since_ = now;
  out.push(rearm());  // from the CONNECT timeout to keep-alive
  return out;
}

protocol_actions connection_protocol::on_decode_error(std::error_code ec) noexcept {
  protocol_actions out;
  if (state_ >= state::closing) return out;
  if (state_ == state::awaiting_connect) {
    std::optional<codec::connect_return_code> refusal;
    if (ec == codec::codec_errc::unacceptable_protocol_version) {
      refusal = codec::connect_return_code::unacceptable_protocol_version;
    } else if (ec == codec::codec_errc::identifier_rejected) {
      refusal = codec::connect_return_code::identifier_rejected;
    }
    if (refusal) {
      state_ = state::closing;
      out.push({.what = kind::write_connack, .code = *refusal});
      out.push({.what = kind::close_after_flush, .cause = close_cause::refused});
      return out;
    }
  }
  out.push(close_for(close_cause::malformed));
  return out;
}

protocol_actions connection_protocol::on_deadline(time_point now, bool held) noexcept {
  protocol_actions out;
  if (state_ >= state::closing) return out;
  if (held) {
    armed_ = now + options_->slow_subscriber_timeout;
    out.push({.what = kind::set_deadline, .at = armed_});
    return out;
  }
  if (state_ == state::awaiting_connect && now >= since_ + options_->connect_timeout) {
    out.push(close_for(close_cause::connect_timeout));
  } else if (partial_pending() && now >= partial_since_ + options_->packet_timeout) {
    out.push(close_for(close_cause::packet_timeout));
  } else if (state_ == state::connected && keep_alive_ != 0 && now >= since_ + keepalive_limit()) {
    out.push(close_for(close_cause::keepalive_expired));
  } else {
    out.push(rearm());  // early, or activity moved the deadline: wait for the new one
  }
  return out;
}

protocol_actions connection_protocol::on_resumed(time_point now) noexcept {
  protocol_actions out;
  if (state_ >= state::closing) return out;
  if (state_ == state::connected) since_ = now;
  if (partial_pending()) partial_since_ = now;
  if (next_due() < armed_) out.push(rearm());
  return out;
}

void connection_protocol::close(bool session_linked) noexcept {
  if (!session_linked) session_attached_ = false;
  if (state_ < state::closing) {
    state_ = state::closing;
    armed_ = time_point::max();
  }
}

protocol_actions connection_protocol::finish(bool session_linked) noexcept {
  protocol_actions out;
  if (state_ == state::finished) return out;
  state_ = state::finished;
  armed_ = time_point::max();
  // Published on any end but DISCONNECT [MQTT-3.1.2-8], a takeover by another connection with
  // this client id included: the session moved on, the will belongs to this connection.
  if (will_) out.push({.what = kind::publish_will});
  if (session_attached_ && session_linked) out.push({.what = kind::release_session});
  session_attached_ = false;
  return out;
}

protocol_action connection_protocol::close_for(close_cause cause) noexcept {
  state_ = state::closing;
  armed_ = time_point::max();
  return {.what = kind::close, .cause = cause};
}

connection_protocol::time_point connection_protocol::next_due() const noexcept {
  auto due = time_point::max();
  if (state_ == state::awaiting_connect) due = since_ + options_->connect_timeout;
  if (state_ == state::connected && keep_alive_ != 0) {
    due = std::min(due, since_ + keepalive_limit());
  }
  if (partial_pending()) due = std::min(due, partial_since_ + options_->packet_timeout);
  return due;
}

protocol_action connection_protocol::rearm() noexcept {
  armed_ = next_due();
  if (armed_ == time_point::max()) return {.what = kind::clear_deadline};
  return {.what = kind::set_deadline, .at = armed_};
}

}  // namespace ebus::mqtt::broker
