// The query-key hash against @tanstack/query-core's hashKey: the same keys hashed by both, compared
// line by line. Two caches that share keys with a JavaScript client (or a test written against
// TanStack) must identify the same queries.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "node_runner.hpp"
#include "rtsync/client/query/key.hpp"
#include "rtsync/core/json.hpp"

namespace rtsync::conformance {
namespace {

// Keys JavaScript represents exactly (integers within ±2^53): object member order (array-index
// names, UTF-16 order, nesting), numbers, strings and escapes, nested arrays.
const std::vector<std::string> kKeys = {
    R"(["tasks"])",
    R"(["tasks","paginated","p1",1,50])",
    R"([{"10":1,"2":2,"a":3}])",
    R"(["todos",{"page":1,"filter":"done"}])",
    R"([{"b":{"z":1,"1":2,"0":3},"a":[{"y":1,"x":2}]}])",
    R"([{"4294967295":1,"4294967294":2,"01":3,"-1":4,"1":5,"0":6,"":7}])",
    R"([{"1.5":1,"1e3":2,"12":3,"9":4,"B":5,"a":6,"_":7}])",
    "[{\"\xee\x80\x80\":1,\"\xf0\x9f\x98\x80\":2,\"\xc3\xa9\":3,\"z\":4}]",
    R"([1.0,-0,0.1,1e21,1e-7,123456789012,-2.5e-3,9007199254740991])",
    R"(["quote\"back\\slash","tab\tnl\ncr\r","\u0001\u001f\u007f","\u00e9\u2028"])",
    R"([null,true,false,[],{},[[{}]]])",
    R"(["tasks",{"project_id":"p-1","status":["open","done"],"limit":20}])",
};

TEST(QueryKeyHashConformance, MatchesTanStackHashKey) {
  const std::string input = std::string(::testing::TempDir()) + "query_keys.json";
  {
    std::ofstream f(input);
    f << '[';
    for (std::size_t i = 0; i < kKeys.size(); ++i)
      f << (i ? "," : "") << kKeys[i];
    f << ']';
  }
  auto r = run_command("PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR) + " node " +
                       shell_quote(RTSYNC_CONFORMANCE_DIR "/query_key_hash.mjs") + " < " +
                       shell_quote(input));
  std::remove(input.c_str());
  ASSERT_EQ(r.status, 0) << r.output;

  std::vector<std::string> expected;
  std::size_t start = 0;
  for (std::size_t nl; (nl = r.output.find('\n', start)) != std::string::npos; start = nl + 1)
    expected.push_back(r.output.substr(start, nl - start));
  ASSERT_EQ(expected.size(), kKeys.size()) << r.output;
  for (std::size_t i = 0; i < kKeys.size(); ++i) {
    auto key = client::query::QueryKey::parse(kKeys[i]);
    ASSERT_TRUE(key.ok()) << kKeys[i];
    EXPECT_EQ(key.value().hash(), expected[i]) << "key " << kKeys[i];
  }
}

}  // namespace
}  // namespace rtsync::conformance
