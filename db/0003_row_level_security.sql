-- Row-level security: a signed-in user reads and writes only rows that belong to a project whose
-- user_id is their auth.uid(); service_role bypasses (BYPASSRLS, plus explicit policies so it
-- still works where the role exists without that attribute). anon sees nothing.
--
-- The original app also let any signed-in user see and claim Queued/In Progress tasks (for
-- workers, 20250910220009); rtsync leaves that out: workers use the service role.
--
-- `(SELECT auth.uid())` is evaluated once per statement (an init plan), not once per row.

-- Supabase's grants: table privileges for every API role, RLS decides the rows.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.workers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.generations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.shots ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.shot_generations ENABLE ROW LEVEL SECURITY;

CREATE POLICY projects_owner ON public.projects FOR ALL TO authenticated
  USING (user_id = (SELECT auth.uid()))
  WITH CHECK (user_id = (SELECT auth.uid()));

CREATE POLICY tasks_owner ON public.tasks FOR ALL TO authenticated
  USING (project_id IN (SELECT p.id FROM public.projects p WHERE p.user_id = (SELECT auth.uid())))
  WITH CHECK (project_id IN (SELECT p.id FROM public.projects p WHERE p.user_id = (SELECT auth.uid())));

CREATE POLICY generations_owner ON public.generations FOR ALL TO authenticated
  USING (project_id IN (SELECT p.id FROM public.projects p WHERE p.user_id = (SELECT auth.uid())))
  WITH CHECK (project_id IN (SELECT p.id FROM public.projects p WHERE p.user_id = (SELECT auth.uid())));

CREATE POLICY shots_owner ON public.shots FOR ALL TO authenticated
  USING (project_id IN (SELECT p.id FROM public.projects p WHERE p.user_id = (SELECT auth.uid())))
  WITH CHECK (project_id IN (SELECT p.id FROM public.projects p WHERE p.user_id = (SELECT auth.uid())));

-- A placement belongs to the owner of its shot's project; the generation placed must be theirs too.
CREATE POLICY shot_generations_owner ON public.shot_generations FOR ALL TO authenticated
  USING (shot_id IN (SELECT s.id FROM public.shots s JOIN public.projects p ON p.id = s.project_id
                      WHERE p.user_id = (SELECT auth.uid())))
  WITH CHECK (shot_id IN (SELECT s.id FROM public.shots s JOIN public.projects p ON p.id = s.project_id
                           WHERE p.user_id = (SELECT auth.uid()))
              AND generation_id IN (SELECT g.id FROM public.generations g JOIN public.projects p
                                      ON p.id = g.project_id WHERE p.user_id = (SELECT auth.uid())));

CREATE POLICY projects_service ON public.projects FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY workers_service ON public.workers FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY tasks_service ON public.tasks FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY generations_service ON public.generations FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY shots_service ON public.shots FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY shot_generations_service ON public.shot_generations FOR ALL TO service_role
  USING (true) WITH CHECK (true);
