// Shorthands for RowAuthorizer questions and answers in the authorizer suites.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/server/row_authorizer.hpp"

namespace rtsync::test {

// A class as a router hands it out: shared, immutable.
inline std::shared_ptr<const server::AuthClass> cls(std::string role, std::string claims_json) {
  return std::make_shared<const server::AuthClass>(
      server::AuthClass{std::move(role), std::move(claims_json)});
}

// A transaction's requests, in the shared form authorize() takes.
inline server::VisibilityRequests asked(std::vector<server::VisibilityRequest> requests) {
  return std::make_shared<const std::vector<server::VisibilityRequest>>(std::move(requests));
}

// The same image of each listed change.
inline std::vector<server::RowCheck> rows(std::initializer_list<std::size_t> changes,
                                          server::RowImage image = server::RowImage::new_row) {
  std::vector<server::RowCheck> out;
  for (auto c : changes)
    out.push_back(server::RowCheck{c, image});
  return out;
}

// true where the whole image may be seen.
inline std::vector<bool> visible(const server::VisibilityResult& r) {
  std::vector<bool> out;
  for (auto v : r.rows)
    out.push_back(v == server::Visibility::full);
  return out;
}

}  // namespace rtsync::test
