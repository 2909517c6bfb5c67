// A small blocking websocket/HTTP client for the server's integration tests, conformance
// harness and benchmarks. Each client owns its io_context; every wait is bounded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::testkit {

using namespace std::chrono_literals;

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

// One request on a fresh connection. Errc::io when the server cannot be reached.
Result<HttpResponse> http_request(std::uint16_t port, std::string_view method,
                                  std::string_view target, std::string body = {},
                                  std::vector<std::pair<std::string, std::string>> headers = {});

struct Frame {
  bool binary = false;
  std::string data;
};

class WsClient {
 public:
  // Upgrade refused: Errc::remote with message "<status> <body>".
  static Result<std::unique_ptr<WsClient>> connect(std::uint16_t port, std::string target,
                                                   protocol::Vsn vsn);
  // Convenience: /realtime/v1/websocket?apikey=<key>&vsn=<vsn>
  static Result<std::unique_ptr<WsClient>> connect_key(std::uint16_t port, std::string_view key,
                                                       protocol::Vsn vsn = protocol::Vsn::v2);
  ~WsClient();

  void send_text(const std::string& text);
  void send_binary(const std::string& bytes);
  void send(const protocol::Message& m);
  // Sets how large a message the client accepts (default 64 MiB).
  void set_read_limit(std::size_t bytes);

  // Next frame, or nullopt on timeout or close (then closed() is true).
  std::optional<Frame> read(std::chrono::milliseconds timeout = 5s);
  // Next decoded message (text frames; binary kind 4 turned into its broadcast message).
  std::optional<protocol::Message> next(std::chrono::milliseconds timeout = 5s);
  // Skips messages until one satisfies `pred`; nullopt on timeout.
  std::optional<protocol::Message> wait_for(
      const std::function<bool(const protocol::Message&)>& pred,
      std::chrono::milliseconds timeout = 5s);
  std::optional<protocol::Message> wait_event(std::string_view event,
                                              std::chrono::milliseconds timeout = 5s);
  // True if no frame arrives within `window`.
  bool quiet(std::chrono::milliseconds window);

  // phx_join; returns the phx_reply.
  std::optional<protocol::Message> join(const std::string& topic, json::object config,
                                        std::optional<std::string> access_token = std::nullopt);
  // join + wait for the system "Subscribed to PostgreSQL" message (true if seen).
  bool join_pg(const std::string& topic, json::array bindings,
               std::optional<std::string> access_token = std::nullopt);

  std::string next_ref() { return std::to_string(++ref_); }
  std::string join_ref(const std::string& topic) const;
  bool closed() const noexcept { return closed_; }
  std::uint16_t close_code() const noexcept { return close_code_; }
  protocol::Vsn vsn() const noexcept { return vsn_; }
  // Closes with 1000 (best effort).
  void close();
  // Stops reading from the socket (to simulate a slow consumer) by not calling read().

 private:
  WsClient();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  protocol::Vsn vsn_ = protocol::Vsn::v2;
  std::uint64_t ref_ = 0;
  std::vector<std::pair<std::string, std::string>> join_refs_;
  bool closed_ = false;
  std::uint16_t close_code_ = 0;
};

}  // namespace rtsync::testkit
