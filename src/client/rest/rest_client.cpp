#include "rtsync/client/rest/rest_client.hpp"

#include <charconv>

namespace rtsync::client::rest {
namespace {

// The total of "0-49/120" or "*/120"; nullopt for "*".
std::optional<std::int64_t> content_range_total(std::string_view range) {
  const std::size_t slash = range.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view total = range.substr(slash + 1);
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(total.data(), total.data() + total.size(), n);
  if (ec != std::errc() || p != total.data() + total.size()) return std::nullopt;
  return n;
}

// "HTTP 400 PGRST100: message (details)" from a PostgREST or GoTrue error body.
std::string describe_http_error(const net::HttpResult& r) {
  std::string out = "HTTP " + std::to_string(r.status);
  auto body = core::parse_json(r.body);
  if (!body || !body.value().is_object()) {
    if (!r.body.empty()) out += ": " + r.body.substr(0, 200);
    return out;
  }
  const json::value& v = body.value();
  std::string code;
  if (auto c = core::find_string(v, "code")) code = std::string(*c);
  if (auto c = core::find_string(v, "error_code")) code = std::string(*c);
  std::string message;
  for (const char* k : {"message", "msg", "error_description", "error"}) {
    if (auto m = core::find_string(v, k)) {
      message = std::string(*m);
      break;
    }
  }
  if (!code.empty()) out += " " + code;
  if (!message.empty()) out += ": " + message;
  if (auto d = core::find_string(v, "details"); d && !d->empty())
    out += " (" + std::string(*d) + ")";
  return out;
}

}  // namespace

Errc errc_for_status(int status) noexcept {
  if (status == 401 || status == 403) return Errc::unauthorized;
  if (status == 404) return Errc::not_found;
  if (status == 408 || status == 504) return Errc::timeout;
  return Errc::remote;
}

Result<RestResult> to_rest_result(Result<net::HttpResult> response, bool want_count) {
  if (!response) return response.error();
  net::HttpResult& r = response.value();
  if (r.status < 200 || r.status >= 300) {
    return make_error(errc_for_status(r.status), describe_http_error(r));
  }
  RestResult out;
  out.status = r.status;
  if (want_count) out.count = content_range_total(r.header("Content-Range"));
  if (!r.body.empty()) {
    auto parsed = core::parse_json(r.body);
    if (!parsed) {
      return make_error(Errc::invalid_json, "HTTP " + std::to_string(r.status) +
                                                " body is not JSON: " + r.body.substr(0, 200));
    }
    out.data = std::move(parsed).value();
  }
  return out;
}

RestClient::RestClient(net::HttpClient& http, RestClientOptions options)
    : http_(http), options_(std::move(options)) {}

net::Headers RestClient::headers(bool json_body, bool single) const {
  net::Headers h;
  h.emplace_back("apikey", options_.api_key);
  h.emplace_back("Authorization",
                 "Bearer " + (access_token_.empty() ? options_.api_key : access_token_));
  h.emplace_back("Accept", single ? "application/vnd.pgrst.object+json" : "application/json");
  if (json_body) h.emplace_back("Content-Type", "application/json");
  return h;
}

std::uint64_t RestClient::select(const PostgrestQuery& query, RestCallback done) {
  net::Headers h = headers(false, query.is_single());
  if (query.counted()) h.emplace_back("Prefer", "count=exact");
  const bool count = query.counted();
  return http_.request("GET", query.target(options_.prefix), std::move(h), {},
                       [done = std::move(done), count](Result<net::HttpResult> r) {
                         done(to_rest_result(std::move(r), count));
                       });
}

std::uint64_t RestClient::head(const PostgrestQuery& query, RestCallback done) {
  net::Headers h = headers(false);
  if (query.counted()) h.emplace_back("Prefer", "count=exact");
  const bool count = query.counted();
  return http_.request("HEAD", query.target(options_.prefix), std::move(h), {},
                       [done = std::move(done), count](Result<net::HttpResult> r) {
                         done(to_rest_result(std::move(r), count));
                       });
}

std::uint64_t RestClient::insert(std::string_view table, const json::value& rows, RestCallback done,
                                 bool returning, std::string_view select) {
  net::Headers h = headers(true);
  h.emplace_back("Prefer", returning ? "return=representation" : "return=minimal");
  std::string target = options_.prefix + "/" + PostgrestQuery::encode(table);
  if (returning) target += "?select=" + PostgrestQuery::encode(select);
  return http_.request("POST", std::move(target), std::move(h), json::serialize(rows),
                       [done = std::move(done)](Result<net::HttpResult> r) {
                         done(to_rest_result(std::move(r), false));
                       });
}

std::uint64_t RestClient::update(const PostgrestQuery& filters, const json::object& patch,
                                 RestCallback done) {
  net::Headers h = headers(true);
  h.emplace_back("Prefer", "return=representation");
  return http_.request("PATCH", filters.target(options_.prefix), std::move(h),
                       json::serialize(patch), [done = std::move(done)](Result<net::HttpResult> r) {
                         done(to_rest_result(std::move(r), false));
                       });
}

std::uint64_t RestClient::remove(const PostgrestQuery& filters, RestCallback done) {
  net::Headers h = headers(false);
  h.emplace_back("Prefer", "return=representation");
  return http_.request("DELETE", filters.target(options_.prefix), std::move(h), {},
                       [done = std::move(done)](Result<net::HttpResult> r) {
                         done(to_rest_result(std::move(r), false));
                       });
}

std::uint64_t RestClient::rpc(std::string_view function, const json::object& args,
                              RestCallback done) {
  return http_.request("POST", options_.prefix + "/rpc/" + PostgrestQuery::encode(function),
                       headers(true), json::serialize(args),
                       [done = std::move(done)](Result<net::HttpResult> r) {
                         done(to_rest_result(std::move(r), false));
                       });
}

}  // namespace rtsync::client::rest
