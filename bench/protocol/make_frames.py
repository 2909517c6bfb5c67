#!/usr/bin/env python3
"""Writes the benchmark frames (frames/) shared by bench_protocol and realtime_js_serializer.mjs:
a ~1 KB postgres_changes UPDATE of a `tasks` row and Supabase's documented broadcast, each as a
vsn 1 object frame and a vsn 2 array frame, plus the broadcast as a kind 4 binary frame. Output
is committed; re-run only to change the frames."""
import json
import pathlib

out = pathlib.Path(__file__).resolve().parent / "frames"
out.mkdir(exist_ok=True)
compact = dict(separators=(",", ":"), ensure_ascii=False)

record = {
    "id": "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    "project_id": "7f9c0e2a-1111-4222-8333-944445555666",
    "task_type": "image_generation",
    "status": "In Progress",
    "params": {"prompt": "a lighthouse at dusk",
               "seed": 1234567, "steps": 30, "guidance": 7.5, "model": "flux-dev",
               "resolution": {"width": 1024, "height": 768}},
    "result_data": None,
    "generation_started_at": "2025-11-19T00:22:31.102+00:00",
    "created_at": "2025-11-19T00:22:30.877+00:00",
    "updated_at": "2025-11-19T00:22:40.877+00:00",
    "attempts": 1,
    "priority": 5,
}
columns = [
    {"name": "id", "type": "uuid"}, {"name": "project_id", "type": "uuid"},
    {"name": "task_type", "type": "text"}, {"name": "status", "type": "text"},
    {"name": "params", "type": "jsonb"}, {"name": "result_data", "type": "jsonb"},
    {"name": "generation_started_at", "type": "timestamptz"},
    {"name": "created_at", "type": "timestamptz"}, {"name": "updated_at", "type": "timestamptz"},
    {"name": "attempts", "type": "int4"}, {"name": "priority", "type": "int4"},
]
pg_payload = {
    "ids": [104868189],
    "data": {"schema": "public", "table": "tasks", "commit_timestamp": "2025-11-19T00:22:40.877Z",
             "type": "UPDATE", "columns": columns, "record": record,
             "old_record": {"id": record["id"]}, "errors": None},
}
topic = "realtime:task-updates:7f9c0e2a-1111-4222-8333-944445555666"
broadcast_payload = {"event": "message", "type": "broadcast",
                     "meta": {"id": "006554ce-d22d-469c-877a-88bef47214a3"},
                     "payload": {"id": "513edcc1-4cbc-4274-aa26-c195f7e8c090", "content": "oi",
                                 "username": "hpK9jN2iY-I2HioHWr5ml",
                                 "createdAt": "2025-11-18T22:44:29Z"}}


def write(name, text):
    (out / name).write_bytes(text.encode() if isinstance(text, str) else text)


for name, t, event, payload in [("pg_changes", topic, "postgres_changes", pg_payload),
                                ("broadcast", "realtime:chat-room", "broadcast", broadcast_payload)]:
    write(f"{name}_v2.json", json.dumps([None, None, t, event, payload], **compact))
    write(f"{name}_v1.json", json.dumps({"topic": t, "event": event, "payload": payload, "ref": None}, **compact))

t = b"realtime:chat-room"
meta = json.dumps(broadcast_payload["meta"], **compact).encode()
body = json.dumps(broadcast_payload["payload"], **compact).encode()
ev = broadcast_payload["event"].encode()
write("broadcast_kind4.bin", bytes([4, len(t), len(ev), len(meta), 1]) + t + ev + meta + body)
for f in sorted(out.iterdir()):
    print(f.name, f.stat().st_size)
