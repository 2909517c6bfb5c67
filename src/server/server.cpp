#include "rtsync/server/server.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdlib>
#include <future>
#include <thread>

#include <unistd.h>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/net/http_client.hpp"
#include "rtsync/server/auth/jwks.hpp"
#include "rtsync/server/auth/jwks_source.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/cdc/change_stream.hpp"
#include "rtsync/server/cdc/message_retention.hpp"
#include "rtsync/server/cdc/pg_channel_authorizer.hpp"
#include "rtsync/server/cdc/pg_message_store.hpp"
#include "rtsync/server/cdc/pg_row_authorizer.hpp"
#include "rtsync/server/cdc/slot_epoch.hpp"
#include "rtsync/server/cluster/cluster_node.hpp"
#include "rtsync/server/gotrue/gotrue_service.hpp"
#include "rtsync/server/http/http_server.hpp"
#include "rtsync/server/names.hpp"
#include "rtsync/server/pg/async_connection.hpp"
#include "rtsync/server/pg/bootstrap.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/realtime/hub.hpp"
#include "rtsync/server/rest/rest_service.hpp"

namespace rtsync::server {

Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(Errc::invalid_argument, "listen address must be host:port");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(Errc::invalid_argument, "listen address must be host:port");
    }
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) host = "0.0.0.0";
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535) {
    return make_error(Errc::invalid_argument,
                      "bad port in listen address '" + std::string(text) + "'");
  }
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

Result<void> validate_options(const ServerOptions& options) {
  if (options.jwt_secret.empty()) {
    return make_error(Errc::invalid_argument, "a JWT secret is required (--jwt-secret)");
  }
  if (options.jwt_secret.size() < kMinJwtSecretBytes) {
    return make_error(Errc::invalid_argument, "the JWT secret (--jwt-secret) must be at least " +
                                                  std::to_string(kMinJwtSecretBytes) +
                                                  " bytes long, got " +
                                                  std::to_string(options.jwt_secret.size()));
  }
  if (!options.secret_key.empty() && options.secret_key.size() < kMinJwtSecretBytes) {
    return make_error(Errc::invalid_argument,
                      "the secret API key (--secret-key) must be at least " +
                          std::to_string(kMinJwtSecretBytes) + " bytes long");
  }
  if (!options.secret_key.empty() && options.secret_key == options.publishable_key) {
    return make_error(Errc::invalid_argument,
                      "the publishable and the secret API key (--publishable-key, --secret-key) "
                      "must differ");
  }
  if (options.db.empty()) {
    return make_error(Errc::invalid_argument, "a database is required (--db)");
  }
  if (auto l = parse_listen(options.listen); !l.ok()) return l.error();
  if (auto v = pg::validate_slot_name(options.slot); !v.ok()) return v.error();
  if (!options.cluster.empty()) {
    if (auto r = cluster::parse_redis_url(options.cluster); !r.ok()) {
      return make_error(Errc::invalid_argument, "--cluster: " + r.error().message);
    }
  }
  return {};
}

namespace {

// Primary keys of tables, for old records trimmed to their key (see realtime::RelationInfo).
class PgRelationInfo final : public realtime::RelationInfoSource {
 public:
  PgRelationInfo(boost::asio::io_context& io, std::string conninfo)
      : conn_(io, std::move(conninfo)) {}

  void lookup(std::vector<std::uint32_t> oids, std::function<void(Result<Infos>)> done) override {
    std::string array = "{";
    for (std::size_t i = 0; i < oids.size(); ++i) {
      if (i) array += ',';
      array += std::to_string(oids[i]);
    }
    array += '}';
    conn_.query(R"sql(
      SELECT c.oid::int8,
             coalesce((SELECT json_agg(a.attname ORDER BY x.ord)
                       FROM pg_catalog.pg_index i
                       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS x(attnum, ord)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.attnum
                       WHERE i.indrelid = c.oid AND i.indisprimary), '[]')::text
      FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::oid[]))sql",
                {array}, [done = std::move(done)](Result<pg::PgResult> r) {
                  if (!r.ok()) return done(r.error());
                  Infos out;
                  const auto& res = r.value();
                  for (int row = 0; row < res.rows(); ++row) {
                    auto oid =
                        static_cast<std::uint32_t>(std::stoull(std::string(res.value(row, 0))));
                    realtime::RelationInfo info;
                    auto keys = core::parse_json(res.value(row, 1));
                    if (keys.ok() && keys.value().is_array()) {
                      for (const auto& k : keys.value().get_array()) {
                        if (k.is_string()) info.primary_key.emplace_back(k.get_string());
                      }
                    }
                    out.emplace(oid, std::move(info));
                  }
                  done(std::move(out));
                });
  }

 private:
  pg::AsyncConnection conn_;
};

