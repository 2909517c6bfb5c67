#include "rtsync/server/http/request_framing.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rtsync::server::http {
namespace {

Result<Framing> framing(std::vector<HeaderField> fields, unsigned version = 11) {
  return request_framing(version, fields);
}

std::string refusal(std::vector<HeaderField> fields, unsigned version = 11) {
  auto r = request_framing(version, fields);
  if (r.ok()) return "accepted";
  EXPECT_EQ(r.error().code, Errc::protocol);
  return r.error().message;
}

TEST(RequestFraming, NoLengthAndNoCodingMeansNoBody) {
  auto r = framing({{"Host", "x"}, {"Accept", "*/*"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), Framing{});
}

TEST(RequestFraming, ContentLengthInAnyCaseWithRepeatsOfTheSameValue) {
  auto r = framing({{"content-LENGTH", " 42\t"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (Framing{BodyFraming::length, 42}));
  r = framing({{"Content-Length", "7, 7"}, {"Content-Length", "7"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (Framing{BodyFraming::length, 7}));
  r = framing({{"Content-Length", "18446744073709551615"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().length, UINT64_MAX);
  // HTTP/1.0 may carry a length.
  EXPECT_TRUE(framing({{"Content-Length", "0"}}, 10).ok());
}

TEST(RequestFraming, DifferingOrMalformedContentLengthIsRefused) {
  EXPECT_EQ(refusal({{"Content-Length", "5"}, {"Content-Length", "6"}}),
            "conflicting Content-Length values");
  EXPECT_EQ(refusal({{"Content-Length", "5, 6"}}), "conflicting Content-Length values");
  EXPECT_EQ(refusal({{"Content-Length", "+5"}}), "invalid Content-Length '+5'");
  for (const char* v : {"", "5,", ",5", "5 5", "0x10", "-1", "1e3", "18446744073709551616"}) {
    EXPECT_NE(refusal({{"Content-Length", v}}).find("invalid Content-Length"), std::string::npos)
        << v;
  }
}

TEST(RequestFraming, ChunkedAloneInAnyCaseIsTheOnlyTransferCoding) {
  auto r = framing({{"Transfer-Encoding", "chunked"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (Framing{BodyFraming::chunked, 0}));
  r = framing({{"transfer-encoding", " ChUnKeD "}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().kind, BodyFraming::chunked);
}

TEST(RequestFraming, AnyOtherTransferCodingIsRefused) {
  EXPECT_EQ(refusal({{"Transfer-Encoding", "gzip"}}), "unsupported transfer coding 'gzip'");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "xchunked"}}), "unsupported transfer coding 'xchunked'");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "chunked, identity"}}),
            "unsupported transfer coding 'identity'");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "gzip, chunked"}}),
            "unsupported transfer coding 'gzip'");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "chunked;q=1"}}),
            "unsupported transfer coding 'chunked;q=1'");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "chunked,"}}), "empty transfer coding");
  EXPECT_EQ(refusal({{"Transfer-Encoding", ""}}), "empty transfer coding");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}),
            "chunked must be the only transfer coding");
  EXPECT_EQ(refusal({{"Transfer-Encoding", "\x01\xff"}}),
            "unsupported transfer coding '?"
            "?'");
}

TEST(RequestFraming, TransferEncodingWithContentLengthOrOnHttp10IsRefused) {
  const std::string both = "both Transfer-Encoding and Content-Length";
  EXPECT_EQ(refusal({{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}), both);
  EXPECT_EQ(refusal({{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}), both);
  EXPECT_EQ(refusal({{"Transfer-Encoding", "chunked"}}, 10),
            "Transfer-Encoding in an HTTP/1.0 request");
}

}  // namespace
}  // namespace rtsync::server::http
