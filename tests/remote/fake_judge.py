#!/usr/bin/env python3
"""tests/remote/fake_judge.py — a local HTTP server for tests/test_remote_reward.c: it answers like an
OpenAI-compatible chat completions server (an LLM judge) and like a reward service, and misbehaves on
request (HTTP 500/503/429 with Retry-After, hanging past the client's timeout, dropping the
connection, garbage bodies).

    python3 tests/remote/fake_judge.py      prints "port N" on its first line, then serves on
                                            127.0.0.1:N until stdin closes (the test's end) or SIGTERM.

Endpoints
  POST /v1/chat/completions  {model, messages, temperature, max_tokens}: the request shape is checked
                             (400 otherwise, like a real server). The judge grades the last user
                             message: it finds the reference and the response (cispo's default
                             template "[Reference answer]" / "[Response]" sections, or "Gold:" /
                             "Answer:" lines) and compares the response's final token with the
                             reference: equal -> 10, reference somewhere else in the response -> 5,
                             otherwise 0, written as "...\\nScore: X". A prompt that asks to "Reply YES
                             or NO" gets YES / NO. A fixed reply can be set with /_control.
  POST /reward               {prompt, response, answer, meta}: reward 1.0 when the response's final
                             token equals answer, else 0.0, times meta.weight when given; the reply
                             has "correct" unless meta.omit_correct.
  POST /_control             sets the behaviour for the next requests to the two endpoints above and
                             resets the counters: {"fail": N, "mode": "status" | "hang" | "drop" |
                             "garbage" | "no_reward", "status": 500, "retry_after": "1",
                             "hang_s": 30, "reply": "fixed judge text" | null,
                             "require_key": "token" | null, "min_gap": seconds}. The first N
                             requests misbehave as mode says; later ones are served normally. With
                             "retry_after", a retry that comes back before the promised delay is
                             refused with HTTP 400; with "min_gap", so is any request that follows
                             the previous one sooner than that (a client that skips its backoff).
  POST /_stats               {"requests": n, "last_body": <last request JSON>, "last_auth": header}
"""
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state_lock = threading.Lock()
state = {}


def reset(control):
    state.clear()
    state.update(fail=int(control.get("fail", 0)), mode=control.get("mode", "status"),
                 status=int(control.get("status", 500)), retry_after=control.get("retry_after"),
                 hang_s=float(control.get("hang_s", 30)), reply=control.get("reply"),
                 require_key=control.get("require_key"), requests=0, last_body=None,
                 last_auth=None, not_before=0.0, min_gap=float(control.get("min_gap", 0)), last_time=None)


reset({})


def final_token(text):
    words = text.strip().split()
    return words[-1].strip(".$") if words else ""


def judge(prompt):
    """The grade a careful judge would give, from the prompt's reference and response."""
    m = re.search(r"\[Reference answer\]\n(.*?)\n\n\[Response\]\n(.*?)\n\n\[Instructions\]", prompt, re.S)
    if not m:
        m = re.search(r"^Gold: (.*?)$.*?^Answer: (.*?)$", prompt, re.S | re.M)
    if not m:
        return None
    reference, response = m.group(1).strip(), m.group(2)
    if final_token(response) == reference:
        score = 10
    elif reference and reference in response:
        score = 5
    else:
        score = 0
    if "Reply YES or NO" in prompt:
        return "YES" if score == 10 else "NO"
    return "The response ends with %r; the reference answer is %r.\nScore: %d" % (final_token(response), reference, score)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # quiet: the C test prints what matters
        pass

    def reply(self, status, obj=None, raw=None, headers=()):
        body = raw if raw is not None else json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to do

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            return self.reply(400, {"error": {"message": "request body is not JSON"}})
        if self.path == "/_control":
            with state_lock:
                reset(body)
            return self.reply(200, {"ok": True})
        if self.path == "/_stats":
            with state_lock:
                return self.reply(200, {k: state[k] for k in ("requests", "last_body", "last_auth")})
        if self.path not in ("/v1/chat/completions", "/reward"):
            return self.reply(404, {"error": {"message": "no such endpoint: " + self.path}})

        with state_lock:
            state["requests"] += 1
            state["last_body"] = body
            state["last_auth"] = self.headers.get("Authorization")
            now = time.monotonic()
            too_early = now < state["not_before"] or (
                state["last_time"] is not None and now - state["last_time"] < state["min_gap"])
            state["last_time"] = now
            misbehave = state["fail"] > 0
            if misbehave:
                state["fail"] -= 1
            mode, status, retry_after = state["mode"], state["status"], state["retry_after"]
            if misbehave and mode == "status" and retry_after is not None:
                state["not_before"] = time.monotonic() + float(retry_after)
            fixed, key, hang_s = state["reply"], state["require_key"], state["hang_s"]
        if too_early:
            return self.reply(400, {"error": {"message": "retried before the Retry-After delay or min_gap"}})
        if key is not None and self.headers.get("Authorization") != "Bearer " + key:
            return self.reply(401, {"error": {"message": "bad or missing API key"}})
        if misbehave:
            if mode == "status":
                hdrs = [("Retry-After", str(retry_after))] if retry_after is not None else []
                return self.reply(status, {"error": {"message": "injected failure"}}, headers=hdrs)
            if mode == "hang":
                time.sleep(hang_s)
            elif mode == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif mode == "garbage":
                return self.reply(200, raw=b"<html><body>502 upstream error</body></html>")
            elif mode == "no_reward":
                return self.reply(200, {"result": "ok", "score": 1})
        if self.path == "/reward":
            return self.reward(body)
        return self.chat(body, fixed)

    def chat(self, body, fixed):
        msgs = body.get("messages")
        ok = (isinstance(body.get("model"), str) and isinstance(msgs, list) and msgs
              and all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ("system", "user", "assistant") for m in msgs)
              and isinstance(body.get("temperature"), (int, float)) and isinstance(body.get("max_tokens"), int))
        if not ok:
            return self.reply(400, {"error": {"message": "expected {model, messages: [{role, content}], temperature, max_tokens}"}})
        content = fixed if fixed is not None else judge(msgs[-1]["content"])
        if content is None:
            return self.reply(400, {"error": {"message": "the fake judge found no reference/response in the prompt"}})
        return self.reply(200, {"id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": content}}]})

    def reward(self, body):
        meta = body.get("meta")
        ok = (isinstance(body.get("prompt"), (str, type(None))) and isinstance(body.get("response"), str)
              and isinstance(body.get("answer"), (str, type(None))) and isinstance(meta, (dict, type(None))))
        if not ok:
            return self.reply(400, {"error": "expected {prompt, response, answer, meta}"})
        meta = meta or {}
        r = 1.0 if body.get("answer") is not None and final_token(body["response"]) == body["answer"] else 0.0
        r *= float(meta.get("weight", 1.0))
        out = {"reward": r, "reason": "final token %r vs answer %r" % (final_token(body["response"]), body.get("answer"))}
        if not meta.get("omit_correct"):
            out["correct"] = r > 0
        return self.reply(200, out)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("port %d" % server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # returns when the test closes our stdin (or exits)
    server.shutdown()


if __name__ == "__main__":
    main()
