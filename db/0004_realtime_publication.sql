-- Realtime: the tables clients subscribe to are in supabase_realtime. REPLICA IDENTITY FULL makes
-- UPDATE and DELETE carry the whole old row, so a filtered subscription (project_id=eq.…) can
-- match a DELETE and the server can tell who may see it.

ALTER TABLE public.tasks REPLICA IDENTITY FULL;
ALTER TABLE public.generations REPLICA IDENTITY FULL;
ALTER TABLE public.shot_generations REPLICA IDENTITY FULL;

DO $$
DECLARE
  t text;
BEGIN
  -- `rtsync migrate` runs the server bootstrap first, which creates the publication; this keeps
  -- the file usable on its own.
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
    CREATE PUBLICATION supabase_realtime;
  END IF;
  -- A FOR ALL TABLES publication already carries them.
  IF (SELECT puballtables FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
    RETURN;
  END IF;
  FOREACH t IN ARRAY ARRAY['tasks', 'generations', 'shot_generations'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_publication_tables
                    WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
      EXECUTE format('ALTER PUBLICATION supabase_realtime ADD TABLE public.%I', t);
    END IF;
  END LOOP;
END
$$;
