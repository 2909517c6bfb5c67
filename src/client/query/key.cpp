#include "rtsync/client/query/key.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

#include "number.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::query {

namespace {

// Normalises numbers in place (see key.hpp). Non-finite numbers: with `strict`, the JSON pointer of
// the first one is returned; otherwise they become null and are reported the same way.
void normalise(json::value& v, std::string& path, std::string& first_bad) {
  switch (v.kind()) {
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        if (first_bad.empty()) first_bad = path.empty() ? "/" : path;
        v = nullptr;
      } else if (auto i = detail::exact_int53(d)) {
        v = *i;
      }
      break;
    }
    case json::kind::uint64:
      if (v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
        v = static_cast<std::int64_t>(v.get_uint64());
      }
      break;
    case json::kind::array: {
      auto& arr = v.get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) {
        const auto len = path.size();
        path += '/';
        path += std::to_string(i);
        normalise(arr[i], path, first_bad);
        path.resize(len);
      }
      break;
    }
    case json::kind::object:
      for (auto& member : v.get_object()) {
        const auto len = path.size();
        path += '/';
        path.append(member.key().data(), member.key().size());
        normalise(member.value(), path, first_bad);
        path.resize(len);
      }
      break;
    default:
      break;
  }
}

}  // namespace

bool detail::prefix_match(const json::array& a, const json::array& b) {
  if (b.size() > a.size()) return false;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (!partial_match(a[i], b[i])) return false;
  }
  return true;
}

bool partial_match(const json::value& a, const json::value& b) {
  const bool an = detail::is_number(a);
  const bool bn = detail::is_number(b);
  if (an || bn) return an && bn && detail::number_equal(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null:
      return true;
    case json::kind::bool_:
      return a.get_bool() == b.get_bool();
    case json::kind::string:
      return a.get_string() == b.get_string();
    case json::kind::array:
      return detail::prefix_match(a.get_array(), b.get_array());
    case json::kind::object: {
      const auto& x = a.get_object();
      for (const auto& m : b.get_object()) {
        const auto* found = x.if_contains(m.key());
        if (!found || !partial_match(*found, m.value())) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

std::vector<std::string_view> split_canonical_array(std::string_view text) {
  std::vector<std::string_view> out;
  if (text.size() < 2 || text.front() != '[') return out;
  const std::size_t end = text.size() - 1;  // the closing ']'
  std::size_t start = 1;
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 1; i < end; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        ++depth;
        break;
      case ']':
      case '}':
        --depth;
        break;
      case ',':
        if (depth == 0) {
          out.push_back(text.substr(start, i - start));
          start = i + 1;
        }
        break;
      default:
        break;
    }
  }
  if (end > start) out.push_back(text.substr(start, end - start));
  return out;
}

std::shared_ptr<const QueryKey::Rep> QueryKey::build(json::array elements) {
  auto rep = std::make_shared<Rep>();
  rep->elements = std::move(elements);
  core::append_canonical_json(rep->hash, rep->elements);
  return rep;
}

QueryKey::QueryKey() : rep_(build(json::array{})) {}

QueryKey::QueryKey(std::initializer_list<json::value_ref> elements)
    : QueryKey(json::array(elements)) {}

QueryKey::QueryKey(json::array elements) {
  json::value v(std::move(elements));
  std::string path, bad;
  normalise(v, path, bad);
  if (!bad.empty()) {
    log::get(loggers::kQuery)
        ->error("query key has a non-finite number at {}; it becomes null", bad);
  }
  rep_ = build(std::move(v.get_array()));
}

Result<QueryKey> QueryKey::make(const json::value& key) {
  if (!key.is_array()) {
    return make_error(Errc::invalid_argument, std::string("query key must be a JSON array, got ") +
                                                  std::string(json::to_string(key.kind())));
  }
  json::value v = key;
  std::string path, bad;
  normalise(v, path, bad);
  if (!bad.empty()) {
    return make_error(Errc::invalid_argument,
                      "query key has a non-finite number (NaN or infinity) at " + bad);
  }
  return QueryKey(build(std::move(v.get_array())));
}

Result<QueryKey> QueryKey::parse(std::string_view text) {
  auto parsed = core::parse_json(text);
  if (!parsed) return parsed.error();
  return make(parsed.value());
}

bool QueryKey::matches(const QueryKey& filter) const {
  return detail::prefix_match(rep_->elements, filter.rep_->elements);
}

}  // namespace rtsync::client::query
