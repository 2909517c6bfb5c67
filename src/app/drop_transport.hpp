// A Transport decorator behind the task pane's `k` key: drops the realtime connection as a
// network failure would (the socket sees an abnormal close, 1006) and refuses new connection
// attempts for a while, so the pane shows realtime going down, polling taking over at 5 s, then the
// socket's own reconnect, the rejoin and the gap fill.
//
// While not dropping it forwards everything to the inner transport unchanged. With several nodes
// of a cluster (`rtsync demo --nodes N`), each drop also moves the socket to the next node: the
// next connection goes to that node's host:port instead of the URL's.
//
// Thread safety: loop-confined, like every Transport.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rtsync/client/transport/transport.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::app {

class DropControl;

class DroppableTransport final : public client::Transport {
 public:
  DroppableTransport(core::Scheduler& scheduler, std::unique_ptr<client::Transport> inner);
  ~DroppableTransport() override;

  void set_handlers(client::TransportHandlers handlers) override;
  void connect(std::string url, Headers headers) override;
  Result<void> send(std::string frame, bool binary) override;
  void close(int code, std::string reason) override;
  std::size_t message_padding() const noexcept override { return inner_->message_padding(); }

  // Shared with the owner of the socket, which owns this transport.
  std::shared_ptr<DropControl> control() const { return control_; }
  // The cluster's nodes ("host:port"), the first one the URL's; empty: no moving.
  void set_nodes(std::vector<std::string> nodes) { nodes_ = std::move(nodes); }

 private:
  friend class DropControl;
  void drop(core::Duration refuse_for);

  core::Scheduler& scheduler_;
  std::unique_ptr<client::Transport> inner_;
  client::TransportHandlers handlers_;
  std::shared_ptr<DropControl> control_;
  bool open_ = false;
  core::TimePoint refuse_until_{};
  std::vector<std::string> nodes_;
  std::size_t node_ = 0;  // index in nodes_ of where the next connection goes
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The handle the pane keeps: safe to use after the transport is gone (then it does nothing).
class DropControl {
 public:
  // Closes the connection abnormally now and fails every connection attempt for `refuse_for`.
  // Returns false when there is no transport any more.
  bool drop(core::Duration refuse_for);
  bool dropping() const;
  std::uint64_t drops() const noexcept { return drops_; }
  // Where the socket connects now ("host:port"; "" without nodes) and which of how many.
  std::string node() const;
  std::size_t node_index() const;
  std::size_t node_count() const;

 private:
  friend class DroppableTransport;
  DroppableTransport* transport_ = nullptr;
  std::uint64_t drops_ = 0;
};

}  // namespace rtsync::app
