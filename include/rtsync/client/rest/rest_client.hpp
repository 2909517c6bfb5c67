// RestClient — PostgREST calls (the /rest/v1 subset rtsync's server and Supabase both serve) with
// JSON results, over a shared HttpClient.
//
// Every request carries `apikey: <api_key>` and `Authorization: Bearer <access token>` (the api key
// while no access token is set), as supabase-js does.
//
// Results: `data` is the parsed body (array, object for single(), scalar for scalar functions,
// null for empty bodies); `count` is the total from Content-Range when the query asked for it.
// Errors: an HTTP error becomes an Error whose message is "HTTP <status> <code>: <message>" (the
// PostgREST body's fields) with code Errc::unauthorized for 401/403, Errc::not_found for 404,
// Errc::remote otherwise; transport failures keep HttpClient's codes (io, timeout, cancelled);
// a 2xx body that is not JSON is Errc::invalid_json.
//
// Thread safety: as HttpClient — one io_context thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "rtsync/client/rest/postgrest_query.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/net/http_client.hpp"

namespace rtsync::client::rest {

// A PostgREST answer with a success status.
struct RestResult {
  int status = 0;                     // the HTTP status (200, 201, 204, 206)
  json::value data;                   // null for an empty body (HEAD, return=minimal)
  std::optional<std::int64_t> count;  // with count_exact()
};

// Receives a request's result or error, once, on the io_context thread.
using RestCallback = std::function<void(Result<RestResult>)>;

// Settings of a RestClient.
struct RestClientOptions {
  std::string api_key;              // the project's anon (or service) key
  std::string prefix = "/rest/v1";  // path of the PostgREST API under the base URL
};

// Turns an HTTP answer into a RestResult or the Error described above (shared with AuthClient).
Result<RestResult> to_rest_result(Result<net::HttpResult> response, bool want_count);
// Errc for an HTTP error status.
Errc errc_for_status(int status) noexcept;

// PostgREST requests over an HttpClient, authenticated as the signed-in user when a token is set
// (errors: the file comment). Thread safety: as HttpClient — one io_context thread.
class RestClient {
 public:
  // `http` must outlive the RestClient.
  RestClient(net::HttpClient& http, RestClientOptions options);

  // The signed-in user's token; empty → requests authenticate with the api key.
  void set_access_token(std::string token) { access_token_ = std::move(token); }
  const std::string& access_token() const noexcept { return access_token_; }

  // Each returns the HttpClient request id (for cancel()).
  std::uint64_t select(const PostgrestQuery& query, RestCallback done);
  // HEAD: the count only (the query should use count_exact()).
  std::uint64_t head(const PostgrestQuery& query, RestCallback done);
  // POST an object or an array of objects; `returning` asks for the inserted rows (`select`).
  std::uint64_t insert(std::string_view table, const json::value& rows, RestCallback done,
                       bool returning = true, std::string_view select = "*");
  // PATCH the rows matching the query's filters (and returns them).
  std::uint64_t update(const PostgrestQuery& filters, const json::object& patch, RestCallback done);
  // DELETE the rows matching the query's filters (and returns them).
  std::uint64_t remove(const PostgrestQuery& filters, RestCallback done);
  // POST /rpc/<function> with named arguments.
  std::uint64_t rpc(std::string_view function, const json::object& args, RestCallback done);

  // Cancels a request by id (HttpClient::cancel).
  void cancel(std::uint64_t id) { http_.cancel(id); }
  // The HttpClient requests go through.
  net::HttpClient& http() noexcept { return http_; }

 private:
  net::Headers headers(bool json_body, bool single = false) const;

  net::HttpClient& http_;
  RestClientOptions options_;
  std::string access_token_;
};

}  // namespace rtsync::client::rest
