-- The application tables of the original app (shared/reference/seed-behaviour.md section 2.7):
-- projects own tasks, generations and shots; shot_generations places generations in shots, with
-- a NULL position meaning "unpositioned".

CREATE TYPE public.task_status AS ENUM ('Queued', 'In Progress', 'Complete', 'Failed', 'Cancelled');

CREATE TABLE public.projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  aspect_ratio text,
  created_at timestamptz NOT NULL DEFAULT now(),
  settings jsonb
);
-- Every row-level policy below looks projects up by owner.
CREATE INDEX idx_projects_user_id ON public.projects (user_id);

-- Workers claim tasks; only the service role sees them.
CREATE TABLE public.workers (
  id text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_type text NOT NULL,
  params jsonb NOT NULL,
  status public.task_status NOT NULL DEFAULT 'Queued',
  dependant_on uuid,
  output_location text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz,
  project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
  generation_processed_at timestamptz,
  worker_id text REFERENCES public.workers (id) ON DELETE SET NULL,
  attempts integer NOT NULL DEFAULT 0,
  error_message text,
  result_data jsonb DEFAULT '{}',
  generation_started_at timestamptz,
  generation_created boolean NOT NULL DEFAULT false
);
CREATE INDEX idx_status_created ON public.tasks (status, created_at);
CREATE INDEX idx_dependant_on ON public.tasks (dependant_on);
CREATE INDEX idx_project_status ON public.tasks (project_id, status);
-- Not in the original: the paginated task list orders a project's tasks by creation time.
CREATE INDEX idx_tasks_project_created ON public.tasks (project_id, created_at DESC);

CREATE TABLE public.generations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tasks jsonb,
  params jsonb,
  location text,
  type text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz,
  project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
  starred boolean NOT NULL DEFAULT false,
  thumbnail_url text
);
CREATE INDEX idx_generations_project_created ON public.generations (project_id, created_at DESC);

CREATE TABLE public.shots (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz,
  project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
  settings jsonb,
  position integer NOT NULL DEFAULT 1
);
CREATE INDEX idx_shots_project_position ON public.shots (project_id, position);

CREATE TABLE public.shot_generations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  shot_id uuid NOT NULL REFERENCES public.shots (id) ON DELETE CASCADE,
  generation_id uuid NOT NULL REFERENCES public.generations (id) ON DELETE CASCADE,
  position integer DEFAULT 0,  -- NULL = unpositioned
  created_at timestamptz DEFAULT now()
);
CREATE INDEX idx_shot_generations_shot_position ON public.shot_generations (shot_id, position);
CREATE INDEX idx_shot_generations_generation ON public.shot_generations (generation_id);
