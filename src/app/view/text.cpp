#include "text.hpp"

#include <cstdint>

namespace rtsync::app::view {
namespace {

// One decoded code point and the bytes it took (1 with cp = U+FFFD for a bad sequence).
struct Decoded {
  char32_t cp;
  int bytes;
  bool valid;
};

Decoded decode(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1, true};
  int n = 0;
  char32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return {0xFFFD, 1, false};
  }
  if (i + n > s.size()) return {0xFFFD, 1, false};
  for (int k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {0xFFFD, 1, false};
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms and surrogates are invalid.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    return {0xFFFD, 1, false};
  }
  return {cp, n, true};
}

int width_of(char32_t cp) {
  if (cp == 0) return 0;
  if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
    return 1;  // control: shown as one cell by the painter
  if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) ||
      (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F)) {
    return 0;
  }
  if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
      (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD)) {
    return 2;
  }
  return 1;
}

constexpr std::string_view kEllipsis = "…";

// Appends code points of `text` while they fit in `budget` columns; returns the columns used and
// sets `cut` when something was left out.
int take(std::string_view text, int budget, std::string& out, bool& cut) {
  int used = 0;
  cut = false;
  std::size_t i = 0;
  while (i < text.size()) {
    const Decoded d = decode(text, i);
    const int w = width_of(d.cp);
    if (used + w > budget) {
      cut = true;
      break;
    }
    if (d.valid) {
      // Control characters would move the cursor: show them as '?'.
      if (d.cp < 0x20 || d.cp == 0x7F) {
        out.push_back('?');
      } else {
        out.append(text.substr(i, static_cast<std::size_t>(d.bytes)));
      }
    } else {
      out.push_back('?');
    }
    used += w;
    i += static_cast<std::size_t>(d.bytes);
  }
  return used;
}

}  // namespace

int display_width(std::string_view text) {
  int w = 0;
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decode(text, i);
    w += width_of(d.cp);
    i += static_cast<std::size_t>(d.bytes);
  }
  return w;
}

std::string truncate(std::string_view text, int width) {
  std::string out;
  if (width <= 0) return out;
  if (display_width(text) <= width) {
    bool cut = false;
    take(text, width, out, cut);
    return out;
  }
  bool cut = false;
  take(text, width - 1, out, cut);
  out.append(kEllipsis);
  return out;
}

std::string fit(std::string_view text, int width) {
  std::string out = truncate(text, width);
  const int w = display_width(out);
  if (w < width) out.append(static_cast<std::size_t>(width - w), ' ');
  return out;
}

std::string spread(std::string_view left, std::string_view right, int width) {
  if (width <= 0) return {};
  const int rw = display_width(right);
  if (rw >= width) return truncate(right, width);
  // At least one space between the two.
  const int left_budget = width - rw - 1;
  std::string l = truncate(left, left_budget);
  const int lw = display_width(l);
  std::string out = std::move(l);
  out.append(static_cast<std::size_t>(width - rw - lw), ' ');
  out.append(right);
  return out;
}

}  // namespace rtsync::app::view
