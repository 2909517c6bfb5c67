// In-memory Transport for tests (of the transport and of layers built on it): records every frame
// the client sends and lets the test play the server and the network — accept or refuse the
// connection, deliver frames, drop the connection.
//
// Like a real transport, callbacks are never delivered from inside connect/send/close: the
// test's injection calls (accept, receive_*, drop, fail) deliver them synchronously instead.
//
// Thread safety: single-threaded (tests).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/client/transport/transport.hpp"
#include "rtsync/protocol/close_codes.hpp"

namespace rtsync::testkit {

// An in-memory Transport for tests: records what the client sent and lets the test play the
// server (open, deliver frames, close, fail) synchronously, with no I/O and no loop.
// Thread safety: single-threaded, like the socket that owns it.
class FakeTransport final : public client::Transport {
 public:
  // One frame the client sent.
  struct Frame {
    std::string data;     // the frame's bytes
    bool binary = false;  // binary (true) or text frame
  };
  // Where the fake connection is: never connected, attempt pending, open, closed.
  enum class Phase { idle, connecting, open, closed };

  FakeTransport() = default;

  // Transport: connect() starts a pending attempt, send() records the frame, close() records the
  // close and ends the connection; no callback runs until the test plays the server.
  void set_handlers(client::TransportHandlers handlers) override {
    handlers_ = std::move(handlers);
  }
  void connect(std::string url, Headers headers) override;
  Result<void> send(std::string frame, bool binary) override;
  void close(int code, std::string reason) override;

  // ---- what the client did ----
  // The connection's phase, and shorthands for open / attempt pending.
  Phase phase() const noexcept { return phase_; }
  bool is_open() const noexcept { return phase_ == Phase::open; }
  bool is_connecting() const noexcept { return phase_ == Phase::connecting; }
  std::size_t connect_count() const noexcept { return connects_; }   // connect() calls so far
  const std::string& url() const noexcept { return url_; }           // of the last connect()
  const Headers& headers() const noexcept { return headers_; }       // of the last connect()
  const std::vector<Frame>& sent() const noexcept { return sent_; }  // every frame sent, in order
  // Text frames only, in order.
  std::vector<std::string> sent_text() const;
  // Removes and returns what was sent so far.
  std::vector<Frame> take_sent();
  // Forgets what was sent so far.
  void clear_sent() { sent_.clear(); }
  // The last close() the client made: code and reason.
  std::optional<std::pair<int, std::string>> last_close() const { return last_close_; }
  // Makes send() fail (as a full outbound queue would) while set.
  void set_send_failure(bool fail) { fail_sends_ = fail; }

  // ---- playing the server / network ----
  // Completes the pending connection attempt.
  void accept();
  // Fails the pending connection attempt.
  void fail(client::TransportFailure failure);
  // Refuses the upgrade with an HTTP status and body.
  void refuse(int http_status, std::string body);
  // Delivers one text / binary message from the server on the open connection.
  void receive_text(std::string_view text);
  void receive_binary(std::string_view bytes);
  // The open connection ends (server close frame, or network drop with
  // protocol::close_code::kAbnormal).
  void drop(int code = protocol::close_code::kAbnormal, std::string reason = "connection lost");

 private:
  client::TransportHandlers handlers_;
  Phase phase_ = Phase::idle;
  std::size_t connects_ = 0;
  std::string url_;
  Headers headers_;
  std::vector<Frame> sent_;
  std::optional<std::pair<int, std::string>> last_close_;
  bool fail_sends_ = false;
};

}  // namespace rtsync::testkit
