#include "chaos_client.hpp"

#include <future>

#include "rtsync/client/client.hpp"
#include "rtsync/client/domain/task_binding.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/client/sync/realtime_provider.hpp"
#include "rtsync/core/json.hpp"

namespace rtsync::chaos {

namespace {

std::string string_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// params.chaos_seq of a record (jsonb arrives as an object; a string is parsed), or -1.
std::int64_t seq_of(const json::value* params) {
  if (!params) return -1;
  json::value parsed;
  const json::value* p = params;
  if (params->is_string()) {
    auto r = core::parse_json(params->as_string());
    if (!r.ok()) return -1;
    parsed = std::move(r.value());
    p = &parsed;
  }
  const auto* o = p->if_object();
  const auto* s = o ? o->if_contains("chaos_seq") : nullptr;
  if (!s) return -1;
  if (s->is_int64()) return s->as_int64();
  if (s->is_uint64()) return static_cast<std::int64_t>(s->as_uint64());
  if (s->is_double()) return static_cast<std::int64_t>(s->as_double());
  if (s->is_string()) {
    try {
      return std::stoll(std::string(s->as_string()));
    } catch (...) {
      return -1;
    }
  }
  return -1;
}

}  // namespace

std::optional<Rows> rows_of(const json::value& data) {
  const auto* a = data.if_array();
  if (!a) return std::nullopt;
  Rows rows;
  for (const auto& item : *a) {
    const auto* o = item.if_object();
    if (!o) return std::nullopt;
    rows[string_of(*o, "id")] =
        RowVersion{string_of(*o, "project_id"), seq_of(o->if_contains("params"))};
  }
  return rows;
}

struct ChaosClient::State {
  std::unique_ptr<client::Client> client;
  std::unique_ptr<client::query::QueryObserver> observer;
  core::Subscription observer_sub;
  std::vector<core::Subscription> subs;
  client::query::QueryKey key;
  ClientHistory history;
  std::uint64_t gap_fills_seen = 0;
  std::int64_t last_replayed = -1;  // of the manager's last `subscribed` phase
  bool subscribed = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  void on_change(const json::value& detail) {
    const auto* o = detail.if_object();
    if (!o || !o->contains("eventType")) return;  // a broadcast, not a change
    Delivery d;
    d.at = Clock::now();
    const auto type = string_of(*o, "eventType");
    d.op = type == "INSERT" ? Op::insert : type == "UPDATE" ? Op::update : Op::remove;
    const auto* rec = o->if_contains(d.op == Op::remove ? "old" : "new");
    if (rec && rec->is_object()) {
      d.row_id = string_of(rec->as_object(), "id");
      d.project_id = string_of(rec->as_object(), "project_id");
      d.seq = seq_of(rec->as_object().if_contains("params"));
    }
    history.deliveries.push_back(std::move(d));
  }

  // The provider publishes its state before it runs the gap fill, so a rejoin is stamped before
  // the refetch it causes starts.
  void on_provider(const client::sync::ProviderState& state) {
    const auto now = Clock::now();
    if (!state.is_connected) {
      if (subscribed) history.downs.push_back(now);
      subscribed = false;
      return;
    }
    if (subscribed) return;
    subscribed = true;
    history.rejoins.push_back(Rejoin{now, true});
    // A told gap is a rejoin after which the provider ran its gap fill: read its counter once
    // the provider is done with this phase.
    const std::size_t index = history.rejoins.size() - 1;
    client->scheduler().post([this, alive = alive, index] {
      if (!*alive) return;
      const auto fills = client->sync().provider().stats().gap_fills;
      history.rejoins[index].gap = fills > gap_fills_seen;
      history.rejoins[index].replayed = last_replayed;
      gap_fills_seen = fills;
    });
  }

  client::query::QueryFn query_fn(client::rest::PostgrestQuery q) {
    struct Pending {
      std::uint64_t request = 0;
      bool cancelled = false;
      core::Subscription on_cancel;
    };
    return [this, alive = alive, q = std::move(q)](const client::query::QueryKey&,
                                                   client::query::CancellationToken token,
                                                   client::query::Completion done) {
      const std::size_t index = history.fetches.size();
      history.fetches.push_back(Fetch{Clock::now(), {}, false, {}});
      auto& rest = client->rest();
      auto p = std::make_shared<Pending>();
      p->on_cancel = token.on_cancel([&rest, weak = std::weak_ptr<Pending>(p)] {
        if (auto live = weak.lock()) {
          live->cancelled = true;
          if (live->request) rest.cancel(live->request);
        }
      });
      p->request =
          rest.select(q, [this, alive, index, p, done](Result<client::rest::RestResult> r) {
            p->on_cancel.remove();
            if (!*alive) return;
            auto& f = history.fetches[index];
            f.finished = Clock::now();
            if (!r.ok()) return done.reject(r.error());
            if (auto rows = rows_of(r.value().data); rows && !p->cancelled) {
              f.ok = true;
              f.rows = std::move(*rows);
            }
            done.resolve(std::move(r.value().data));
          });
    };
  }

