// The fast read path for inbound text frames: one validating pass over the frame text (simdjson,
// when rtsync is built with it), the envelope as views, and a postgres_changes payload turned
// straight into the client shape {schema, table, commit_timestamp, eventType, new, old, errors}
// without building the wire-shape DOM or copying it twice.
//
// The reader either gives exactly what the DOM path gives —
//   decode_text(vsn, text)                                        for read(),
//   to_client_shape(parse_change_event(payload).value().data)    for client_shape()
// — or declines (nullopt / false), and the caller takes the DOM path, which then reports the
// precise error. It declines on anything it does not handle identically: invalid JSON or UTF-8
// (so the DOM path names the error), nesting deeper than 64, duplicate keys where they matter,
// ids that are not exact integers, integers beyond 64 bits, zero doubles (Boost.JSON reads 0e400
// as NaN), and doubles whose shortest form has more than 15 significant digits or a decimal
// exponent outside [-4, 15] (Boost.JSON 1.81 rounds some of those differently from a correctly
// rounded parse; inside that range both are exact). One difference remains: a number written
// with more digits than its double needs (e.g. 7.50000000000000000001) is correctly rounded here,
// as JSON.parse does, where Boost.JSON 1.81 may be an ulp off. Without simdjson every call
// declines.
//
// Thread safety: one reader per thread (or per loop-confined owner); views returned by read()
// stay valid until the next read(), those of change() and view() until the next read() or
// change(). client_shape() values own their storage (a
// per-frame arena, like decode_text's payloads) and may outlive the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/protocol/change_view.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::protocol {

// A text frame's envelope as views into the reader.
struct FrameHead {
  std::optional<std::string_view> join_ref;
  std::optional<std::string_view> ref;
  std::string_view topic;
  std::string_view event;
};

// What a channel needs to route a postgres_changes payload: its subscription ids and data.type,
// and data.position (rtsync's stream position, docs/resume.md; a null view when absent), valid
// like the views of change().
struct ChangeHead {
  const std::vector<std::int64_t>& ids;
  std::string_view type;
  JsonView position{};
};

class FrameReader {
 public:
  FrameReader();
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // True when built with simdjson (otherwise every read declines).
  static bool available() noexcept;

  // Bytes past the end of a text that read() may load from when told they are there (the
  // parser reads in wide blocks); their content does not matter.
  static constexpr std::size_t kPadding = 64;

  // Parses and validates a vsn 1 or vsn 2 text frame's envelope (the same rules as decode_text).
  // With `padded`, the kPadding bytes after `text` are readable and the text is parsed where it
  // lies; otherwise it is first copied into the reader's padded buffer.
  std::optional<FrameHead> read(Vsn vsn, std::string_view text, bool padded = false);

  // After a successful read(): the payload as a postgres_changes event (the same rules as
  // parse_change_event), or nullopt.
  std::optional<ChangeHead> change();

  // After a successful change(): the client shape in a fresh per-frame arena, or nullopt (a
  // double the DOM path might read differently: see above).
  std::optional<json::object> client_shape();

  // After a successful change(): a read-only view of the event in the client shape, straight from
  // the parsed frame (never declines; numbers correctly rounded). Valid until the next read() or
  // change(). Production dispatch uses this; client_shape() stays as the oracle that tests and
  // the fuzzer hold against the DOM path.
  std::optional<ChangeView> view() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtsync::protocol
