#include "rtsync/client/domain/fetchers.hpp"

#include <algorithm>
#include <map>
#include <memory>

namespace rtsync::client::domain {
namespace {

using rest::PostgrestQuery;
using rest::RestResult;

// One fetch in flight: its completion, and the HTTP request to cancel with it.
struct Fetch {
  Fetch(rest::RestClient& r, query::Completion d) : rest(r), done(std::move(d)) {}
  rest::RestClient& rest;
  query::Completion done;
  core::Subscription on_cancel;
  std::uint64_t request = 0;

  static std::shared_ptr<Fetch> start(rest::RestClient& rest, const query::CancellationToken& token,
                                      query::Completion done) {
    auto f = std::make_shared<Fetch>(rest, std::move(done));
    f->on_cancel = token.on_cancel([weak = std::weak_ptr<Fetch>(f)] {
      if (auto self = weak.lock(); self && self->request) self->rest.cancel(self->request);
    });
    return f;
  }
};

json::value status_key(const std::optional<std::vector<std::string>>& status) {
  if (!status) return nullptr;
  json::array a;
  for (const auto& s : *status)
    a.emplace_back(s);
  return a;
}

std::int64_t count_or(const RestResult& r, std::size_t fallback) {
  return r.count.value_or(static_cast<std::int64_t>(fallback));
}

std::string str(const json::value& row, std::string_view key) {
  auto s = core::find_string(row, key);
  return s ? std::string(*s) : std::string();
}

// A page of `q`, newest first, counted: {<items_key>, total, hasMore[, totalPages, currentPage]}.
query::QueryFn page_fn(rest::RestClient& rest, PostgrestQuery q, int page, int limit,
                       std::string items_key, bool page_info) {
  const std::int64_t from = static_cast<std::int64_t>(page - 1) * limit;
  q.order("created_at", false).order("id", false).range(from, from + limit - 1).count_exact();
  return [&rest, q = std::move(q), page, limit, items_key = std::move(items_key), page_info](
             const query::QueryKey&, query::CancellationToken token, query::Completion done) {
    auto f = Fetch::start(rest, token, std::move(done));
    f->request = rest.select(q, [f, page, limit, items_key, page_info](Result<RestResult> r) {
      if (!r) return f->done.reject(r.error());
      const std::size_t rows = r->data.is_array() ? r->data.as_array().size() : 0;
      const std::int64_t total = count_or(r.value(), rows);
      json::object out;
      out[items_key] = r->data.is_array() ? r->data : json::array{};
      out["total"] = total;
      out["hasMore"] = static_cast<std::int64_t>(page) * limit < total;
      if (page_info) {
        out["totalPages"] = (total + limit - 1) / limit;
        out["currentPage"] = page;
      }
      f->done.resolve(std::move(out));
    });
  };
}

// POST /rpc/<function>; the answer as is, or through `shape`.
query::QueryFn rpc_fn(rest::RestClient& rest, std::string function, json::object args,
                      std::function<json::value(json::value)> shape = {}) {
  return [&rest, function = std::move(function), args = std::move(args), shape = std::move(shape)](
             const query::QueryKey&, query::CancellationToken token, query::Completion done) {
    auto f = Fetch::start(rest, token, std::move(done));
    f->request = rest.rpc(function, args, [f, shape](Result<RestResult> r) {
      if (!r) return f->done.reject(r.error());
      f->done.resolve(shape ? shape(std::move(r->data)) : std::move(r->data));
    });
  };
}

}  // namespace

const std::vector<query::QueryKey>& family_prefixes() {
  static const std::vector<query::QueryKey> kFamilies = {query::QueryKey{"tasks"},
                                                         query::QueryKey{"task-status-counts"},
                                                         query::QueryKey{"unified-generations"},
                                                         query::QueryKey{"shots"},
                                                         query::QueryKey{"unpositioned-count"},
                                                         query::QueryKey{"project-video-counts"}};
  return kFamilies;
}

query::QueryKey paginated_tasks_key(const std::string& project_id, int page, int limit,
                                    const std::optional<std::vector<std::string>>& status) {
  json::array k{"tasks", "paginated", project_id, page, limit};
  k.push_back(status_key(status));
  return query::QueryKey(std::move(k));
}
query::QueryKey task_status_counts_key(const std::string& project_id) {
  return query::QueryKey{"task-status-counts", project_id};
}
query::QueryKey project_generations_key(const std::string& project_id, int page, int limit,
                                        const json::object& filters) {
  json::array k{"unified-generations", "project", project_id, page, limit};
  k.push_back(filters);
  return query::QueryKey(std::move(k));
}
query::QueryKey shot_generations_key(const std::string& shot_id) {
  return query::QueryKey{"unified-generations", "shot", shot_id};
}
query::QueryKey shots_key(const std::string& project_id, int max_images_per_shot) {
  return query::QueryKey{"shots", project_id, max_images_per_shot};
}
query::QueryKey unpositioned_count_key(const std::string& shot_id) {
  return query::QueryKey{"unpositioned-count", shot_id};
}
query::QueryKey project_video_counts_key(const std::string& project_id) {
  return query::QueryKey{"project-video-counts", project_id};
}

query::Retry default_retry() {
  return query::Retry([](std::uint32_t failures, const Error& e) {
    return e.code != Errc::unauthorized && failures < 2;
  });
}

QueryDef Fetchers::paginated_tasks(std::string project_id, int page, int limit,
                                   std::optional<std::vector<std::string>> status) const {
  page = std::max(page, 1);
  limit = std::max(limit, 1);
  PostgrestQuery q("tasks");
  q.select("*").eq("project_id", project_id);
  if (status) q.in("status", *status);
  return QueryDef{paginated_tasks_key(project_id, page, limit, status),
                  page_fn(rest_, std::move(q), page, limit, "tasks", true)};
}

QueryDef Fetchers::task_status_counts(std::string project_id) const {
  return QueryDef{task_status_counts_key(project_id),
                  rpc_fn(rest_, "task_status_counts", json::object{{"p_project_id", project_id}})};
}

QueryDef Fetchers::project_generations(std::string project_id, int page, int limit,
                                       json::object filters) const {
  page = std::max(page, 1);
  limit = std::max(limit, 1);
  PostgrestQuery q("generations");
  q.select("*").eq("project_id", project_id);
  const json::value* media = filters.if_contains("mediaType");
  const std::string_view kind =
      media && media->is_string() ? std::string_view(media->get_string()) : std::string_view("all");
  if (kind == "video") q.like("type", "*video*");
  if (kind == "image") q.not_("type", "like", "*video*");
  const json::value* starred = filters.if_contains("starredOnly");
  if (starred && starred->is_bool() && starred->get_bool()) q.eq("starred", "true");
  return QueryDef{project_generations_key(project_id, page, limit, filters),
                  page_fn(rest_, std::move(q), page, limit, "items", false)};
}

QueryDef Fetchers::shot_generations(std::string shot_id) const {
  rest::RestClient& rest = rest_;
  PostgrestQuery placements("shot_generations");
  placements.select("id,generation_id,position,created_at")
      .eq("shot_id", shot_id)
      .order("position", true, false)
      .order("created_at", true)
      .order("id", true);
  return QueryDef{
      shot_generations_key(shot_id),
      [&rest, placements](const query::QueryKey&, query::CancellationToken token,
                          query::Completion done) {
        auto f = Fetch::start(rest, token, std::move(done));
        f->request = rest.select(placements, [f](Result<RestResult> r) {
          if (!r) return f->done.reject(r.error());
          json::array links = r->data.is_array() ? r->data.as_array() : json::array{};
          if (links.empty())
            return f->done.resolve(json::object{{"items", json::array{}}, {"total", 0}});
          std::vector<std::string> ids;
          for (const auto& l : links)
            ids.push_back(str(l, "generation_id"));
          PostgrestQuery gens("generations");
          gens.select("*").in("id", ids);
          f->request = f->rest.select(gens, [f, links = std::move(links)](Result<RestResult> g) {
            if (!g) return f->done.reject(g.error());
            std::map<std::string, const json::object*> by_id;
            if (g->data.is_array()) {
              for (const auto& row : g->data.as_array()) {
                if (row.is_object()) by_id[str(row, "id")] = &row.as_object();
              }
            }
            json::array items;
            for (const auto& l : links) {
              auto it = by_id.find(str(l, "generation_id"));
              if (it == by_id.end()) continue;  // not visible (RLS) or gone meanwhile
              json::object item = *it->second;
              item["position"] = l.as_object().at("position");
              item["shot_generation_id"] = l.as_object().at("id");
              items.push_back(std::move(item));
            }
            const auto n = static_cast<std::int64_t>(items.size());
            f->done.resolve(json::object{{"items", std::move(items)}, {"total", n}});
          });
        });
      }};
}

QueryDef Fetchers::shots(std::string project_id, int max_images_per_shot) const {
  rest::RestClient& rest = rest_;
  PostgrestQuery shots_q("shots");
  shots_q.select("*")
      .eq("project_id", project_id)
      .order("position", true)
      .order("created_at", true);
  const int max_images = std::max(max_images_per_shot, 0);
  return QueryDef{
      shots_key(project_id, max_images_per_shot),
      [&rest, shots_q, max_images](const query::QueryKey&, query::CancellationToken token,
                                   query::Completion done) {
        auto f = Fetch::start(rest, token, std::move(done));
        f->request = rest.select(shots_q, [f, max_images](Result<RestResult> r) {
          if (!r) return f->done.reject(r.error());
          json::array shots = r->data.is_array() ? r->data.as_array() : json::array{};
          if (shots.empty()) return f->done.resolve(json::array{});
          std::vector<std::string> shot_ids;
          for (const auto& s : shots)
            shot_ids.push_back(str(s, "id"));
          PostgrestQuery links("shot_generations");
          links.select("shot_id,generation_id,position")
              .in("shot_id", shot_ids)
              .order("position", true, false)
              .order("created_at", true)
              .order("id", true);
          f->request = f->rest.select(
              links, [f, max_images, shots = std::move(shots)](Result<RestResult> l) mutable {
                if (!l) return f->done.reject(l.error());
                // Per shot: how many generations, and the first positioned ones to show.
                std::map<std::string, std::int64_t> counts;
                std::map<std::string, std::vector<std::string>> shown;
                std::vector<std::string> wanted;
                if (l->data.is_array()) {
                  for (const auto& link : l->data.as_array()) {
                    const std::string shot = str(link, "shot_id");
                    ++counts[shot];
                    auto& list = shown[shot];
                    const bool positioned = !link.as_object().at("position").is_null();
                    if (positioned && static_cast<int>(list.size()) < max_images) {
                      list.push_back(str(link, "generation_id"));
                      wanted.push_back(list.back());
                    }
                  }
                }
                auto assemble = [f, shots = std::move(shots), counts,
                                 shown](const std::map<std::string, json::value>& gens) mutable {
                  json::array out;
                  for (auto& s : shots) {
                    json::object shot = s.as_object();
                    const std::string id = str(s, "id");
                    shot["generation_count"] = counts.count(id) ? counts.at(id) : 0;
                    json::array images;
                    if (auto it = shown.find(id); it != shown.end()) {
                      for (const auto& g : it->second) {
                        if (auto gi = gens.find(g); gi != gens.end()) images.push_back(gi->second);
                      }
                    }
                    shot["images"] = std::move(images);
                    out.push_back(std::move(shot));
                  }
                  f->done.resolve(std::move(out));
                };
                if (wanted.empty()) return assemble({});
                PostgrestQuery gens("generations");
                gens.select("*").in("id", wanted);
                f->request = f->rest.select(
                    gens, [f, assemble = std::move(assemble)](Result<RestResult> g) mutable {
                      if (!g) return f->done.reject(g.error());
                      std::map<std::string, json::value> by_id;
                      if (g->data.is_array()) {
                        for (const auto& row : g->data.as_array())
                          by_id[str(row, "id")] = row;
                      }
                      assemble(by_id);
                    });
              });
        });
      }};
}

QueryDef Fetchers::unpositioned_count(std::string shot_id) const {
  return QueryDef{unpositioned_count_key(shot_id),
                  rpc_fn(rest_, "unpositioned_count", json::object{{"p_shot_id", shot_id}})};
}

QueryDef Fetchers::project_video_counts(std::string project_id) const {
  // The function's rows {shot_id, video_count} as {byShot: {shot: n}, total}.
  auto by_shot = [](json::value rows) -> json::value {
    json::object counts;
    std::int64_t total = 0;
    if (rows.is_array()) {
      for (const auto& row : rows.as_array()) {
        const std::int64_t n = core::find_int(row, "video_count").value_or(0);
        counts[str(row, "shot_id")] = n;
        total += n;
      }
    }
    return json::object{{"byShot", std::move(counts)}, {"total", total}};
  };
  return QueryDef{
      project_video_counts_key(project_id),
      rpc_fn(rest_, "project_video_counts", json::object{{"p_project_id", project_id}}, by_shot)};
}

}  // namespace rtsync::client::domain
