#include "rtsync/client/client.hpp"

#include "rtsync/client/session_binding.hpp"
#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"

namespace rtsync::client {

namespace {

std::optional<std::string> b64url_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = val(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::optional<json::object> jwt_claims(std::string_view token) {
  const auto a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = token.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  auto text = b64url_decode(token.substr(a + 1, b - a - 1));
  if (!text) return std::nullopt;
  auto v = core::parse_json(*text);
  if (!v.ok() || !v.value().is_object()) return std::nullopt;
  return v.value().as_object();
}

void trim_slashes(std::string& url) {
  while (url.size() > 1 && url.back() == '/')
    url.pop_back();
}

}  // namespace

std::optional<core::WallTime> jwt_expiry(std::string_view token) {
  auto claims = jwt_claims(token);
  if (!claims) return std::nullopt;
  const auto* exp = claims->if_contains("exp");
  if (!exp || !exp->is_number()) return std::nullopt;
  const auto secs = static_cast<std::int64_t>(exp->to_number<double>());
  return core::WallTime(std::chrono::seconds(secs));
}

std::string jwt_subject(std::string_view token) {
  auto claims = jwt_claims(token);
  if (!claims) return {};
  const auto* sub = claims->if_contains("sub");
  return sub && sub->is_string() ? std::string(sub->as_string()) : std::string();
}

Client::Client(core::Scheduler& scheduler, ClientOptions options)
    : scheduler_(scheduler), options_(std::move(options)), diagnostics_(scheduler) {}

Result<std::unique_ptr<Client>> Client::create(core::EventLoop& loop, ClientOptions options) {
  return create(loop.io_context(), loop.scheduler(), std::move(options));
}

Result<std::unique_ptr<Client>> Client::create(boost::asio::io_context& io,
                                               core::Scheduler& scheduler, ClientOptions options) {
  if (options.url.empty()) return make_error(Errc::invalid_argument, "the project url is required");
  if (options.anon_key.empty()) {
    return make_error(Errc::invalid_argument, "the project's anon key is required");
  }
  trim_slashes(options.url);
  trim_slashes(options.rest_url);
  std::unique_ptr<Client> c(new Client(scheduler, std::move(options)));
  const ClientOptions& o = c->options_;

  net::HttpClientOptions ho;
  ho.base_url = o.rest_url.empty() ? o.url : o.rest_url;
  ho.timeout = o.request_timeout;
  ho.verify_peer = o.verify_peer;
  ho.ca_file = o.ca_file;
  auto http = net::HttpClient::create(io, scheduler, ho);
  if (!http.ok()) return http.error();
  c->http_ = std::move(http.value());
  c->rest_ = std::make_unique<rest::RestClient>(*c->http_, rest::RestClientOptions{o.anon_key});
  c->auth_ = std::make_unique<rest::AuthClient>(*c->http_, rest::AuthClientOptions{o.anon_key});
  c->cache_ = std::make_unique<query::QueryClient>(scheduler, o.query);

  // One owner for what transport and socket must agree on: the message limit, and UTF-8 checked
  // once, by the socket's parser.
  SocketOptions so;
  so.url = o.url;
  so.api_key = o.anon_key;
  so.vsn = o.vsn;
  so.push_timeout = o.push_timeout;
  so.reconnect_backoff = o.reconnect_backoff;
  so.max_frame_bytes = std::min(o.max_frame_bytes, kMaxFrameBytesLimit);
  if (auto url = build_endpoint_url(so); !url.ok()) return url.error();
  BeastTransportOptions bo;
  bo.verify_peer = o.verify_peer;
  bo.ca_file = o.ca_file;
  bo.connect_timeout = o.connect_timeout;
  bo.max_frame_bytes = so.max_frame_bytes;
  bo.check_text_utf8 = false;
  std::unique_ptr<Transport> transport = make_beast_transport(io, bo);
  if (o.wrap_transport) transport = o.wrap_transport(std::move(transport));
  c->clock_ = std::make_unique<sync::MessageClock>(scheduler);
  c->socket_ = std::make_unique<RealtimeSocket>(
      scheduler, sync::instrument_transport(std::move(transport), *c->clock_), so);

  sync::RealtimeSyncOptions ro;
  ro.auth.refresh_margin = o.refresh_margin;
  ro.manager.binding = o.binding;
  // Sessions with a refresh token refresh through GoTrue's refresh-token grant; a bare access
  // token cannot be refreshed and is kept as it is.
  sync::Refresher refresher = [gotrue = auth_refresher(*c->auth_, scheduler),
                               fixed = sync::static_token_refresher()](const sync::Session& s,
                                                                       sync::RefreshDone done) {
    if (s.refresh_token.empty()) return fixed(s, std::move(done));
    gotrue(s, std::move(done));
  };
  c->sync_ = std::make_unique<sync::RealtimeSync>(
      scheduler, *c->socket_, *c->cache_, std::move(refresher), std::move(ro), c->clock_.get());
  c->subs_.push_back(bind_rest_token(c->sync_->auth(), *c->rest_));
  // Any answer over HTTP means the network is back: a refresh that failed meanwhile runs now.
  c->subs_.push_back(c->http_->on_response(
      [session = &c->sync_->auth()](int /*status*/) { session->network_answered(); }));
  for (auto& sub : c->sync_->register_diagnostics(c->diagnostics_))
    c->subs_.push_back(std::move(sub));
  Client* self = c.get();
  c->subs_.push_back(
      c->diagnostics_.add("socket", [self] { return self->socket_->diagnostics(); }));
  c->subs_.push_back(
      c->diagnostics_.add("cache", [self] { return json::value(self->cache_->snapshot()); }));
  return c;
}

Client::~Client() {
  *alive_ = false;
  // Listeners first, then each part after everything that uses it.
  subs_.clear();
  if (sync_) sync_->manager().leave();
  sync_.reset();
  socket_.reset();
  clock_.reset();
  cache_.reset();
  auth_.reset();
  rest_.reset();
  http_.reset();
}

void Client::sign_in_with_password(std::string email, std::string password,
                                   std::function<void(Result<void>)> done) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  auth_->sign_in_with_password(
      email, password,
      [this, alive = std::weak_ptr<bool>(alive_),
       done = std::move(done)](Result<rest::AuthTokens> r) {
        auto a = alive.lock();
        if (!a || !*a) return;
        if (!r.ok()) {
          if (done) done(make_error(r.error().code, "sign-in failed: " + r.error().message));
          return;
        }
        auto s = to_session(r.value(), scheduler_.wall_now());
        if (s.user_id.empty()) s.user_id = jwt_subject(s.access_token);
        sync_->auth().sign_in(std::move(s));
        if (done) done(Result<void>{});
      });
}

Result<void> Client::sign_in_with_token(std::string access_token, std::string refresh_token) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (access_token.empty()) return make_error(Errc::invalid_argument, "empty access token");
  sync::Session s;
  s.user_id = jwt_subject(access_token);
  // Without a refresh token the session is not refreshed: no expiry to act on.
  if (!refresh_token.empty()) s.expires_at = jwt_expiry(access_token);
  s.access_token = std::move(access_token);
  s.refresh_token = std::move(refresh_token);
  sync_->auth().sign_in(std::move(s));
  return {};
}

