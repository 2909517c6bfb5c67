#include "pane_session.hpp"

#include "view/json_lines.hpp"
#include "view/pane_render.hpp"

namespace rtsync::app {

namespace query = client::query;
namespace sync = client::sync;

namespace {

std::int64_t to_ms(core::Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

view::LoadState load_state(const query::QueryResult& r) {
  view::LoadState s;
  s.fetching = r.is_fetching();
  if (r.is_error()) {
    s.load = view::Load::error;
    s.error = r.error ? r.error->message : "error";
  } else if (r.is_success() || r.has_data()) {
    s.load = view::Load::success;
  } else {
    s.load = view::Load::pending;
  }
  return s;
}

std::string_view status_name(const query::QueryResult& r) {
  return to_string(r.status);  // pending | error | success
}

}  // namespace

PaneSession::PaneSession(TaskClient& stack, PaneSessionOptions options, LineSink json_sink)
    : stack_(stack), options_(options), sink_(std::move(json_sink)), fetchers_(stack.rest()) {
  if (options_.page_size <= 0) options_.page_size = 20;
  if (sink_) {
    subs_.push_back(
        stack_.provider().subscribe([this](const sync::ProviderState&) { emit_connection(); }));
    for (std::string_view name :
         {client::domain::kTaskNewEvent, client::domain::kTaskUpdateEvent}) {
      subs_.push_back(stack_.bus().subscribe(name, [this, name](const json::value& detail) {
        emit(view::event_line(name, view::task_event_info(detail), now_iso()));
      }));
    }
    // One line per rejoin of the project's channel: resumed, or a gap (docs/resume.md).
    subs_.push_back(stack_.manager().on_phase([this](const sync::ChannelPhaseChange& change) {
      if (change.phase != sync::ChannelPhase::subscribed || !change.outcome ||
          change.outcome->kind == client::JoinOutcomeKind::fresh) {
        return;
      }
      const auto& o = *change.outcome;
      const std::string topic =
          "realtime:" + stack_.manager().binding().channel_name(change.project_id);
      emit(view::resume_line(topic, o.kind == client::JoinOutcomeKind::gap, o.replayed,
                             sync::position_json(o.from), now_iso()));
    }));
    subs_.push_back(stack_.bus().subscribe(
        sync::kChangesOverflowEvent,
        [this](const json::value& detail) { emit(view::overflow_line(detail, now_iso())); }));
    // SmartPolling registered with the tracker first, so the observers' configs are already
    // updated when this runs.
    subs_.push_back(stack_.freshness().subscribe([this] { emit_polling(true); }));
    subs_.push_back(stack_.on_viewers(
        [this](const std::vector<view::Viewer>& viewers, const view::ViewerChange& change) {
          emit_presence(viewers, change);
        }));
    emit_connection();
    // The channel's first presence state may have come before this session existed.
    if (stack_.presence_synced()) emit_presence(stack_.viewers(), {stack_.viewers(), {}});
  }
  observe(initial_state());
}

PaneSession::~PaneSession() {
  subs_.clear();
  tasks_sub_.remove();
  counts_sub_.remove();
  generations_sub_.remove();
  videos_sub_.remove();
}

view::PaneState PaneSession::initial_state() const {
  view::PaneState s;
  s.project_index = std::max(0, stack_.selected_index());
  return s;
}

std::string PaneSession::now_iso() const {
  return core::format_iso8601(stack_.scheduler().wall_now());
}

std::optional<std::string> PaneSession::wall_iso(core::TimePoint t) const {
  if (t == core::TimePoint{}) return std::nullopt;
  auto& s = stack_.scheduler();
  const auto wall =
      s.wall_now() - std::chrono::duration_cast<core::WallTime::duration>(s.now() - t);
  return core::format_iso8601(wall);
}

void PaneSession::emit(std::string line) {
  if (!sink_) return;
  ++lines_;
  sink_(line);
}

void PaneSession::emit_connection() {
  const auto& st = stack_.provider().state();
  const auto name =
      view::connection_state_name(st.is_connected, st.is_connecting, st.error.has_value());
  std::optional<std::string> error = st.error;
  if (name == view::ConnectionStateName::connected) error.reset();
  const std::string key = std::string(view::to_string(name)) + "|" + error.value_or("");
  if (key == last_connection_) return;
  last_connection_ = key;
  emit(view::connection_line(name, error, now_iso()));
}

void PaneSession::emit_presence(const std::vector<view::Viewer>& viewers,
                                const view::ViewerChange& change) {
  const auto& project = stack_.selection().get();
  emit(view::presence_line(project, viewers, change, now_iso()));
}

std::unique_ptr<sync::SmartQuery> PaneSession::make(query::ObserverOptions options,
                                                    std::optional<json::array> lookup,
                                                    core::Subscription& sub) {
  options.refetch_interval_in_background = true;
  options.refetch_on_window_focus = query::RefetchOn::never;
  auto q = stack_.polling().observe(stack_.cache(), std::move(options), std::move(lookup));
  const query::QueryKey key = q->observer().options().key;
  sub = q->observer().subscribe([this, key](const query::QueryResult& r) { on_result(key, r); });
  if (sink_) {
    auto& e = emitted_[key.hash()];
    e.interval_ms.reset();  // a new observer announces its interval
  }
  return q;
}

void PaneSession::observe_project(const std::string& project_id) {
  if (project_id == project_id_ && counts_) return;
  project_id_ = project_id;
  last_page_data_.reset();
  auto observe_def = [&](client::domain::QueryDef def, core::Subscription& sub) {
    query::ObserverOptions o;
    o.key = std::move(def.key);
    o.query.query_fn = std::move(def.fn);
    sub.remove();
    return make(std::move(o), std::nullopt, sub);
  };
  counts_ = observe_def(fetchers_.task_status_counts(project_id), counts_sub_);
  generations_ = observe_def(generations_count_query(fetchers_, project_id), generations_sub_);
  videos_ = observe_def(fetchers_.project_video_counts(project_id), videos_sub_);
}

void PaneSession::observe(const view::PaneState& state) {
  const auto& projects = stack_.projects();
  if (projects.empty()) return;
  const int index = std::clamp(state.project_index, 0, static_cast<int>(projects.size()) - 1);
  const std::string& project_id = projects[static_cast<std::size_t>(index)].id;
  observe_project(project_id);

  TasksPageParams p;
  p.project_id = project_id;
  p.page = state.page;
  p.limit = options_.page_size;
  p.status = std::string(state.status_filter());
  if (tasks_ && p == page_) return;
  if (tasks_ && tasks_->observer().result().has_data() && p.project_id == page_.project_id) {
    last_page_data_ = tasks_->observer().result().data;
  }
  page_ = p;
  client::domain::QueryDef def = tasks_page_query(fetchers_, p);
  query::ObserverOptions o;
  o.key = std::move(def.key);
  o.query.query_fn = std::move(def.fn);
  o.query.gc_time = std::chrono::minutes(5);
  o.refetch_on_reconnect = query::RefetchOn::never;
  // placeholderData: prev => prev — the previous page stays on screen while the next one loads.
  std::optional<query::Data> previous = last_page_data_;
  o.placeholder_data = [previous](const std::optional<query::Data>&) { return previous; };
  tasks_sub_.remove();
  tasks_ = make(std::move(o), tasks_lookup_key(project_id), tasks_sub_);
  emit_polling(true);
}

void PaneSession::apply(view::Command command, const view::PaneState& state) {
  switch (command) {
    case view::Command::none:
    case view::Command::redraw:
    case view::Command::quit:
      return;
    case view::Command::query_changed:
      observe(state);
      return;
    case view::Command::project_changed:
      stack_.select_project(state.project_index);
      observe(state);
      return;
    case view::Command::drop_realtime:
      stack_.drop_realtime();
      return;
    case view::Command::refetch:
      stack_.refetch_all();
      return;
  }
}

void PaneSession::on_result(const query::QueryKey& key, const query::QueryResult& r) {
  if (!sink_) return;
  auto& e = emitted_[key.hash()];
  const std::string status(status_name(r));
  const std::uint32_t errors = r.error_update_count;
  // Placeholder data is not the query's data: report the query's own state.
  const core::TimePoint data_at = r.is_placeholder_data ? core::TimePoint{} : r.data_updated_at;
  if (e.status == status && e.fetching == r.is_fetching() && e.data_at == data_at &&
      e.errors == errors) {
    return;
  }
  e.status = status;
  e.fetching = r.is_fetching();
  e.data_at = data_at;
  e.errors = errors;
  view::QueryLine line;
  line.key = key.elements();
  line.status = status;
  line.fetching = r.is_fetching();
  if (r.data && !r.is_placeholder_data) {
    line.rows = data_rows(*r.data);
    line.total = data_total(*r.data);
  }
  line.updated_at = wall_iso(data_at);
  if (r.error) line.error = r.error->message;
  emit(view::query_line(line));
}

void PaneSession::emit_polling(bool only_changes) {
  if (!sink_) return;
  for (sync::SmartQuery* q : {tasks_.get(), counts_.get(), generations_.get(), videos_.get()}) {
    if (!q) continue;
    const auto& key = q->observer().options().key;
    auto& e = emitted_[key.hash()];
    const std::int64_t ms = to_ms(q->config().refetch_interval);
    if (only_changes && e.interval_ms == ms) continue;
    e.interval_ms = ms;
    emit(view::polling_line(key.elements(), ms, to_ms(q->config().stale_time)));
  }
}

view::PaneModel PaneSession::model(const view::PaneState& state) const {
  view::PaneModel m;
  const auto& projects = stack_.projects();
  const int sel = stack_.selected_index();
  if (sel >= 0) m.project_name = projects[static_cast<std::size_t>(sel)].name;
  m.project_index = std::max(sel, 0);
  m.project_count = static_cast<int>(projects.size());

  const auto& cs = stack_.provider().state();
  if (cs.is_connected) {
    m.badge = view::Badge::connected;
  } else if (cs.is_connecting) {
    m.badge = view::Badge::connecting;
  } else {
    m.badge = view::Badge::disconnected;
    m.connection_error = cs.error.value_or("");
  }
  const auto& fr = stack_.freshness();
  m.realtime_status = std::string(to_string(fr.status()));
  m.realtime_reason = fr.reason();
  if (tasks_) m.polling_interval_ms = to_ms(tasks_->config().refetch_interval);
  if (stack_.presence_synced()) m.watchers = static_cast<int>(stack_.viewers().size());
  if (const auto last = stack_.manager().snapshot().last_event_at) {
    m.last_event_age_ms = std::max<std::int64_t>(0, stack_.scheduler().wall_ms() - *last);
  }

  if (counts_) {
    const auto& r = counts_->observer().result();
    m.counts_state = load_state(r);
    if (r.data) {
      if (auto c = status_counts(*r.data)) m.counts = *c;
    }
  }
  if (generations_ && videos_) {
    const auto& g = generations_->observer().result();
    const auto& v = videos_->observer().result();
    m.media_state = load_state(g);
    if (v.is_error()) m.media_state = load_state(v);
    if (g.data) m.generations = data_total(*g.data);
    if (v.data) m.videos = data_total(*v.data);
  }
  if (tasks_) {
    const auto& r = tasks_->observer().result();
    m.tasks_state = load_state(r);
    if (r.data) {
      m.tasks = task_rows(*r.data);
      if (!r.is_placeholder_data) m.total = data_total(*r.data);
    }
  }
  m.page = state.page;
  m.page_size = options_.page_size;
  m.status_filter = std::string(state.status_filter());
  m.mode = state.mode;
  if (state.mode == view::Mode::diagnostics) {
    m.diagnostics = view::pretty_lines(json::value(stack_.snapshot()));
    m.diagnostics_scroll = state.diagnostics_scroll;
  }
  const auto& nodes = stack_.options().realtime_nodes;
  const std::string node =
      nodes.empty() ? ""
                    : "node " + std::to_string(stack_.realtime_node_index() + 1) + " of " +
                          std::to_string(nodes.size()) + " (" + stack_.realtime_node() + ")";
  if (stack_.dropping()) {
    m.notice = "k: realtime dropped for " +
               view::format_interval(to_ms(stack_.options().drop_for)) +
               (node.empty() ? " — polling takes over; the socket reconnects by itself afterwards"
                             : " — polling takes over; then the socket reconnects on " + node);
  } else if (!node.empty()) {
    m.notice = "realtime on " + node + " — k moves it to the next node";
  }
  return m;
}

view::PaneLimits PaneSession::limits(const view::PaneState& state, int screen_height) const {
  view::PaneLimits l;
  view::PaneModel m = model(state);
  l.page_count = view::page_count(m);
  l.project_count = static_cast<int>(stack_.projects().size());
  l.diagnostics_lines =
      state.mode == view::Mode::diagnostics ? static_cast<int>(m.diagnostics.size()) : 0;
  l.diagnostics_rows = std::max(1, view::diagnostics_rows(screen_height));
  return l;
}

}  // namespace rtsync::app
