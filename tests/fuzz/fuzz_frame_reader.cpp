// FrameReader (the fast inbound path) against the DOM path: for any input, whatever the reader
// accepts must be what decode_text / parse_change_event / to_client_shape give — same envelope,
// same ids and type, and the same client shape (kinds, key order, strings; doubles within the
// one-ulp-class difference the header documents) — both as client_shape() and through the
// ChangeView callbacks read, every part of which is walked.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "rtsync/protocol/change_view.hpp"
#include "rtsync/protocol/frame_reader.hpp"
#include "rtsync/protocol/postgres_changes.hpp"

namespace {

using namespace rtsync;

bool same(const json::value& a, const json::value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::double_: {
      const double x = a.get_double(), y = b.get_double();
      if (std::isnan(y)) return x == 0 || std::isnan(x);  // Boost.JSON 1.81 reads 0e400 as NaN
      return x == y || std::fabs(x - y) <= 1e-14 * std::fmax(std::fabs(x), std::fabs(y));
    }
    case json::kind::array: {
      const auto &x = a.get_array(), &y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!same(x[i], y[i])) return false;
      }
      return true;
    }
    case json::kind::object: {
      const auto &x = a.get_object(), &y = b.get_object();
      if (x.size() != y.size()) return false;
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
        if (i->key() != j->key() || !same(i->value(), j->value())) return false;
      }
      return true;
    }
    default:
      return a == b;
  }
}

// Reads every part of a view the way a callback could (and ASan watches).
std::size_t walk(const protocol::JsonView& v, int depth = 0) {
  std::size_t n = 1;
  (void)v.as_bool();
  (void)v.as_int64();
  (void)v.as_double();
  if (auto s = v.as_string()) n += s->size();
  if (depth > 70) return n;
  v.for_each_member([&](std::string_view key, protocol::JsonView child) {
    n += key.size() + walk(child, depth + 1);
    if (!v.find(key)) fuzz::fail("a visited member is not found");
  });
  std::size_t items = 0;
  v.for_each_item([&](protocol::JsonView child) {
    n += walk(child, depth + 1);
    if (!v.at(items++)) fuzz::fail("a visited item is not at its index");
  });
  if (v.is_array() && items != v.size()) fuzz::fail("array size differs from its items");
  return n;
}

void check_view(const protocol::FrameReader& reader, const json::object& expected) {
  auto view = reader.view();
  if (!view) fuzz::fail("no view after a successful change()");
  if (!same(json::value(view->to_object()), json::value(expected))) {
    fuzz::fail("view differs from the client shape",
               json::serialize(view->to_object()) + " vs " + json::serialize(expected));
  }
  auto check_row = [&](const protocol::RowView& row, const char* key) {
    const auto& want = expected.at(key).as_object();
    row.for_each([&](std::string_view column, protocol::JsonView value) {
      walk(value);
      if (!want.contains(column)) fuzz::fail("a row visits a column the shape lacks");
    });
    for (const auto& kv : want) {
      auto cell = row.find(kv.key());
      if (!cell || !same(cell->to_value(), kv.value())) fuzz::fail("a row's cell differs");
    }
  };
  check_row(view->new_record(), "new");
  check_row(view->old_record(), "old");
  walk(view->errors());
}

void check(protocol::FrameReader& reader, protocol::Vsn vsn, std::string_view text,
           bool padded = false) {
  auto head = reader.read(vsn, text, padded);
  if (!head) return;
  auto dom = protocol::decode_text(vsn, text);
  if (!dom.ok()) fuzz::fail("reader accepted a frame decode_text rejects", dom.error().describe());
  const auto& m = dom.value();
  if (head->topic != m.topic || head->event != m.event) fuzz::fail("topic/event differ");
  if (head->ref.has_value() != m.ref.has_value() || (head->ref && *head->ref != *m.ref)) {
    fuzz::fail("ref differs");
  }
  if (head->join_ref.has_value() != m.join_ref.has_value() ||
      (head->join_ref && *head->join_ref != *m.join_ref)) {
    fuzz::fail("join_ref differs");
  }
  auto change = reader.change();
  if (!change) return;
  auto event = protocol::parse_change_event(m.payload);
  if (!event.ok()) fuzz::fail("reader accepted a change parse_change_event rejects");
  if (change->ids != event.value().ids || change->type != event.value().data.type) {
    fuzz::fail("ids/type differ");
  }
  const json::object expected_shape = protocol::to_client_shape(event.value().data);
  check_view(reader, expected_shape);
  auto shape = reader.client_shape();
  if (!shape) return;
  const json::value expected = expected_shape;
  if (!same(json::value(*shape), expected)) {
    fuzz::fail("client shape differs",
               json::serialize(*shape) + " vs " + json::serialize(expected));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static protocol::FrameReader reader;  // reused, as the socket does
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(reader, protocol::Vsn::v2, text);
  check(reader, protocol::Vsn::v1, text);
  // In place (as over the Beast transport), followed by bytes that would close, continue or
  // reopen what the text leaves open: the reader must read only the text.
  static std::string buffer;
  buffer.assign(text);
  while (buffer.size() < size + protocol::FrameReader::kPadding)
    buffer += "\"}]0e";
  const std::string_view in_place(buffer.data(), size);
  check(reader, protocol::Vsn::v2, in_place, true);
  check(reader, protocol::Vsn::v1, in_place, true);
  return 0;
}