std::string default_node_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return std::string(host[0] ? host : "node") + "-" + std::to_string(getpid());
}

}  // namespace

struct Server::Impl {
  // Destruction order matters: the loop (and the handlers it still holds) goes first, while the
  // hub the sessions point to is still alive. See ~Impl.
  std::unique_ptr<auth::JwtVerifier> verifier;
  std::shared_ptr<auth::KeyRing> keys;  // null: HS256 only
  std::shared_ptr<const auth::EcSigningKey> signing_key;
  std::unique_ptr<auth::JwksSource> jwks;      // on the loop
  std::unique_ptr<net::HttpClient> jwks_http;  // reads an http(s) --jwks; on the loop
  std::unique_ptr<core::EventLoop> loop;
  std::unique_ptr<realtime::Hub> hub;
  std::unique_ptr<cdc::PgRowAuthorizer> authorizer;
  std::unique_ptr<cdc::PgChannelAuthorizer> channel_authorizer;
  std::unique_ptr<PgRelationInfo> relation_info;
  std::unique_ptr<cdc::ChangeStream> stream;
  std::unique_ptr<cluster::ClusterNode> node;  // a cluster's node; null for a single node
  std::unique_ptr<cdc::PgMessageStore> messages;
  std::unique_ptr<cdc::MessageRetention> retention;
  std::shared_ptr<pg::DbPool> rest_pool;
  std::unique_ptr<http::HttpServer> http;
  // The websocket I/O loops beyond `loop` (ServerOptions::threads − 1). Stopped before `http` is
  // destroyed, destroyed after it.
  std::vector<std::unique_ptr<core::EventLoop>> io_loops;
  void stop_io_loops() {
    for (auto& l : io_loops) {
      l->stop();
      l->join();
    }
  }
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> listening{false};
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};

  ~Impl() {
    stop_io_loops();
    if (loop) {
      loop->stop();
      loop->join();
    }
    loop.reset();
    hub.reset();
  }
};

