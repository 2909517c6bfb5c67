// decode_v2 never crashes; whatever it accepts re-encodes to a frame that decodes to the same
// message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rtsync;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = protocol::decode_v2(text);
  if (!m.ok()) return 0;
  const auto encoded = protocol::encode_v2(m.value());
  auto again = protocol::decode_v2(encoded);
  if (!again.ok()) fuzz::fail("encode_v2 output does not decode", again.error().describe());
  if (!fuzz::roughly_equal(m.value(), again.value())) fuzz::fail("v2 round trip changed", encoded);
  auto v1 = protocol::decode_v1(protocol::encode_v1(m.value()));
  if (!v1.ok() || !fuzz::roughly_equal(m.value(), v1.value())) fuzz::fail("v2 → v1 round trip");
  return 0;
}