  std::optional<Rows> cache() const {
    auto data = client->queries().get_query_data(key);
    if (!data) return std::nullopt;
    return rows_of(data->to_json());
  }
};

ChaosClient::ChaosClient(core::EventLoop& loop, ChaosClientOptions options)
    : loop_(loop), options_(std::move(options)), state_(std::make_unique<State>()) {}

Result<std::unique_ptr<ChaosClient>> ChaosClient::start(core::EventLoop& loop,
                                                        ChaosClientOptions options,
                                                        std::chrono::seconds timeout) {
  std::unique_ptr<ChaosClient> c(new ChaosClient(loop, std::move(options)));
  auto signed_in = std::make_shared<std::promise<Result<void>>>();
  auto future = signed_in->get_future();
  State* st = c->state_.get();
  const ChaosClientOptions& o = c->options_;
  Result<void> created;
  loop.run_sync([&] {
    client::ClientOptions co;
    co.url = o.url;
    co.anon_key = o.anon_key;
    co.binding = client::domain::task_binding();
    co.refresh_margin = o.refresh_margin;
    auto made = client::Client::create(loop, co);
    if (!made.ok()) {
      created = made.error();
      return;
    }
    st->client = std::move(made.value());
    st->history.user_id = o.user_id;
    st->history.project_id = o.project;
    for (auto ev : {client::domain::kTaskNewEvent, client::domain::kTaskUpdateEvent})
      st->subs.push_back(
          st->client->bus().subscribe(ev, [st](const json::value& d) { st->on_change(d); }));
    st->subs.push_back(st->client->sync().provider().subscribe(
        [st](const client::sync::ProviderState& ps) { st->on_provider(ps); }));
    // What a resumed join announced, for telling a replay cut short from one that skipped.
    st->subs.push_back(
        st->client->sync().manager().on_phase([st](const client::sync::ChannelPhaseChange& change) {
          if (change.phase != client::sync::ChannelPhase::subscribed) return;
          const bool resumed =
              change.outcome && change.outcome->kind == client::JoinOutcomeKind::resumed;
          st->last_replayed = resumed ? change.outcome->replayed : -1;
        }));
    st->key = client::query::QueryKey{"tasks", "chaos", o.project};
    st->client->sign_in_with_password(
        o.email, o.password,
        [st, signed_in, alive = st->alive, project = o.project](Result<void> r) {
          if (!*alive) return;
          if (r.ok()) {
            client::rest::PostgrestQuery q("tasks");
            q.select("id,project_id,params").eq("project_id", project).order("id");
            client::query::ObserverOptions oo;
            oo.key = st->key;
            oo.query.query_fn = st->query_fn(std::move(q));
            st->observer =
                std::make_unique<client::query::QueryObserver>(st->client->queries(), oo);
            st->observer_sub = st->observer->subscribe([](const client::query::QueryResult&) {});
            st->client->connect();
            st->client->watch(project);
          }
          signed_in->set_value(std::move(r));
        });
  });
  if (!created.ok()) return created.error();
  if (future.wait_for(timeout) != std::future_status::ready)
    return make_error(Errc::timeout, "sign-in of " + c->options_.email + " did not finish");
  if (auto r = future.get(); !r.ok()) return r.error();
  return c;
}

ChaosClient::~ChaosClient() {
  loop_.run_sync([this] {
    *state_->alive = false;
    state_->subs.clear();
    state_->observer_sub.remove();
    state_->observer.reset();
    state_->client.reset();
  });
}

bool ChaosClient::live() {
  bool out = false;
  loop_.run_sync([&] { out = state_->subscribed && state_->cache().has_value(); });
  return out;
}

ClientHistory ChaosClient::history() {
  ClientHistory h;
  loop_.run_sync([&] {
    h = state_->history;
    h.final_cache = state_->cache();
  });
  return h;
}

std::optional<Rows> ChaosClient::cache() {
  std::optional<Rows> out;
  loop_.run_sync([&] { out = state_->cache(); });
  return out;
}

std::string ChaosClient::snapshot() {
  std::string out;
  loop_.run_sync([&] { out = json::serialize(state_->client->snapshot()); });
  return out;
}

void ChaosClient::with_client(const std::function<void(client::Client&)>& fn) {
  loop_.run_sync([&] { fn(*state_->client); });
}

}  // namespace rtsync::chaos
