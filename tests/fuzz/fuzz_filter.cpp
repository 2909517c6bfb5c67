// parse_filter never crashes; if it accepts f then parse(print(f)) == f; evaluation never
// crashes for any kind.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"
#include "rtsync/protocol/filter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rtsync;
  using namespace rtsync::protocol;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto f = parse_filter(text);
  if (!f.ok()) return 0;
  const auto printed = print_filter(f.value());
  auto again = parse_filter(printed);
  if (!again.ok()) fuzz::fail("printed filter does not parse", printed);
  if (!(again.value() == f.value())) fuzz::fail("filter round trip changed", printed);
  // Evaluate against the filter's own values and a few typed values, under every kind.
  json::object row;
  const auto& column = f->column;
  std::vector<json::value> samples = {
      nullptr, true, false, 0, -1, 9007199254740993LL, 1.5, json::string("10")};
  // A few of the filter's own values (not all 100: each sample is evaluated against every value).
  for (std::size_t i = 0; i < f->values.size() && i < 4; ++i) {
    samples.emplace_back(json::string(f->values[i]));
  }
  for (const auto& sample : samples) {
    row[column] = sample;
    for (auto kind : {std::optional<ValueKind>{}, std::optional{ValueKind::number},
                      std::optional{ValueKind::text}, std::optional{ValueKind::boolean}}) {
      const bool hit = filter_matches(f.value(), row, kind);
      if (sample.is_null() && hit) fuzz::fail("null matched");
    }
  }
  return 0;
}
