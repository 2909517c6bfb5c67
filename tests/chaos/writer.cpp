#include "writer.hpp"

#include <optional>
#include <random>

#include "rtsync/server/pg/connection.hpp"

namespace rtsync::chaos {

namespace {

constexpr const char* kStatuses[] = {"Queued", "In Progress", "Complete", "Failed", "Cancelled"};

}  // namespace

ChaosWriter::ChaosWriter(WriterOptions options) : options_(std::move(options)) {}

ChaosWriter::~ChaosWriter() {
  stop();
}

void ChaosWriter::start() {
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void ChaosWriter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<WriterTxn> ChaosWriter::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

void ChaosWriter::run() {
  std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ULL + 17);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> txn_size(1, std::max(1, options_.max_changes_per_transaction));
  const auto n_projects = options_.projects.size();
  // Rows known to be committed, per project: only these are updated.
  std::vector<std::vector<std::string>> rows(n_projects);
  std::optional<server::pg::Connection> conn;
  std::int64_t seq = 0;
  const auto per_change = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(1.0, options_.rate)));
  auto next = Clock::now();

  auto pad = [&]() -> server::pg::Param {
    if (options_.pad_bytes == 0) return std::nullopt;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text(options_.pad_bytes, '0');
    for (auto& ch : text)
      ch = kHex[rng() & 15];
    return text;
  };
  auto pick_project = [&]() -> std::size_t {
    if (n_projects == 1 || unit(rng) < options_.watched_share) return options_.watched;
    std::size_t p = std::uniform_int_distribution<std::size_t>(0, n_projects - 2)(rng);
    return p >= options_.watched ? p + 1 : p;
  };

  while (!stop_) {
    if (!conn) {
      auto c = server::pg::Connection::open(options_.conninfo, {{"connect_timeout", "2"}});
      if (!c.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      conn.emplace(std::move(c.value()));
    }
    const int n = txn_size(rng);
    WriterTxn txn;
    txn.first_seq = seq + 1;
    std::vector<std::pair<std::size_t, std::string>> inserted;
    bool failed = !conn->exec("BEGIN").ok();
    for (int i = 0; i < n && !failed; ++i) {
      const auto p = pick_project();
      const auto s = std::to_string(++seq);
      if (rows[p].empty() || unit(rng) < 0.4) {
        auto r = conn->exec(
            "INSERT INTO public.tasks (task_type, params, project_id, status, error_message) "
            "VALUES ('chaos', jsonb_build_object('chaos_seq', $1::bigint), $2::uuid, 'Queued', "
            "$3) RETURNING id::text",
            {s, options_.projects[p], pad()});
        if (!r.ok() || r->rows() != 1) {
          failed = true;
        } else {
          inserted.emplace_back(p, std::string(r->value(0, 0)));
        }
      } else {
        const auto& row =
            rows[p][std::uniform_int_distribution<std::size_t>(0, rows[p].size() - 1)(rng)];
        const char* status = kStatuses[std::uniform_int_distribution<int>(0, 4)(rng)];
        auto r = conn->exec(
            "UPDATE public.tasks SET params = jsonb_build_object('chaos_seq', $2::bigint), "
            "status = $3::public.task_status, updated_at = now(), attempts = attempts + 1, "
            "error_message = $4 WHERE id = $1::uuid",
            {row, s, status, pad()});
        if (!r.ok()) failed = true;
      }
    }
    txn.last_seq = seq;
    txn.sent = Clock::now();
    if (!failed) {
      auto r = conn->exec("COMMIT");
      txn.acked = Clock::now();
      if (r.ok()) {
        txn.committed = true;
        for (auto& [p, id] : inserted)
          rows[p].push_back(std::move(id));
        committed_ += static_cast<std::uint64_t>(n);
      } else {
        failed = true;  // outcome unknown: the audit table says
      }
    } else {
      txn.acked = txn.sent;  // failed before COMMIT: rolled back
    }
    if (failed) {
      ++failures_;
      conn.reset();
    }
    {
      std::lock_guard lock(mutex_);
      log_.push_back(txn);
    }
    // Steady pace; after an outage carry on at the rate instead of catching up in a burst.
    next += per_change * n;
    const auto now = Clock::now();
    if (next < now - std::chrono::seconds(1)) next = now;
    if (failed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    while (!stop_ && Clock::now() < next)
      std::this_thread::sleep_for(
          std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(50)));
  }
}

}  // namespace rtsync::chaos
