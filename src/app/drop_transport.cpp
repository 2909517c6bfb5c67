#include "drop_transport.hpp"
#include "rtsync/protocol/close_codes.hpp"

namespace rtsync::app {

DroppableTransport::DroppableTransport(core::Scheduler& scheduler,
                                       std::unique_ptr<client::Transport> inner)
    : scheduler_(scheduler), inner_(std::move(inner)), control_(std::make_shared<DropControl>()) {
  control_->transport_ = this;
}

DroppableTransport::~DroppableTransport() {
  control_->transport_ = nullptr;
  *alive_ = false;
}

void DroppableTransport::set_handlers(client::TransportHandlers handlers) {
  handlers_ = handlers;
  // Track open/closed so a drop only reports a close for a connection that is open.
  client::TransportHandlers wrapped;
  wrapped.hold_owner = handlers_.hold_owner;  // the inner transport holds our owner for us
  wrapped.on_open = [this] {
    open_ = true;
    if (handlers_.on_open) handlers_.on_open();
  };
  wrapped.on_message = [this](std::string_view data, bool binary) {
    if (handlers_.on_message) handlers_.on_message(data, binary);
  };
  wrapped.on_close = [this](int code, std::string_view reason) {
    open_ = false;
    if (handlers_.on_close) handlers_.on_close(code, reason);
  };
  wrapped.on_error = [this](const client::TransportFailure& f) {
    open_ = false;
    if (handlers_.on_error) handlers_.on_error(f);
  };
  inner_->set_handlers(std::move(wrapped));
}

void DroppableTransport::connect(std::string url, Headers headers) {
  if (scheduler_.now() < refuse_until_) {
    // Callbacks never run inside the owner's call (Transport contract): post the failure.
    open_ = false;
    inner_->close(protocol::close_code::kNormal, "dropped");
    std::weak_ptr<bool> alive = alive_;
    scheduler_.post([this, alive] {
      if (alive.expired()) return;
      client::TransportFailure f;
      f.error = make_error(Errc::io, "realtime dropped on request (k)");
      const auto hold = client::hold_owner(handlers_);
      if (hold && handlers_.on_error) handlers_.on_error(f);
    });
    return;
  }
  if (!nodes_.empty()) {
    // scheme://host:port/path…: the authority becomes the current node's.
    const auto start = url.find("://");
    if (start != std::string::npos) {
      const auto end = url.find('/', start + 3);
      url.replace(start + 3, (end == std::string::npos ? url.size() : end) - start - 3,
                  nodes_[node_]);
    }
  }
  inner_->connect(std::move(url), std::move(headers));
}

Result<void> DroppableTransport::send(std::string frame, bool binary) {
  if (!open_) return make_error(Errc::closed, "not connected");
  return inner_->send(std::move(frame), binary);
}

void DroppableTransport::close(int code, std::string reason) {
  open_ = false;
  inner_->close(code, std::move(reason));
}

void DroppableTransport::drop(core::Duration refuse_for) {
  refuse_until_ = scheduler_.now() + refuse_for;
  if (!nodes_.empty()) node_ = (node_ + 1) % nodes_.size();
  if (!open_) return;
  open_ = false;
  // The inner connection goes away without further callbacks; the socket hears an abnormal close,
  // as when the network fails.
  inner_->close(protocol::close_code::kNormal, "dropped");
  std::weak_ptr<bool> alive = alive_;
  scheduler_.post([this, alive] {
    if (alive.expired()) return;
    const auto hold = client::hold_owner(handlers_);
    if (hold && handlers_.on_close) {
      handlers_.on_close(protocol::close_code::kAbnormal, "dropped on request (k)");
    }
  });
}

bool DropControl::drop(core::Duration refuse_for) {
  if (!transport_) return false;
  ++drops_;
  transport_->drop(refuse_for);
  return true;
}

std::string DropControl::node() const {
  return transport_ && !transport_->nodes_.empty() ? transport_->nodes_[transport_->node_] : "";
}

std::size_t DropControl::node_index() const {
  return transport_ ? transport_->node_ : 0;
}

std::size_t DropControl::node_count() const {
  return transport_ ? transport_->nodes_.size() : 0;
}

bool DropControl::dropping() const {
  return transport_ && transport_->scheduler_.now() < transport_->refuse_until_;
}

}  // namespace rtsync::app
