// The prefix index: a burst trie over key elements (see query_client.hpp for the contract).
//
// A node stands for a key prefix. Until it bursts, a node keeps every query under it in its bucket;
// past kBucket queries it bursts: queries with longer keys move to children keyed by the canonical
// text of their next element, so buckets stay small and matching never scans more than a bucket per
// level beyond the matches themselves. Children are found by hash lookup on canonical text, which
// for primitives is exactly partial-match equality (numbers are normalised before hashing).
#include <algorithm>

#include "internal.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::query::detail {

namespace {

bool is_container(const json::value& v) {
  return v.is_array() || v.is_object();
}

// Elements [from, filter.size()) of the filter against the query's key.
bool rest_matches(const Query& q, const QueryKey& filter, std::size_t from) {
  const auto& a = q.key().elements();
  const auto& b = filter.elements();
  if (b.size() > a.size()) return false;
  for (std::size_t i = from; i < b.size(); ++i) {
    if (!partial_match(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

const json::value& IndexNode::element() {
  if (!parsed) {
    auto r = core::parse_json(elem);
    parsed = std::make_unique<json::value>(r ? std::move(r.value()) : json::value());
  }
  return *parsed;
}

KeyIndex::KeyIndex() = default;

IndexNode* KeyIndex::child(IndexNode* node, std::string_view elem) {
  auto it = node->children.find(elem);
  if (it != node->children.end()) return it->second.get();
  auto created = std::make_unique<IndexNode>();
  created->elem = std::string(elem);
  created->parent = node;
  created->depth = node->depth + 1;
  auto* raw = created.get();
  node->children.emplace(created->elem, std::move(created));
  ++nodes_;
  return raw;
}

void KeyIndex::place(Query& q, IndexNode* node) {
  q.index_node_ = node;
  q.index_pos_ = static_cast<std::uint32_t>(node->bucket.size());
  node->bucket.push_back(&q);
}

void KeyIndex::insert(Query& q) {
  ++generation_;
  const auto elems = split_canonical_array(q.hash());
  IndexNode* node = &root_;
  while (node->burst && node->depth < elems.size())
    node = child(node, elems[node->depth]);
  place(q, node);
  if (!node->burst && node->bucket.size() > kBucket) burst(node);
}

void KeyIndex::burst(IndexNode* node) {
  node->burst = true;
  std::vector<Query*> moving;
  moving.swap(node->bucket);
  std::vector<IndexNode*> touched;
  for (Query* q : moving) {
    const auto elems = split_canonical_array(q->hash());
    if (elems.size() <= node->depth) {
      place(*q, node);  // the one query whose key is exactly this prefix
      continue;
    }
    IndexNode* c = child(node, elems[node->depth]);
    place(*q, c);
    if (c->bucket.size() == kBucket + 1) touched.push_back(c);
  }
  for (IndexNode* c : touched) {
    if (!c->burst && c->bucket.size() > kBucket) burst(c);
  }
}

void KeyIndex::erase(Query& q) {
  IndexNode* node = q.index_node_;
  if (!node) return;
  ++generation_;
  auto& bucket = node->bucket;
  const std::uint32_t pos = q.index_pos_;
  if (pos < bucket.size() && bucket[pos] == &q) {
    bucket[pos] = bucket.back();
    bucket[pos]->index_pos_ = pos;
    bucket.pop_back();
  }
  q.index_node_ = nullptr;
  // Prune empty nodes up to the root.
  while (node != &root_ && node->bucket.empty() && node->children.empty()) {
    IndexNode* parent = node->parent;
    parent->children.erase(node->elem);  // destroys node
    --nodes_;
    node = parent;
  }
}

void KeyIndex::collect(IndexNode* node, const std::function<void(Query&)>& fn) {
  for (Query* q : node->bucket)
    fn(*q);
  for (auto& [elem, c] : node->children)
    collect(c.get(), fn);
}

void KeyIndex::walk(IndexNode* node, const QueryKey& filter,
                    const std::vector<std::string_view>& felems,
                    const std::function<void(Query&)>& fn) {
  const std::size_t d = node->depth;
  if (d >= felems.size()) {
    collect(node, fn);
    return;
  }
  for (Query* q : node->bucket) {
    if (rest_matches(*q, filter, d)) fn(*q);
  }
  if (!node->burst) return;
  const json::value& f = filter.elements()[d];
  if (!is_container(f)) {
    auto it = node->children.find(felems[d]);
    if (it != node->children.end()) walk(it->second.get(), filter, felems, fn);
    return;
  }
  // An object/array element: test each distinct value at this level.
  for (auto& [elem, c] : node->children) {
    if (partial_match(c->element(), f)) walk(c.get(), filter, felems, fn);
  }
}

void KeyIndex::for_each_match(const QueryKey& filter, const std::function<void(Query&)>& fn) {
  const auto felems = split_canonical_array(filter.hash());
  walk(&root_, filter, felems, fn);
}

void KeyIndex::for_each(const std::function<void(Query&)>& fn) {
  collect(&root_, fn);
}

}  // namespace rtsync::client::query::detail
