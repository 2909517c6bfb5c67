// decode_user_broadcast (+ to_message, decode_binary, encode_broadcast_text) never crashes; an
// accepted frame re-encodes byte for byte, and every path to a Message agrees.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rtsync;
  using namespace rtsync::protocol;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto b = decode_user_broadcast(bytes);
  auto direct = decode_binary(bytes);
  if (!b.ok()) {
    if (direct.ok()) fuzz::fail("decode_binary accepted what decode_user_broadcast refused");
    return 0;
  }
  const bool push = static_cast<std::uint8_t>(bytes[0]) == 3;
  auto encoded = push ? encode_user_broadcast_push(b.value()) : encode_user_broadcast(b.value());
  if (!encoded.ok() || encoded.value() != bytes) fuzz::fail("binary re-encode differs");
  auto m = to_message(b.value());
  if (!m.ok()) fuzz::fail("to_message failed on a decoded frame", m.error().describe());
  if (!direct.ok() || !fuzz::roughly_equal(direct.value(), m.value())) {
    fuzz::fail("decode_binary disagrees with to_message");
  }
  if (b->encoding == PayloadEncoding::json) {
    for (auto vsn : {Vsn::v1, Vsn::v2}) {
      auto text = encode_broadcast_text(vsn, b.value());
      if (!text.ok()) fuzz::fail("encode_broadcast_text failed");
      auto back = decode_text(vsn, text.value());
      if (!back.ok()) fuzz::fail("broadcast text does not decode", back.error().describe());
      Message expected = m.value();
      expected.join_ref.reset();
      expected.ref.reset();
      if (!fuzz::roughly_equal(back.value(), expected)) fuzz::fail("broadcast text differs");
    }
  }
  return 0;
}
