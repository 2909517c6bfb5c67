#include "key_hash.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rtsync::client::sync::detail {

void append_canonical(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      const auto& obj = v.get_object();
      std::vector<const json::key_value_pair*> fields;
      fields.reserve(obj.size());
      for (const auto& kv : obj)
        fields.push_back(&kv);
      std::sort(fields.begin(), fields.end(),
                [](const auto* a, const auto* b) { return a->key() < b->key(); });
      out.push_back('{');
      bool first = true;
      for (const auto* kv : fields) {
        if (!first) out.push_back(',');
        first = false;
        out += json::serialize(json::value(kv->key()));
        out.push_back(':');
        append_canonical(out, kv->value());
      }
      out.push_back('}');
      return;
    }
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_canonical(out, e);
      }
      out.push_back(']');
      return;
    }
    case json::kind::double_: {
      const double d = v.get_double();
      // JSON has one number type: 1.0 is the key 1, as in JavaScript.
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) {
        out += std::to_string(static_cast<std::int64_t>(d));
        return;
      }
      out += json::serialize(v);
      return;
    }
    default:
      out += json::serialize(v);
      return;
  }
}

std::string canonical_key(const json::array& key) {
  std::string out = "[";
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_canonical(out, key[i]);
  }
  out.push_back(']');
  return out;
}

std::vector<std::string> canonical_prefixes(const json::array& key) {
  std::vector<std::string> out;
  out.reserve(key.size());
  std::string acc = "[";
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (i > 0) acc.push_back(',');
    append_canonical(acc, key[i]);
    out.push_back(acc + "]");
  }
  return out;
}

}  // namespace rtsync::client::sync::detail
