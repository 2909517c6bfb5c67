#!/usr/bin/env python3
"""Writes the seed corpora (tests/fuzz/corpus/<target>/) from the reference frames quoted in
tests/unit/protocol/reference_frames.hpp plus Supabase's documented binary and filter examples.
Re-run after changing the frames; the output is committed."""
import hashlib
import json
import pathlib
import re

here = pathlib.Path(__file__).resolve().parent
frames_hpp = here.parent / "unit" / "protocol" / "reference_frames.hpp"
text = frames_hpp.read_text()
frames = dict(re.findall(r'inline constexpr std::string_view (k\w+)\s*=\s*R"f\((.*?)\)f";', text, re.S))


def write(target, data):
    d = here / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


for name, frame in frames.items():
    if name.startswith("kV1"):
        write("decode_v1", frame)
    else:
        write("decode_v2", frame)
        payload = json.loads(frame)[4]
        write("payloads", json.dumps(payload, separators=(",", ":")))
        if name == "kV2JoinReply":
            write("payloads", json.dumps(payload["response"], separators=(",", ":")))
        if name == "kV2JoinRealtimeJs":
            write("payloads", json.dumps(payload, separators=(",", ":")))

topic = b"realtime:chat-room"
kind3_payload = json.dumps(json.loads(frames["kV2BroadcastIn"])[4]["payload"], separators=(",", ":")).encode()
write("user_broadcast", bytes([3, 2, 1, len(topic), 10, 0, 1]) + b"10" + b"1" + topic + b"user-event" + kind3_payload)
meta = b'{"id":"006554ce-d22d-469c-877a-88bef47214a3"}'
kind4_payload = json.dumps(json.loads(frames["kV2BroadcastOut"])[4]["payload"], separators=(",", ":")).encode()
write("user_broadcast", bytes([4, len(topic), 7, len(meta), 1]) + topic + b"message" + meta + kind4_payload)
write("user_broadcast", bytes([4, 10, 3, 0, 0]) + b"realtime:r" + b"bin" + b"\x00\xff\x01")

for f in ["id=eq.1", "project_id=eq.7f9c0e2a-1111-4222-8333-944445555666", "name=in.(red, blue, yellow)",
          'tag=in.(a,"b,c","d\\"e",f\\,g)', "n=lt.10", "n=lte.9007199254740993", "n=gt.-1.5e3",
          "n=gte.NaN", "b=neq.true", "x=in.()"]:
    write("filter", f)

write("payloads", '{"ids":[1],"data":{"schema":"public","table":"t","commit_timestamp":null,"type":"INSERT",'
      '"columns":[{"name":"a","type":"_int4"},{"name":"b","type":"jsonb"},{"name":"c","type":"bool"}],'
      '"record":{"a":"{1,2}","b":"{\\"k\\":1}","c":"t"},"errors":null}}')
write("payloads", '{"x":"  -12.5e3abc","y":"{\\"a b\\",c}","z":"2024-01-02 03:04:05"}')


# WebSocket server-to-client byte streams for fuzz_ws_frame: every length form, fragmentation with
# control frames in between, close frames, and a few broken frames.
def ws(first, payload, masked=False):
    n = len(payload)
    head = bytes([first])
    m = 0x80 if masked else 0
    if n < 126:
        head += bytes([m | n])
    elif n <= 0xFFFF:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    if masked:
        key = b"\x11\x22\x33\x44"
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


change = frames["kV2PostgresChanges"].encode()
write("ws_frame", ws(0x81, b"Hello") + ws(0x81, change))
write("ws_frame", ws(0x82, bytes(range(256)) * 2) + ws(0x8A, b""))
write("ws_frame", ws(0x01, b"Hel") + ws(0x89, b"ping") + ws(0x00, "lo \u20ac".encode()[:-1]) +
      ws(0x80, "lo \u20ac".encode()[-1:]) + ws(0x88, (1000).to_bytes(2, "big") + b"bye"))
write("ws_frame", ws(0x81, b"x" * 70000))
write("ws_frame", ws(0x81, b"masked", masked=True))
write("ws_frame", ws(0x88, b"") + ws(0x81, b"after close"))
write("ws_frame", ws(0xC1, b"rsv1") + ws(0x83, b"op3"))

# HTTP request heads for fuzz_http_request: the first byte picks HTTP/1.0 or 1.1 for the raw-field
# pass; the rest is a request as it comes off the socket. Valid framings and the refused ones.
for req in [
    "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /rest/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Content-Length: 2\r\n\r\n{}",
    "POST /api/broadcast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello",
    "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\n",
    "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /realtime/v1/websocket?apikey=k&vsn=2.0.0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n",
]:
    write("http_request", "\x01" + req)
