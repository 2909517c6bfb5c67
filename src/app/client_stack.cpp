#include "client_stack.hpp"

#include <boost/asio/io_context.hpp>
#include <future>

#include "drop_transport.hpp"
#include "pane_queries.hpp"
#include "rtsync/client/domain/auth_refresher.hpp"
#include "rtsync/client/domain/fetchers.hpp"
#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::app {

namespace sync = client::sync;
namespace query = client::query;
namespace rest = client::rest;

struct ClientStack::Parts {
  core::Diagnostics diagnostics;
  std::unique_ptr<rest::HttpClient> http;
  std::unique_ptr<rest::RestClient> rest;
  std::unique_ptr<rest::AuthClient> auth;
  std::unique_ptr<query::QueryClient> cache;
  std::unique_ptr<sync::MessageClock> clock;
  std::shared_ptr<DropControl> drop;
  std::unique_ptr<client::RealtimeSocket> socket;
  // The coordination layer: session, freshness, manager, provider, polling, reconnects.
  std::unique_ptr<sync::RealtimeSync> sync;
  std::vector<core::Subscription> subs;

  explicit Parts(core::Scheduler& s) : diagnostics(s) {}

  ~Parts() {
    // Listeners first, then each service after everything that uses it.
    subs.clear();
    sync.reset();
    socket.reset();
    cache.reset();
    auth.reset();
    rest.reset();
    http.reset();
  }
};

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

ClientStack::ClientStack(core::EventLoop& loop, ClientOptions options)
    : loop_(loop), options_(std::move(options)) {}

core::Scheduler& ClientStack::scheduler() noexcept {
  return loop_.scheduler();
}
core::EventBus& ClientStack::bus() {
  return parts_->sync->bus();
}
query::QueryClient& ClientStack::cache() {
  return *parts_->cache;
}
sync::FreshnessTracker& ClientStack::freshness() {
  return parts_->sync->freshness();
}
sync::SmartPolling& ClientStack::polling() {
  return parts_->sync->polling();
}
sync::AuthSession& ClientStack::session() {
  return parts_->sync->auth();
}
client::RealtimeSocket& ClientStack::socket() {
  return *parts_->socket;
}
sync::RealtimeManager& ClientStack::manager() {
  return parts_->sync->manager();
}
sync::RealtimeProvider& ClientStack::provider() {
  return parts_->sync->provider();
}
sync::ReconnectScheduler& ClientStack::reconnect() {
  return parts_->sync->reconnect();
}
sync::ProjectSelection& ClientStack::selection() {
  return parts_->sync->project();
}
rest::RestClient& ClientStack::rest() {
  return *parts_->rest;
}
rest::AuthClient& ClientStack::auth() {
  return *parts_->auth;
}
core::Diagnostics& ClientStack::diagnostics() {
  return parts_->diagnostics;
}

