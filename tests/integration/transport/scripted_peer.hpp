// A scripted Supabase Realtime peer for loopback tests: a small Beast WebSocket server (ws or wss)
// on 127.0.0.1, port 0, running on its own thread. The test's script sees every frame a client
// sends and answers through the PeerConnection (frames, close frames, abrupt drops mid-frame).
//
// Beast stays in scripted_peer.cpp; this header is plain C++.
//
// Thread safety: scripts and PeerConnection methods run on the peer's thread; the query methods
// (counts, targets, close codes…) and post()/with_latest() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rtsync::testing {

class PeerConnection {
 public:
  virtual ~PeerConnection() = default;
  virtual int id() const = 0;
  virtual const std::string& target() const = 0;  // the upgrade request's path?query
  virtual void send_text(std::string frame) = 0;
  virtual void send_binary(std::string frame) = 0;
  // A close frame with this code.
  virtual void close(int code, std::string reason) = 0;
  // Writes the header and the first bytes of a 256-byte text frame, then closes TCP.
  virtual void drop_mid_frame() = 0;
};

struct PeerOptions {
  bool tls = false;
  std::string cert_file;  // PEM chain and key, for tls
  std::string key_file;
  // When non-zero, every upgrade is answered with this status and body instead.
  int refuse_status = 0;
  std::string refuse_body;
};

class ScriptedPeer {
 public:
  using Script = std::function<void(PeerConnection& conn, std::string_view frame, bool binary)>;
  using OnOpen = std::function<void(PeerConnection& conn)>;

  explicit ScriptedPeer(PeerOptions options = {});
  ~ScriptedPeer();
  ScriptedPeer(const ScriptedPeer&) = delete;
  ScriptedPeer& operator=(const ScriptedPeer&) = delete;

  std::uint16_t port() const;
  // Set before clients connect.
  void set_script(Script script);
  void set_on_open(OnOpen on_open);

  // Runs `fn` on the peer's thread.
  void post(std::function<void()> fn);
  // Runs `fn` on the peer's thread with the most recently opened live connection (if any).
  void with_latest(std::function<void(PeerConnection&)> fn);

  std::size_t upgrades() const;  // WebSocket connections accepted
  std::size_t refused() const;   // upgrade requests refused
  std::vector<std::string> targets() const;
  // Close frames received from clients: (code, reason).
  std::vector<std::pair<int, std::string>> client_closes() const;
  // Text frames received, in order, across connections.
  std::vector<std::string> received() const;
  // SNI host name the last TLS client sent ("" when none).
  std::string last_sni() const;

  struct Impl;  // in scripted_peer.cpp

 private:
  std::shared_ptr<Impl> impl_;
};

// Polls `pred` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace rtsync::testing
