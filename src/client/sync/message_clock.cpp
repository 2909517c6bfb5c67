#include <memory>

#include "rtsync/client/sync/realtime_manager.hpp"

namespace rtsync::client::sync {
namespace {

// Passes everything through; stamps the clock on each inbound frame.
class InstrumentedTransport final : public Transport {
 public:
  InstrumentedTransport(std::unique_ptr<Transport> inner, MessageClock& clock)
      : inner_(std::move(inner)), clock_(clock) {}

  void set_handlers(TransportHandlers handlers) override {
    if (handlers.on_message) {
      handlers.on_message = [this, fn = std::move(handlers.on_message)](std::string_view data,
                                                                        bool binary) {
        clock_.stamp();
        fn(data, binary);
      };
    }
    inner_->set_handlers(std::move(handlers));
  }
  void connect(std::string url, Headers headers) override {
    inner_->connect(std::move(url), std::move(headers));
  }
  Result<void> send(std::string frame, bool binary) override {
    return inner_->send(std::move(frame), binary);
  }
  void close(int code, std::string reason) override { inner_->close(code, std::move(reason)); }
  std::size_t message_padding() const noexcept override { return inner_->message_padding(); }

 private:
  std::unique_ptr<Transport> inner_;
  MessageClock& clock_;
};

}  // namespace

std::unique_ptr<Transport> instrument_transport(std::unique_ptr<Transport> inner,
                                                MessageClock& clock) {
  return std::make_unique<InstrumentedTransport>(std::move(inner), clock);
}

}  // namespace rtsync::client::sync