Result<std::unique_ptr<ClientStack>> ClientStack::start(core::EventLoop& loop,
                                                        ClientOptions options,
                                                        core::Duration timeout) {
  if (options.url.empty()) return make_error(Errc::invalid_argument, "--url is required");
  if (options.anon_key.empty()) return make_error(Errc::invalid_argument, "--anon-key is required");
  const bool password = !options.email.empty() || !options.password.empty();
  if (password && (options.email.empty() || options.password.empty())) {
    return make_error(Errc::invalid_argument, "--email and --password go together");
  }
  if (!password && options.access_token.empty()) {
    return make_error(Errc::invalid_argument, "sign in with --email/--password or --token");
  }
  for (std::string* u : {&options.url, &options.rest_url})
    while (u->size() > 1 && u->back() == '/')
      u->pop_back();

  std::unique_ptr<ClientStack> stack(new ClientStack(loop, std::move(options)));
  ClientStack* self = stack.get();
  auto promise = std::make_shared<std::promise<Result<void>>>();
  auto future = promise->get_future();
  auto settled = std::make_shared<bool>(false);
  auto finish = [promise, settled](Result<void> r) {
    if (*settled) return;
    *settled = true;
    promise->set_value(std::move(r));
  };

  loop.post([self, finish] {
    core::Scheduler& sched = self->loop_.scheduler();
    const ClientOptions& o = self->options_;
    self->parts_ = std::make_unique<Parts>(sched);
    Parts& p = *self->parts_;

    rest::HttpClientOptions ho;
    ho.base_url = o.rest_url.empty() ? o.url : o.rest_url;
    ho.timeout = o.http_timeout;
    ho.verify_peer = o.verify_peer;
    auto http = rest::HttpClient::create(self->loop_.io_context(), sched, ho);
    if (!http.ok()) {
      finish(http.error());
      return;
    }
    p.http = std::move(http.value());
    p.rest = std::make_unique<rest::RestClient>(*p.http, rest::RestClientOptions{o.anon_key});
    p.auth = std::make_unique<rest::AuthClient>(*p.http, rest::AuthClientOptions{o.anon_key});

    // The original's QueryClient defaults (docs/original-app.md §7): 3 attempts unless
    // unauthorized, 1 s then 2 s, no refetch on window focus.
    query::ClientConfig qc;
    qc.retry = client::domain::default_retry();
    qc.retry_delay = [](std::uint32_t failures, const Error&) -> core::Duration {
      return std::min<core::Duration>(
          std::chrono::milliseconds(1000) * (1u << std::min(failures, 10u)),
          std::chrono::milliseconds(3000));
    };
    qc.refetch_on_window_focus = query::RefetchOn::never;
    if (o.coalesce_window) qc.coalesce_window = *o.coalesce_window;
    p.cache = std::make_unique<query::QueryClient>(sched, qc);

    p.clock = std::make_unique<sync::MessageClock>(sched);
    client::SocketOptions so;
    client::BeastTransportOptions bo;
    bo.verify_peer = o.verify_peer;
    bo.ca_file = o.ca_file;
    // As make_realtime_socket sets them: the socket checks text for UTF-8 as it parses it.
    bo.max_frame_bytes = so.max_frame_bytes;
    bo.check_text_utf8 = false;
    auto beast = client::make_beast_transport(self->loop_.io_context(), bo);
    auto droppable = std::make_unique<DroppableTransport>(sched, std::move(beast));
    p.drop = droppable->control();
    so.url = o.url;
    so.api_key = o.anon_key;
    so.vsn = o.vsn;
    if (auto url = client::build_endpoint_url(so); !url.ok()) {
      finish(url.error());
      return;
    }
    p.socket = std::make_unique<client::RealtimeSocket>(
        sched, sync::instrument_transport(std::move(droppable), *p.clock), so);

    // Password sessions and tokens given with a refresh token refresh through GoTrue's
    // refresh-token grant; a bare token cannot be refreshed.
    sync::Refresher refresher = (!o.email.empty() || !o.refresh_token.empty())
                                    ? client::domain::auth_refresher(*p.auth, sched)
                                    : sync::static_token_refresher();
    sync::RealtimeSyncOptions ro;
    ro.auth.refresh_margin = o.refresh_margin;
    p.sync = std::make_unique<sync::RealtimeSync>(sched, *p.socket, *p.cache, std::move(refresher),
                                                  std::move(ro), p.clock.get());
    p.subs.push_back(client::domain::bind_rest_token(p.sync->auth(), *p.rest));

    for (auto& sub : p.sync->register_diagnostics(p.diagnostics))
      p.subs.push_back(std::move(sub));
    p.subs.push_back(p.diagnostics.add("socket", [&p] { return p.socket->diagnostics(); }));
    p.subs.push_back(p.diagnostics.add("cache", [&p] { return json::value(p.cache->snapshot()); }));

    self->sign_in([self, finish](Result<void> r) {
      if (!r.ok()) {
        finish(r.error());
        return;
      }
      self->load_projects([self, finish](Result<void> r2) {
        if (!r2.ok()) {
          finish(r2.error());
          return;
        }
        self->parts_->socket->connect();
        int index = 0;
        if (!self->options_.project.empty()) {
          index = -1;
          for (std::size_t i = 0; i < self->projects_.size(); ++i)
            if (self->projects_[i].id == self->options_.project) index = static_cast<int>(i);
          if (index < 0) {
            finish(make_error(Errc::not_found, "project " + self->options_.project +
                                                   " is not among the user's projects"));
            return;
          }
        }
        self->select_project(index);
        finish(Result<void>{});
      });
    });
  });

  Result<void> outcome = make_error(Errc::timeout, "sign-in and project list took too long");
  if (future.wait_for(timeout) == std::future_status::ready) outcome = future.get();
  if (!outcome.ok()) {
    // Tear down on the loop; a late answer finds `settled` set.
    loop.run_sync([&] {
      *settled = true;
      stack->parts_.reset();
    });
    return outcome.error();
  }
  return stack;
}

