// decode_v1 never crashes; whatever it accepts re-encodes to a frame that decodes to the same
// message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rtsync;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = protocol::decode_v1(text);
  if (!m.ok()) return 0;
  const auto encoded = protocol::encode_v1(m.value());
  auto again = protocol::decode_v1(encoded);
  if (!again.ok()) fuzz::fail("encode_v1 output does not decode", again.error().describe());
  if (!fuzz::roughly_equal(m.value(), again.value())) fuzz::fail("v1 round trip changed", encoded);
  // The same message must survive the other text encoding too.
  auto v2 = protocol::decode_v2(protocol::encode_v2(m.value()));
  if (!v2.ok() || !fuzz::roughly_equal(m.value(), v2.value())) fuzz::fail("v1 → v2 round trip");
  return 0;
}
