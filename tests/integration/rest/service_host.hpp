// Test scaffolding: serves rtsync::server::http::HttpService instances (/rest/v1, /auth/v1) over
// real HTTP/1.1 keep-alive on 127.0.0.1, so RestClient, the fetchers, supabase-js and wrk can
// reach them before (and independently of) the full `rtsync server` wiring. Not a production
// listener: no TLS, no limits beyond a body cap.
//
// Thread safety: construct, listen and destroy on the thread running `io`; services are called
// there.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/http/http_service.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::test {

class ServiceHost {
 public:
  ServiceHost(boost::asio::io_context& io, std::vector<server::http::HttpService*> services);
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Port 0 picks a free port; returns the bound one. With a certificate chain and key (PEM),
  // serves HTTPS instead.
  Result<std::uint16_t> listen(std::uint16_t port = 0, const std::string& cert_file = {},
                               const std::string& key_file = {});
  std::uint16_t port() const noexcept;
  std::string url() const;  // "http(s)://127.0.0.1:<port>"
  void close();
  // Closes every open connection (keep-alive ones included) without a response.
  void drop_connections();
  std::uint64_t requests() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::test