void Client::sign_out() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  sync_->auth().sign_out();
}

void Client::connect() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  socket_->connect();
}

void Client::watch(std::string scope) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  sync_->project().set(std::move(scope));
}

void Client::unwatch() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  sync_->project().set(std::nullopt);
}

bool Client::live() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return sync_->manager().subscribed();
}

query::QueryFn Client::select_fn(rest::PostgrestQuery q) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  // One request in flight per fetch: its id, and the cancellation listener that cancels it.
  struct Fetch {
    std::uint64_t request = 0;
    core::Subscription on_cancel;
  };
  return [rest = rest_.get(), q = std::move(q)](
             const query::QueryKey&, query::CancellationToken token, query::Completion done) {
    auto f = std::make_shared<Fetch>();
    f->on_cancel = token.on_cancel([rest, weak = std::weak_ptr<Fetch>(f)] {
      if (auto live = weak.lock(); live && live->request) rest->cancel(live->request);
    });
    f->request = rest->select(q, [f, done](Result<rest::RestResult> r) {
      f->on_cancel.remove();
      if (!r.ok()) return done.reject(r.error());
      done.resolve(std::move(r.value().data));
    });
  };
}

query::QueryObserver Client::observe(query::QueryKey key, rest::PostgrestQuery q) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  query::ObserverOptions o;
  o.key = std::move(key);
  o.query.query_fn = select_fn(std::move(q));
  return query::QueryObserver(*cache_, std::move(o));
}

}  // namespace rtsync::client
