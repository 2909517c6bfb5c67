#include "pane_queries.hpp"

#include "view/pane_render.hpp"

namespace rtsync::app {

using client::query::CancellationToken;
using client::query::Completion;
using client::query::Data;
using client::query::QueryKey;
using client::rest::PostgrestQuery;
using client::rest::RestResult;

namespace {

std::optional<std::vector<std::string>> status_filter(const TasksPageParams& p) {
  if (p.status.empty()) return std::nullopt;
  return std::vector<std::string>{p.status};
}

}  // namespace

client::domain::QueryDef tasks_page_query(const client::domain::Fetchers& f,
                                          const TasksPageParams& p) {
  return f.paginated_tasks(p.project_id, p.page + 1, p.limit, status_filter(p));
}

QueryKey tasks_page_key(const TasksPageParams& p) {
  return client::domain::paginated_tasks_key(p.project_id, p.page + 1, p.limit, status_filter(p));
}

json::array tasks_lookup_key(std::string_view project_id) {
  return json::array{"tasks", "paginated", project_id};
}

client::domain::QueryDef generations_count_query(const client::domain::Fetchers& f,
                                                 const std::string& project_id) {
  // One row is enough: the pane shows the exact total only.
  return f.project_generations(project_id, 1, 1, {});
}

QueryKey projects_key() {
  return QueryKey(json::array{"projects"});
}

client::query::QueryFn projects_fetcher(client::rest::RestClient& rest) {
  return [&rest](const QueryKey&, CancellationToken token, Completion done) {
    PostgrestQuery q("projects");
    q.select("id,name,created_at").order("created_at", true).order("id", true);
    const std::uint64_t id = rest.select(q, [done](Result<RestResult> r) {
      if (!r.ok()) return done.reject(r.error());
      if (!r->data.is_array()) {
        return done.reject(make_error(Errc::invalid_frame, "projects: expected an array"));
      }
      done.resolve(std::move(r->data));
    });
    // Cancelling an id that already finished is a no-op.
    token.on_cancel([&rest, id] { rest.cancel(id); }).detach();
  };
}

namespace {

std::string str(const Data* d) {
  return d && d->is_string() ? std::string(d->as_string()) : "";
}

std::int64_t num(const Data* d) {
  if (!d) return 0;
  if (d->is_number()) return d->as_int64();
  // bigint may arrive as a string from some PostgREST versions.
  if (d->is_string()) {
    std::int64_t v = 0;
    const auto s = d->as_string();
    for (char c : s) {
      if (c < '0' || c > '9') return 0;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  return 0;
}

}  // namespace

std::vector<view::TaskRow> task_rows(const Data& page) {
  std::vector<view::TaskRow> out;
  const Data* rows = page.find("tasks");
  if (!rows || !rows->is_array()) return out;
  out.reserve(rows->size());
  for (const Data& r : *rows->if_array()) {
    view::TaskRow row;
    row.id = str(r.find("id"));
    row.type = str(r.find("task_type"));
    row.status = str(r.find("status"));
    row.created_at = view::short_timestamp(str(r.find("created_at")));
    row.updated_at = view::short_timestamp(str(r.find("updated_at")));
    out.push_back(std::move(row));
  }
  return out;
}

std::optional<std::int64_t> data_total(const Data& data) {
  const Data* t = data.find("total");
  if (!t || !t->is_number()) return std::nullopt;
  return t->as_int64();
}

std::optional<view::StatusCounts> status_counts(const Data& data) {
  if (!data.is_object()) return std::nullopt;
  view::StatusCounts c;
  c.queued = num(data.find("queued"));
  c.in_progress = num(data.find("in_progress"));
  c.complete = num(data.find("complete"));
  c.failed = num(data.find("failed"));
  c.cancelled = num(data.find("cancelled"));
  return c;
}

std::optional<std::int64_t> data_rows(const Data& data) {
  for (std::string_view field : {"tasks", "items"}) {
    if (const Data* rows = data.find(field); rows && rows->is_array()) {
      return static_cast<std::int64_t>(rows->size());
    }
  }
  if (data.is_array()) return static_cast<std::int64_t>(data.size());
  if (data.is_object()) return 1;
  return std::nullopt;
}

}  // namespace rtsync::app
