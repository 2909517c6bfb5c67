-- Functions the client's fetchers call through POST /rest/v1/rpc/<name>. They run as the caller
-- (SECURITY INVOKER), so row-level security applies: another user's project counts as empty.

-- A project's tasks by status, plus the task pane's summary: processing = Queued + In Progress;
-- recent_* = finished within p_recent (the original's window is one hour), measured on updated_at
-- (created_at for a task never updated).
CREATE FUNCTION public.task_status_counts(
  p_project_id uuid,
  p_recent interval DEFAULT interval '1 hour',
  OUT queued bigint,
  OUT in_progress bigint,
  OUT complete bigint,
  OUT failed bigint,
  OUT cancelled bigint,
  OUT processing bigint,
  OUT recent_successes bigint,
  OUT recent_failures bigint)
LANGUAGE sql STABLE AS $$
  SELECT count(*) FILTER (WHERE t.status = 'Queued'),
         count(*) FILTER (WHERE t.status = 'In Progress'),
         count(*) FILTER (WHERE t.status = 'Complete'),
         count(*) FILTER (WHERE t.status = 'Failed'),
         count(*) FILTER (WHERE t.status = 'Cancelled'),
         count(*) FILTER (WHERE t.status IN ('Queued', 'In Progress')),
         count(*) FILTER (WHERE t.status = 'Complete'
                            AND coalesce(t.updated_at, t.created_at) > now() - p_recent),
         count(*) FILTER (WHERE t.status = 'Failed'
                            AND coalesce(t.updated_at, t.created_at) > now() - p_recent)
    FROM public.tasks t
   WHERE t.project_id = p_project_id
$$;

-- Generations placed in a shot without a position.
CREATE FUNCTION public.unpositioned_count(p_shot_id uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT count(*) FROM public.shot_generations sg
   WHERE sg.shot_id = p_shot_id AND sg.position IS NULL
$$;

-- Video generations per shot of a project (every shot, zero included), in shot order.
CREATE FUNCTION public.project_video_counts(p_project_id uuid)
RETURNS TABLE (shot_id uuid, video_count bigint)
LANGUAGE sql STABLE AS $$
  SELECT s.id,
         count(DISTINCT g.id) FILTER (WHERE g.type LIKE '%video%')
    FROM public.shots s
    LEFT JOIN public.shot_generations sg ON sg.shot_id = s.id
    LEFT JOIN public.generations g ON g.id = sg.generation_id
   WHERE s.project_id = p_project_id
   GROUP BY s.id, s.position
   ORDER BY s.position, s.id
$$;

GRANT EXECUTE ON FUNCTION public.task_status_counts(uuid, interval),
                          public.unpositioned_count(uuid),
                          public.project_video_counts(uuid)
  TO anon, authenticated, service_role;
