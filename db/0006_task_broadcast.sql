-- Broadcast from Database for the task pane (docs/database-broadcast.md): every change of a task is
-- sent to its project's private topic `project:<project id>` by realtime.broadcast_changes (one
-- realtime.messages row per changed row, event = INSERT | UPDATE | DELETE, payload
-- {record, old_record, operation, table, schema, id}); the project's owner may read that topic.
-- The client's task binding subscribes to it with `rtsync watch --source broadcast` instead of
-- postgres_changes on public.tasks.

-- SECURITY DEFINER: the writer needs no privilege on realtime.messages (the owner inserts); an
-- empty search_path so nothing the caller set can stand in for realtime.* or public.*.
CREATE FUNCTION public.broadcast_task_changes() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
  PERFORM realtime.broadcast_changes(
    'project:' || coalesce(NEW.project_id, OLD.project_id)::text,
    TG_OP, TG_OP, TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.broadcast_task_changes() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER tasks_broadcast_changes
  AFTER INSERT OR UPDATE OR DELETE ON public.tasks
  FOR EACH ROW EXECUTE FUNCTION public.broadcast_task_changes();

-- Who may receive a project's topic: its owner (db/0003's ownership model). realtime.topic() is
-- the topic being joined; `(SELECT …)` evaluates it and auth.uid() once per statement.
CREATE POLICY project_topic_owner_reads ON realtime.messages FOR SELECT TO authenticated
  USING (
    extension = 'broadcast'
    AND EXISTS (
      SELECT 1 FROM public.projects p
      WHERE 'project:' || p.id::text = (SELECT realtime.topic())
        AND p.user_id = (SELECT auth.uid())));