ClientStack::~ClientStack() {
  if (!parts_) return;
  if (loop_.running_in_loop()) {
    parts_.reset();
    return;
  }
  loop_.run_sync([this] {
    if (parts_ && parts_->sync) parts_->sync->manager().leave();
    parts_.reset();
  });
}

void ClientStack::sign_in(std::function<void(Result<void>)> done) {
  Parts& p = *parts_;
  if (!options_.email.empty()) {
    p.auth->sign_in_with_password(
        options_.email, options_.password, [this, done](Result<rest::AuthTokens> r) {
          if (!r.ok()) {
            done(make_error(r.error().code, "sign-in failed: " + r.error().message));
            return;
          }
          auto s = client::domain::to_session(r.value(), loop_.scheduler().wall_now());
          if (s.user_id.empty()) s.user_id = jwt_subject(s.access_token);
          parts_->sync->auth().sign_in(std::move(s));
          done(Result<void>{});
        });
    return;
  }
  sync::Session s;
  s.access_token = options_.access_token;
  s.refresh_token = options_.refresh_token;
  // Without a refresh token the session is not refreshed: no expiry to act on.
  if (!options_.refresh_token.empty()) s.expires_at = jwt_expiry(options_.access_token);
  s.user_id = jwt_subject(options_.access_token);
  p.sync->auth().sign_in(std::move(s));
  done(Result<void>{});
}

void ClientStack::load_projects(std::function<void(Result<void>)> done) {
  query::FetchQueryOptions fo;
  fo.key = projects_key();
  fo.query.query_fn = projects_fetcher(*parts_->rest);
  fo.query.retry = query::Retry(2);
  fo.query.retry_delay = [](std::uint32_t, const Error&) -> core::Duration {
    return std::chrono::milliseconds(500);
  };
  parts_->cache->fetch_query(std::move(fo), [this, done](const Result<query::Data>& r) {
    if (!r.ok()) {
      done(make_error(r.error().code, "loading projects: " + r.error().message));
      return;
    }
    projects_.clear();
    if (const auto* rows = r.value().if_array()) {
      for (const auto& row : *rows) {
        ProjectInfo info;
        if (const auto* id = row.find("id"); id && id->is_string()) info.id = id->as_string();
        if (const auto* name = row.find("name"); name && name->is_string()) {
          info.name = name->as_string();
        }
        if (!info.id.empty()) projects_.push_back(std::move(info));
      }
    }
    if (projects_.empty()) {
      done(make_error(Errc::not_found, "the signed-in user has no project"));
      return;
    }
    done(Result<void>{});
  });
}

int ClientStack::selected_index() const {
  const auto& sel = parts_->sync->project().get();
  if (!sel) return -1;
  for (std::size_t i = 0; i < projects_.size(); ++i)
    if (projects_[i].id == *sel) return static_cast<int>(i);
  return -1;
}

void ClientStack::select_project(int index) {
  if (index < 0 || index >= static_cast<int>(projects_.size())) return;
  parts_->sync->project().set(projects_[static_cast<std::size_t>(index)].id);
}

bool ClientStack::drop_realtime() {
  return parts_->drop && parts_->drop->drop(options_.drop_for);
}

bool ClientStack::dropping() const {
  return parts_->drop && parts_->drop->dropping();
}

void ClientStack::refetch_all() {
  query::QueryFilters f;
  f.type = query::QueryType::active;
  parts_->cache->refetch_queries(f);
}

json::object ClientStack::snapshot() const {
  return parts_->diagnostics.snapshot();
}

}  // namespace rtsync::app
