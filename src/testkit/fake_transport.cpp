#include "rtsync/testkit/fake_transport.hpp"

namespace rtsync::testkit {

void FakeTransport::connect(std::string url, Headers headers) {
  url_ = std::move(url);
  headers_ = std::move(headers);
  ++connects_;
  phase_ = Phase::connecting;
}

Result<void> FakeTransport::send(std::string frame, bool binary) {
  if (phase_ != Phase::open) return make_error(Errc::closed, "not connected");
  if (fail_sends_) return make_error(Errc::too_large, "outbound queue full");
  sent_.push_back(Frame{std::move(frame), binary});
  return {};
}

void FakeTransport::close(int code, std::string reason) {
  last_close_ = std::make_pair(code, std::move(reason));
  phase_ = Phase::closed;
}

std::vector<std::string> FakeTransport::sent_text() const {
  std::vector<std::string> out;
  for (const auto& f : sent_) {
    if (!f.binary) out.push_back(f.data);
  }
  return out;
}

std::vector<FakeTransport::Frame> FakeTransport::take_sent() {
  auto out = std::move(sent_);
  sent_.clear();
  return out;
}

void FakeTransport::accept() {
  if (phase_ != Phase::connecting) return;
  phase_ = Phase::open;
  const auto hold = hold_owner(handlers_);
  if (!hold) return;
  if (handlers_.on_open) handlers_.on_open();
}

void FakeTransport::fail(client::TransportFailure failure) {
  if (phase_ != Phase::connecting) return;
  phase_ = Phase::closed;
  const auto hold = hold_owner(handlers_);
  if (!hold) return;
  if (handlers_.on_error) handlers_.on_error(failure);
}

void FakeTransport::refuse(int http_status, std::string body) {
  client::TransportFailure f;
  f.error = make_error(Errc::remote, "upgrade refused with HTTP " + std::to_string(http_status));
  f.http_status = http_status;
  f.body = std::move(body);
  fail(std::move(f));
}

void FakeTransport::receive_text(std::string_view text) {
  if (phase_ != Phase::open) return;
  const auto hold = hold_owner(handlers_);
  if (!hold) return;
  if (handlers_.on_message) handlers_.on_message(text, false);
}

void FakeTransport::receive_binary(std::string_view bytes) {
  if (phase_ != Phase::open) return;
  const auto hold = hold_owner(handlers_);
  if (!hold) return;
  if (handlers_.on_message) handlers_.on_message(bytes, true);
}

void FakeTransport::drop(int code, std::string reason) {
  if (phase_ != Phase::open) return;
  phase_ = Phase::closed;
  const auto hold = hold_owner(handlers_);
  if (!hold) return;
  if (handlers_.on_close) handlers_.on_close(code, reason);
}

}  // namespace rtsync::testkit