Server::Server(ServerOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

Server::~Server() {
  stop();
}

core::EventLoop& Server::loop() {
  return *impl_->loop;
}

Result<void> Server::start() {
  if (impl_->started) return make_error(Errc::invalid_argument, "server already started");
  if (auto v = validate_options(options_); !v.ok()) return v.error();
  auto listen = parse_listen(options_.listen);
  if (!listen.ok()) return listen.error();

  auto logger = log::get(loggers::kServer);
  bool created_slot = false;
  if (options_.bootstrap) {
    auto conn = pg::Connection::open(options_.db);
    if (!conn.ok()) return make_error(Errc::io, "database: " + conn.error().message);
    pg::BootstrapOptions bo;
    bo.slot = options_.slot;
    bo.publication = options_.publication;
    if (!options_.messages_publication.empty()) {
      bo.messages_publication = options_.messages_publication;
    }
    auto report = pg::bootstrap(conn.value(), bo);
    if (!report.ok()) return make_error(Errc::io, "bootstrap: " + report.error().message);
    created_slot = report.value().created_slot;
    logger->info("bootstrap done (roles {}, functions {}, publication {}, slot {})",
                 report.value().created_roles ? "created" : "present",
                 report.value().created_functions ? "created" : "present",
                 report.value().created_publication ? "created" : "present",
                 report.value().created_slot ? "created" : "present");
  }

  // Resumable change streams (docs/resume.md): the slot's epoch and where its stream starts.
  // Without them the server runs as before, minus the rtsync fields (every rejoin is a gap).
  std::optional<cdc::SlotEpoch> epoch;
  if (auto conn = pg::Connection::open(options_.db); conn.ok()) {
    auto e = cdc::read_slot_epoch(conn.value(), options_.slot, created_slot);
    if (e.ok()) {
      epoch = std::move(e.value());
      logger->info("slot {} epoch {}: decoding from {}, live from {}", options_.slot, epoch->epoch,
                   format_lsn(epoch->start_lsn), format_lsn(epoch->live_from));
    } else {
      logger->warn("resumable change streams off: reading the slot's epoch: {}", e.error().message);
    }
  } else {
    logger->warn("resumable change streams off: {}", conn.error().message);
  }

  auth::JwkSet own_keys;
  if (!options_.auth_signing_key_pem.empty()) {
    auto key = auth::EcSigningKey::from_pem(options_.auth_signing_key_pem);
    if (!key.ok()) {
      return make_error(Errc::invalid_argument, "--auth-signing-key: " + key.error().message);
    }
    impl_->signing_key = std::make_shared<const auth::EcSigningKey>(std::move(key.value()));
    own_keys = auth::JwkSet::of({impl_->signing_key->public_key()});
  }
  if (!options_.jwks.empty() || impl_->signing_key) {
    impl_->keys = std::make_shared<auth::KeyRing>();
    impl_->keys->replace(own_keys);
  }
  auto make_verifier = [&] {
    auth::JwtVerifier v(options_.jwt_secret, impl_->keys, options_.jwt_leeway);
    v.set_api_keys(options_.publishable_key, options_.secret_key);
    return v;
  };

  impl_->started = true;
  impl_->verifier = std::make_unique<auth::JwtVerifier>(make_verifier());
  impl_->loop = std::make_unique<core::EventLoop>();
  impl_->loop->start();
  std::size_t threads = options_.threads;
  if (const char* t = std::getenv("RTSYNC_SERVER_THREADS"); threads == 0 && t && *t) {
    threads = std::strtoul(t, nullptr, 10);
  }
  threads = std::max<std::size_t>(1, threads);
  for (std::size_t i = 1; i < threads; ++i) {
    impl_->io_loops.push_back(std::make_unique<core::EventLoop>());
    impl_->io_loops.back()->start();
  }
  logger->info("{} loop thread(s): the realtime loop{}", threads,
               threads > 1 ? fmt::format(" and {} websocket I/O loop(s)", threads - 1) : "");

  Result<void> result;
  Impl& s = *impl_;
  // The first read of the JWKS (a URL is read asynchronously, on the loop): start() fails when it
  // does, so a server never starts with keys it could not read.
  auto first_load = std::make_shared<std::promise<Result<void>>>();
  auto first_done = std::make_shared<bool>(false);  // on the loop
  auto first_read = first_load->get_future();
  impl_->loop->run_sync([&] {
    auto& io = s.loop->io_context();
    auto& sched = s.loop->scheduler();
    cdc::PgRowAuthorizerOptions ao;
    ao.conninfo = options_.db;
    // The hub keeps many transactions in flight: batch the ones queued behind a busy pool, one
    // batch at a time unless a whole batch waits (BENCHMARKS.md, "one batch at a time").
    ao.max_batch_transactions = 64;
    ao.parallel_batch_from = ao.max_batch_transactions;
    s.authorizer = std::make_unique<cdc::PgRowAuthorizer>(io, sched, ao);
    auto limits = options_.limits;
    limits.resume_window = options_.resume_window;
    limits.resume_window_bytes = options_.resume_window_bytes;
    s.hub = std::make_unique<realtime::Hub>(sched, *s.verifier, s.authorizer.get(), limits);
    if (epoch) {
      s.hub->set_epoch(epoch->epoch, realtime::StreamPosition{epoch->start_lsn, 0},
                       epoch->live_from);
    }
    s.relation_info = std::make_unique<PgRelationInfo>(io, options_.db);
    s.hub->set_relation_info(s.relation_info.get());
    cdc::PgChannelAuthorizerOptions co;
    co.conninfo = options_.db;
    s.channel_authorizer = std::make_unique<cdc::PgChannelAuthorizer>(io, sched, co);
    s.hub->set_channel_authorizer(s.channel_authorizer.get());
    // Broadcast from Database: replays read realtime.messages, retention deletes old rows, both
    // on one connection of their own.
    s.messages = std::make_unique<cdc::PgMessageStore>(io, sched, options_.db);
    s.hub->set_message_store(s.messages.get());
    cdc::MessageRetentionOptions ro;
    ro.retention = options_.message_retention;
    ro.interval =
        std::max<core::Duration>(options_.message_retention_interval, std::chrono::seconds(1));
    s.retention = std::make_unique<cdc::MessageRetention>(sched, *s.messages, ro);

    auto& metrics = s.hub->metrics();
    metrics.gauges.push_back(
        {"rtsync_authorization_queries_total",
         "Row visibility queries (one per auth class per table per transaction).", "counter",
         [&s] { return double(s.authorizer->queries()); }});
    metrics.gauges.push_back(
        {"rtsync_channel_auth_queries_total",
         "Private-channel policy probes run on PostgreSQL (identical checks in flight share one).",
         "counter",
         [&s] { return s.channel_authorizer ? double(s.channel_authorizer->probes()) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_replication_lag_bytes",
         "WAL bytes between the server's end and the confirmed position.", "gauge",
         [&s] { return s.stream ? double(s.stream->metrics().lag_bytes) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_replication_confirmed_lsn", "Last LSN handed to the sessions and confirmed.",
         "gauge", [&s] { return s.stream ? double(s.stream->metrics().confirmed_lsn) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_stream_held_bytes",
         "Change-message bytes the change stream holds for delivery (bounded by "
         "stream_memory_bytes).",
         "gauge", [&s] { return s.stream ? double(s.stream->metrics().held_bytes) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_stream_held_bytes_peak", "The most rtsync_stream_held_bytes has been.", "gauge",
         [&s] { return s.stream ? double(s.stream->metrics().peak_held_bytes) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_stream_changes_decoded_total", "Row changes decoded by the change stream.",
         "counter", [&s] { return s.stream ? double(s.stream->metrics().changes_decoded) : 0.0; }});

    metrics.gauges.push_back({"rtsync_retention_deleted_total",
                              "realtime.messages rows deleted by retention.", "counter",
                              [&s] { return s.retention ? double(s.retention->deleted()) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_retention_failures_total", "Retention runs that ended in a database error.",
         "counter", [&s] { return s.retention ? double(s.retention->failures()) : 0.0; }});
    metrics.gauges.push_back(
        {"rtsync_rest_db_retries_total",
         "REST/auth database batches run again on a fresh connection after a connection failure.",
         "counter", [&s] { return s.rest_pool ? double(s.rest_pool->retries()) : 0.0; }});

    if (!options_.jwks.empty()) {
      auth::JwksSourceOptions jo{options_.jwks, options_.jwks_reload_interval, own_keys};
      if (options_.jwks.rfind("http://", 0) == 0 || options_.jwks.rfind("https://", 0) == 0) {
        net::HttpClientOptions ho;
        ho.base_url = options_.jwks;
        ho.max_connections = 1;
        ho.max_response_bytes = auth::kMaxJwksBytes + 1;  // JwkSet::parse names the excess
        ho.user_agent = "rtsync-server";
        auto http = net::HttpClient::create(io, sched, ho);
        if (!http.ok()) {
          result = make_error(http.error().code, "--jwks: " + http.error().message);
          return;
        }
        s.jwks_http = std::move(http.value());
        jo.fetch = [http = s.jwks_http.get()](const std::string& url,
                                              std::function<void(Result<std::string>)> done) {
          http->request("GET", "", {{"Accept", "application/json"}}, "",
                        [done = std::move(done), url](Result<net::HttpResult> r) {
                          if (!r.ok()) {
                            return done(make_error(r.error().code, url + ": " + r.error().message));
                          }
                          if (r->status < 200 || r->status >= 300) {
                            return done(make_error(
                                Errc::remote, url + " answered HTTP " + std::to_string(r->status)));
                          }
                          done(std::move(r->body));
                        });
        };
      }
      jo.on_load = [first_load, first_done](const Result<void>& r) {
        if (!std::exchange(*first_done, true)) first_load->set_value(r);
      };
      s.jwks = std::make_unique<auth::JwksSource>(sched, s.keys, std::move(jo));
      if (auto r = s.jwks->start(); !r.ok()) {
        result = make_error(r.error().code, "--jwks: " + r.error().message);
        return;
      }
      metrics.gauges.push_back({"rtsync_jwks_loads_total", "JWKS key sets read and installed.",
                                "counter",
                                [&s] { return s.jwks ? double(s.jwks->loads()) : 0.0; }});
      metrics.gauges.push_back({"rtsync_jwks_reload_failures_total",
                                "JWKS reloads that failed and kept the previous keys.", "counter",
                                [&s] { return s.jwks ? double(s.jwks->failures()) : 0.0; }});
    }

    http::HttpHooks hooks;
    hooks.connection_limits.max_connections = options_.max_connections;
    hooks.connection_limits.max_connections_per_address = options_.max_connections_per_address;
    hooks.healthy = [&s] { return s.listening.load() && s.hub->stream_running(); };
    if (!options_.cluster.empty()) {
      hooks.health_fields = [&s](json::object& body) {
        if (!s.node) return;
        body["node"] = s.node->node_id();
        body["role"] = s.node->role_name();
        body["redis"] = s.node->redis_up() ? "up" : "down";
      };
    }
    if (options_.rest) {
      s.rest_pool = std::make_shared<pg::DbPool>(
          io, options_.db, std::max<std::size_t>(1, options_.rest_connections));
      hooks.services.push_back(
          std::make_shared<rest::RestService>(s.rest_pool, make_verifier(), sched));
      gotrue::GoTrueOptions go;
      go.jwt_secret = options_.jwt_secret;
      go.signing_key = s.signing_key;
      go.keys = s.keys;
      go.access_token_ttl = options_.access_token_ttl;
      hooks.services.push_back(std::make_shared<gotrue::GoTrueService>(s.rest_pool, sched, go));
    }
    for (auto& l : s.io_loops)
      hooks.ws_loops.push_back(&l->io_context());
    s.http = std::make_unique<http::HttpServer>(io, *s.hub, hooks);
    auto bound = s.http->listen(listen.value().first, listen.value().second);
    if (!bound.ok()) {
      result = bound.error();
      return;
    }
    s.port = bound.value();
    s.listening = true;

    cdc::ChangeStreamOptions so;
    so.conninfo = options_.db;
    so.slot = options_.slot;
    so.publication = options_.publication;
    so.messages_publication = options_.messages_publication;
    so.max_held_bytes = options_.stream_memory_bytes;
    s.authorizer->start();
    // The channel authorizer connects at its first check: projects without private channels
    // never hold its connections.
    if (options_.cluster.empty()) {
      s.stream = std::make_unique<cdc::ChangeStream>(io, sched, *s.hub, so);
      s.stream->start();
    } else {
      cluster::ClusterOptions co;
      co.redis = cluster::parse_redis_url(options_.cluster).value();
      co.node_id = options_.node_id.empty() ? default_node_id() : options_.node_id;
      co.slot = options_.slot;
      co.conninfo = options_.db;
      // The stream exists only while this node leads; its sink is the node (which appends each
      // transaction to Redis and hands it to the hub).
      s.node = std::make_unique<cluster::ClusterNode>(
          io, sched, *s.hub, co,
          [&s, io = &io, sched = &sched, so] {
            s.stream = std::make_unique<cdc::ChangeStream>(*io, *sched, *s.node, so);
            s.stream->start();
          },
          [&s] {
            if (!s.stream) return;
            s.stream->stop();
            s.stream.reset();
          });
      s.hub->set_cluster_bus(s.node.get());
      s.node->start(epoch ? epoch->start_lsn : 0);
      auto gauge = [&](std::string name, std::string help, std::string type, auto get) {
        metrics.gauges.push_back({std::move(name), std::move(help), std::move(type),
                                  [&s, get] { return s.node ? double(get(*s.node)) : 0.0; }});
      };
      using Node = cluster::ClusterNode;
      gauge("rtsync_cluster_leader", "1 while this node streams the slot, else 0.", "gauge",
            [](const Node& n) { return n.role() == Node::Role::leader ? 1 : 0; });
      gauge("rtsync_cluster_redis_up", "1 while every Redis link of this node is up.", "gauge",
            [](const Node& n) { return n.redis_up() ? 1 : 0; });
      gauge("rtsync_cluster_redis_bytes_total",
            "Bytes this node sent to and read from Redis (commands and replies, no Pub/Sub).",
            "counter", [](const Node& n) { return n.redis_bytes(); });
      gauge("rtsync_cluster_appended_total", "Change-stream entries Redis acknowledged (leader).",
            "counter", [](const Node& n) { return n.metrics().appended; });
      gauge("rtsync_cluster_append_dropped_total",
            "Entries a leader dropped while Redis was away (the other nodes were told a gap).",
            "counter", [](const Node& n) { return n.metrics().append_dropped; });
      gauge("rtsync_cluster_read_total", "Change-stream entries read (standby).", "counter",
            [](const Node& n) { return n.metrics().read; });
      gauge("rtsync_cluster_gaps_total", "Holes found in the cluster's change stream.", "counter",
            [](const Node& n) { return n.metrics().gaps; });
      gauge("rtsync_cluster_broadcasts_in_total", "Broadcasts received from other nodes.",
            "counter", [](const Node& n) { return n.metrics().broadcasts_in; });
      gauge("rtsync_cluster_presence_in_total", "Presence messages received from other nodes.",
            "counter", [](const Node& n) { return n.metrics().presence_in; });
      gauge("rtsync_cluster_nodes_expired_total",
            "Other nodes whose liveness key expired (their presences left).", "counter",
            [](const Node& n) { return n.metrics().nodes_expired; });
    }
    if (!options_.messages_publication.empty()) s.retention->start();
  });
  if (result.ok() && !options_.jwks.empty()) {
    // HttpClient's own deadline (10 s) ends the read well before this.
    if (first_read.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      result = make_error(Errc::timeout, "--jwks: no answer from " + options_.jwks);
    } else if (auto r = first_read.get(); !r.ok()) {
      result = make_error(r.error().code, "--jwks: " + r.error().message);
    }
  }
  if (!result.ok()) {
    stop();
    return result;
  }
  return {};
}

Result<void> Server::reload_keys() {
  Impl& s = *impl_;
  if (!s.started || s.stopped || !s.loop) {
    return make_error(Errc::invalid_argument, "the server is not running");
  }
  Result<void> result = make_error(Errc::invalid_argument, "no JWKS is configured (--jwks)");
  s.loop->run_sync([&] {
    if (s.jwks) result = s.jwks->reload();
  });
  return result;
}

Result<std::size_t> Server::run_message_retention() {
  Impl& s = *impl_;
  if (!s.started || s.stopped || !s.loop) {
    return make_error(Errc::invalid_argument, "the server is not running");
  }
  if (options_.messages_publication.empty()) {
    return make_error(Errc::invalid_argument, "Broadcast from Database is off");
  }
  // The run finishes on the loop later: wait for it here, off the loop.
  auto result = std::make_shared<std::promise<Result<std::size_t>>>();
  auto answer = result->get_future();
  s.loop->run_sync([&] {
    if (!s.retention) {
      result->set_value(make_error(Errc::invalid_argument, "the server is stopping"));
      return;
    }
    s.retention->run_now([result](Result<std::size_t> r) { result->set_value(std::move(r)); });
  });
  return answer.get();
}

void Server::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped || !s.loop) return;
  s.stopped = true;
  auto logger = log::get(loggers::kServer);
  // 1. Stop accepting; websockets get 1001 (going away).
  s.loop->run_sync([&] {
    s.listening = false;
    if (s.http) s.http->shutdown();
  });
  // 2. Let the close handshakes finish (bounded), then cut whatever is left.
  auto sessions = [&] {
    std::size_t n = 0;
    s.loop->run_sync([&] { n = s.http ? s.http->sessions() : 0; });
    return n;
  };
  for (int i = 0; i < 200 && sessions() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.loop->run_sync([&] {
    if (s.http) s.http->abort();
  });
  for (int i = 0; i < 100 && sessions() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The websocket loops stop before `http` goes: nothing of theirs runs on what it owns after.
  s.stop_io_loops();
  // 3. The stream sends its last status update (the confirmed slot position) and closes; the
  //    PostgreSQL-side parts are destroyed on the loop, as their contracts require.
  s.loop->run_sync([&] {
    if (s.node) {
      s.hub->set_cluster_bus(nullptr);
      s.node->stop();
    }
    if (s.stream) s.stream->stop();
    s.stream.reset();
    s.node.reset();
    s.retention.reset();
    s.hub->set_message_store(nullptr);
    s.messages.reset();
    s.hub->set_relation_info(nullptr);
    s.relation_info.reset();
    s.hub->set_channel_authorizer(nullptr);
    s.channel_authorizer.reset();
    s.authorizer.reset();
    s.http.reset();
    s.rest_pool.reset();
    s.jwks.reset();
    s.jwks_http.reset();
  });
  s.io_loops.clear();
  s.loop->stop();
  s.loop->join();
  logger->info("server stopped");
}

std::uint16_t Server::port() const noexcept {
  return impl_->port.load();
}

std::string Server::http_url() const {
  auto l = parse_listen(options_.listen);
  std::string host = l.ok() ? l.value().first : "127.0.0.1";
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port());
}

std::string Server::ws_url() const {
  auto u = http_url();
  return "ws" + u.substr(4) + "/realtime/v1/websocket";
}

bool Server::healthy() const {
  const Impl& s = *impl_;
  if (!s.started || s.stopped || !s.loop || !s.listening) return false;
  bool ok = false;
  s.loop->run_sync([&] { ok = s.hub && s.hub->stream_running(); });
  return ok;
}

bool Server::wait_healthy(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (healthy()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return healthy();
}

std::string Server::metrics_text() const {
  const Impl& s = *impl_;
  if (!s.loop || s.stopped) return {};
  std::string out;
  s.loop->run_sync([&] { out = s.hub ? s.hub->metrics().render() : std::string(); });
  return out;
}

}  // namespace rtsync::server
