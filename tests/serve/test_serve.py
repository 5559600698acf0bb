"""tests/serve/test_serve.py — `cispo serve` against the `openai` client and curl.

Makes a tiny model directory (`cispo convert tiny`, random weights, seed 1, plus the demo tokenizer
and its chat template), starts the server on a free port with 16 slots, then:
  - curl: GET /v1/models, a completion, a streamed chat completion (SSE chunks, [DONE])
  - openai: models.list, completions (greedy text and per-token log-probs equal `cispo generate`'s),
    chat completions (usage counts the rendered template's tokens), streaming equal to the whole
    response, stop strings (whole and streamed), n > 1 with a seed, logprobs with top_logprobs
  - the request genrm (rl/genrm.c) sends as a judge, at the URL forms it accepts
  - errors: bad JSON, a non-object body, unknown model, bad types, out-of-range values, a prompt
    too long for the context, unknown path, wrong method, a body over --max-body; the server keeps serving
  - a client that leaves mid-stream frees its slot
  - load: 64 concurrent chat requests (some streamed, some sampled with a seed, different lengths,
    more than the slots) whose every response equals the same request sent alone
  - SIGTERM stops it cleanly (exit status 0).
Run by ctest (tests/cmake/serve.cmake) with CISPO_BIN, CISPO_SRC and CISPO_PYTHON (the venv of
tests/requirements.txt).
"""
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

failures = 0
checks = 0


def check(ok, what):
    global failures, checks
    checks += 1
    if not ok:
        failures += 1
        print("FAIL", what, flush=True)
    elif os.environ.get("TEST_VERBOSE"):
        print("ok  ", what, flush=True)
    return ok


try:
    import openai
except ImportError as e:
    print("FAIL: the openai package is missing (%s): run with CISPO_PYTHON from tests/requirements.txt" % e)
    sys.exit(1)

SRC = os.environ.get("CISPO_SRC", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("CISPO_BIN", os.path.join(SRC, "build", "cispo"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def curl(*args, data=None):
    cmd = ["curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}"] + list(args)
    r = subprocess.run(cmd, input=data, capture_output=True, text=True)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def post(url, body, headers=None):
    """Raw POST: (status, parsed JSON or text)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def is_openai_error(body, status_type="invalid_request_error"):
    err = body.get("error") if isinstance(body, dict) else None
    return (isinstance(err, dict) and isinstance(err.get("message"), str) and err.get("type") == status_type
            and "param" in err and "code" in err)


def main():
    tmp = tempfile.mkdtemp(prefix="cispo-serve-")
    model = os.path.join(tmp, "tiny-model")
    r = subprocess.run([BIN, "convert", "tiny", model], cwd=SRC, capture_output=True, text=True)
    if not check(r.returncode == 0, "cispo convert tiny: %s" % r.stderr.strip()):
        return
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(os.path.join(SRC, "configs", "tokenizers", "demo", f), model)
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "server.log"), "w+")
    srv = subprocess.Popen([BIN, "serve", "--model", model, "--port", str(port), "--slots", "16", "--max-ctx", "256",
                            "--max-body", "65536"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                if srv.poll() is not None:
                    break
                time.sleep(0.05)
        if not check(srv.poll() is None, "server started"):
            return
        t0 = time.time()
        run_tests(base, model)
        print("tests took %.1f s" % (time.time() - t0))
        check(srv.poll() is None, "server still running after every test")
        srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "SIGTERM stops the server cleanly (exit status %s)" % rc)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
        log.seek(0)
        text = log.read()
        log.close()
        if failures:
            print("server log:\n" + text[-4000:])
        import re
        m = re.search(r"stopped after (\d+) requests, \d+ tokens generated, at most (\d+) sequences", text)
        check(m is not None, "the server says it stopped")
        # continuous batching: sequences of different clients were decoded together (how many depends on
        # how fast the clients send; the engine may keep up with them)
        check(m is not None and int(m.group(2)) >= 2, "sequences of several clients decoded together: %s" %
              (m.group(0) if m else None))
        shutil.rmtree(tmp, ignore_errors=True)


def generate_cli(model, prompt, n):
    r = subprocess.run([BIN, "generate", "--model", model, "--prompt", prompt, "--greedy", "--max-new", str(n), "--logprobs"],
                       capture_output=True, text=True)
    lines = r.stdout.split("\n")
    return r.returncode, "\n".join(lines[:-2]), [float(x) for x in lines[-2].split()]


def run_tests(base, model):
    name = os.path.basename(model)
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=60)

    # ---- curl ----
    code, body = curl(base + "/v1/models")
    check(code == 200 and json.loads(body)["data"][0]["id"] == name, "curl GET /v1/models: %d %s" % (code, body[:200]))
    code, body = curl(base + "/v1/completions", "-H", "Content-Type: application/json",
                      "-d", json.dumps({"model": name, "prompt": "12+7=", "max_tokens": 6, "temperature": 0}))
    j = json.loads(body) if code == 200 else {}
    check(code == 200 and j.get("object") == "text_completion" and j["usage"]["completion_tokens"] >= 1,
          "curl completion: %d %s" % (code, body[:300]))
    code, body = curl("-N", base + "/v1/chat/completions", "-d",
                      json.dumps({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8, "temperature": 0,
                                  "stream": True}))
    events = [l[6:] for l in body.split("\n") if l.startswith("data: ")]
    chunks = [json.loads(e) for e in events[:-1]]
    check(code == 200 and events and events[-1] == "[DONE]" and chunks and
          all(c["object"] == "chat.completion.chunk" for c in chunks) and
          chunks[0]["choices"][0]["delta"].get("role") == "assistant" and
          chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"),
          "curl streamed chat: %d %s" % (code, body[:300]))
    whole = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hello"}], max_tokens=8,
                                           temperature=0)
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    check(streamed == whole.choices[0].message.content, "curl stream text %r == whole %r" % (streamed, whole.choices[0].message.content))

    # ---- openai: models, completions against `cispo generate` ----
    models = client.models.list()
    check([m.id for m in models.data] == [name], "models.list: %s" % [m.id for m in models.data])
    check(client.models.retrieve(name).id == name, "models.retrieve")
    for prompt in ("3+4=", "The answer is"):
        c = client.completions.create(model=name, prompt=prompt, max_tokens=12, temperature=0, logprobs=0)
        rc, text, lps = generate_cli(model, prompt, 12)
        ch = c.choices[0]
        check(rc == 0 and ch.text == text, "completion %r == cispo generate: %r vs %r" % (prompt, ch.text, text))
        ours = ch.logprobs.token_logprobs if ch.logprobs else []
        check(len(ours) == len(lps) and all(abs(a - b) <= 1e-5 + 1e-5 * abs(b) for a, b in zip(ours, lps)),
              "completion log-probs == cispo generate --logprobs: %s vs %s" % (ours[:4], lps[:4]))
        check(c.usage.completion_tokens == len(lps) and c.usage.total_tokens == c.usage.prompt_tokens + len(lps),
              "completion usage %s" % c.usage)
    # a prompt as token ids is the same prompt
    from tokenizers import Tokenizer
    tk = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    ids = tk.encode("3+4=").ids
    a = client.completions.create(model=name, prompt=ids, max_tokens=8, temperature=0)
    ref = client.completions.create(model=name, prompt="3+4=", max_tokens=8, temperature=0)
    check(a.choices[0].text == ref.choices[0].text and a.usage.prompt_tokens == len(ids), "token-id prompt == text prompt")
    two = client.completions.create(model=name, prompt=["1+1=", "3+4="], max_tokens=8, temperature=0)
    check([x.index for x in two.choices] == [0, 1] and two.choices[1].text == ref.choices[0].text,
          "a list of prompts: one choice each, in order")

    # ---- chat ----
    msgs = [{"role": "user", "content": "What is 6*7?"}]
    c = client.chat.completions.create(model=name, messages=msgs, max_tokens=10, temperature=0)
    check(c.object == "chat.completion" and c.choices[0].message.role == "assistant", "chat completion object")
    # the demo template renders a lone user message as its text and a newline
    check(c.usage.prompt_tokens == len(tk.encode("What is 6*7?\n").ids), "chat usage counts the rendered template: %s" % c.usage)
    sys_msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    c2 = client.chat.completions.create(model=name, messages=sys_msgs, max_tokens=4, temperature=0)
    check(c2.usage.prompt_tokens == len(tk.encode("System: be brief\nUser: hi\nAssistant:\n").ids),
          "content parts and a system turn through the template: %s" % c2.usage)
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}]
    c3 = client.chat.completions.create(model=name, messages=msgs, max_tokens=4, temperature=0, tools=tools)
    check(c3.choices[0].finish_reason in ("stop", "length"), "tools accepted")
    s = client.chat.completions.create(model=name, messages=msgs, max_tokens=10, temperature=0, stream=True,
                                       stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for ch in s:
        if ch.usage:
            usage = ch.usage
        for x in ch.choices:
            pieces.append(x.delta.content or "")
            finish = x.finish_reason or finish
    check("".join(pieces) == c.choices[0].message.content and finish == c.choices[0].finish_reason,
          "streamed chat == whole: %r vs %r" % ("".join(pieces), c.choices[0].message.content))
    check(usage is not None and usage.completion_tokens == c.usage.completion_tokens, "stream usage chunk %s" % usage)

    # ---- stop strings ----
    full = client.completions.create(model=name, prompt="Once", max_tokens=24, temperature=0).choices[0].text
    cut = None
    for i in range(3, len(full) - 2):
        cand = full[i:i + 2]
        if cand.strip() and "\ufffd" not in cand and full.index(cand) == i:
            cut = i
            break
    if check(cut is not None, "a stop string inside %r" % full):
        stop = full[cut:cut + 2]
        c = client.completions.create(model=name, prompt="Once", max_tokens=24, temperature=0, stop=[stop, "\x01never"])
        check(c.choices[0].text == full[:cut] and c.choices[0].finish_reason == "stop",
              "stop %r: %r (finish %s), expected %r" % (stop, c.choices[0].text, c.choices[0].finish_reason, full[:cut]))
        st = client.completions.create(model=name, prompt="Once", max_tokens=24, temperature=0, stop=stop, stream=True)
        text = "".join(x.choices[0].text for x in st if x.choices)
        check(text == full[:cut], "streamed stop: %r, expected %r" % (text, full[:cut]))

    # ---- n > 1, seed ----
    kw = dict(model=name, messages=msgs, max_tokens=12, temperature=1.0, n=3, seed=1234)
    a = client.chat.completions.create(**kw)
    b = client.chat.completions.create(**kw)
    ta = [x.message.content for x in a.choices]
    check([x.index for x in a.choices] == [0, 1, 2] and len(set(ta)) > 1, "n=3 sampled choices differ: %s" % ta)
    check(ta == [x.message.content for x in b.choices], "the same seed gives the same choices")
    check(a.usage.completion_tokens == sum(12 if x.finish_reason == "length" else 0 for x in a.choices) or
          a.usage.completion_tokens >= 3, "n=3 usage %s" % a.usage)
    g = client.chat.completions.create(model=name, messages=msgs, max_tokens=8, temperature=0, n=2)
    check(g.choices[0].message.content == g.choices[1].message.content, "greedy n=2 choices are equal")

    # ---- logprobs ----
    c = client.chat.completions.create(model=name, messages=msgs, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    content = c.choices[0].logprobs.content
    ok = len(content) == c.usage.completion_tokens - (c.choices[0].finish_reason == "stop")
    for t in content:
        tops = t.top_logprobs
        ok &= len(tops) == 3 and t.logprob <= 0 and tops[0].logprob >= tops[1].logprob >= tops[2].logprob
        ok &= tops[0].token == t.token and abs(tops[0].logprob - t.logprob) < 1e-4  # greedy takes the top token
        ok &= bytes(t.bytes).decode("utf-8", "replace") == t.token
    check(ok and content, "chat logprobs with top_logprobs=3: %s" % (content[:1],))
    check("".join(t.token for t in content) == c.choices[0].message.content or "\ufffd" in c.choices[0].message.content,
          "logprob tokens spell the content")

    # ---- the generative-reward judge's request (rl/genrm.c) ----
    judge = {"model": name, "messages": [{"role": "user", "content": "Grade this. Score: ?"}], "temperature": 0,
             "max_tokens": 16}
    for url in (base + "/v1/chat/completions",):
        code, j = post(url, judge, {"Authorization": "Bearer sk-test"})
        check(code == 200 and isinstance(j["choices"][0]["message"]["content"], str),
              "genrm's request gets choices[0].message.content: %d %s" % (code, str(j)[:200]))

    # ---- errors: each an OpenAI error, and the server keeps serving ----
    chat_url = base + "/v1/chat/completions"
    code, j = post(chat_url, b'{"messages": [')
    check(code == 400 and is_openai_error(j), "bad JSON -> 400: %d %s" % (code, j))
    code, j = post(chat_url, b'[1, 2]')
    check(code == 400 and is_openai_error(j), "a non-object body -> 400: %d %s" % (code, j))
    try:
        client.chat.completions.create(model="gpt-9", messages=msgs, max_tokens=4)
        check(False, "unknown model raises")
    except openai.NotFoundError as e:
        check(e.status_code == 404 and e.body.get("code") == "model_not_found", "unknown model -> 404 model_not_found: %s" % e.body)
    for bad, param in (({"temperature": "hot"}, "temperature"), ({"max_tokens": 2.5}, "max_tokens"),
                       ({"n": "two"}, "n"), ({"stop": 5}, "stop"), ({"messages": "hi"}, "messages"),
                       ({"messages": [{"content": "no role"}]}, "messages")):
        body = dict({"model": name, "messages": msgs, "max_tokens": 4}, **bad)
        code, j = post(chat_url, body)
        check(code == 422 and is_openai_error(j) and j["error"]["param"] == param, "bad type %s -> 422: %d %s" % (bad, code, j))
    for bad, param in (({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"), ({"n": 0}, "n"),
                       ({"max_tokens": 0}, "max_tokens"), ({"messages": []}, "messages"),
                       ({"top_logprobs": 2}, "top_logprobs")):
        body = dict({"model": name, "messages": msgs, "max_tokens": 4}, **bad)
        code, j = post(chat_url, body)
        check(code == 400 and is_openai_error(j) and j["error"]["param"] == param, "bad value %s -> 400: %d %s" % (bad, code, j))
    try:
        client.completions.create(model=name, prompt="7 " * 400, max_tokens=4)
        check(False, "a prompt too long raises")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and e.body.get("code") == "context_length_exceeded" and "256" in e.body.get("message", ""),
              "too long -> 400 context_length_exceeded: %s" % e.body)
    try:
        client.completions.create(model=name, prompt="hi", max_tokens=1000)
        check(False, "max_tokens past the context raises")
    except openai.BadRequestError as e:
        check(e.body.get("code") == "context_length_exceeded", "max_tokens past the context -> 400: %s" % e.body)
    code, j = post(base + "/v1/completions", {"prompt": [5, 100000], "max_tokens": 2})
    check(code == 400 and is_openai_error(j), "a token id outside the vocabulary -> 400: %d %s" % (code, j))
    code, body = curl(base + "/v1/embeddings", "-d", "{}")
    check(code == 404 and is_openai_error(json.loads(body)), "unknown path -> 404: %d %s" % (code, body))
    code, body = curl(base + "/v1/chat/completions")
    check(code == 405 and "error" in json.loads(body), "GET on a POST path -> 405: %d %s" % (code, body))
    code, body = curl(base + "/v1/models/other")
    check(code == 404 and is_openai_error(json.loads(body)), "GET /v1/models/other -> 404: %d" % code)
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 70000}]})
    code, body = curl(chat_url, "-H", "Content-Type: application/json", "--data-binary", "@-", data=big)
    check(code == 413 and "error" in json.loads(body), "a body over --max-body -> 413: %d %s" % (code, body[:200]))
    code, body = curl(chat_url, "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", data=big)
    check(code == 413, "a chunked body over --max-body -> 413: %d" % code)

    # ---- a client that leaves mid-stream ----
    s = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    req = json.dumps({"prompt": "go", "max_tokens": 250, "temperature": 0, "stream": True}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(req) + req)
    check(s.recv(4096).startswith(b"HTTP/1.1 200"), "stream started")
    s.close()
    c = client.completions.create(model=name, prompt="3+4=", max_tokens=8, temperature=0)
    check(c.choices[0].text == ref.choices[0].text, "serving goes on after a client left mid-stream")

    # ---- load: 64 concurrent chat requests == each alone ----
    def request(i, stream=False):
        # greedy, and every fourth sampled with its own seed: the same tokens whatever runs beside it
        kw = dict(model=name, messages=[{"role": "user", "content": "Q%d: %d+%d=" % (i, i * 7 % 50, i * 13 % 40)}],
                  max_tokens=16 + (i * 5) % 41, temperature=0.8 if i % 4 == 1 else 0, seed=i)
        if not stream:
            r = client.chat.completions.create(**kw)
            return r.choices[0].message.content, r.choices[0].finish_reason, r.usage.completion_tokens
        out, fin = [], None
        for ch in client.chat.completions.create(stream=True, **kw):
            for x in ch.choices:
                out.append(x.delta.content or "")
                fin = x.finish_reason or fin
        return "".join(out), fin, None

    t0 = time.time()
    alone = [request(i) for i in range(64)]
    t1 = time.time()
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        futs = [pool.submit(request, i, i % 4 == 3) for i in range(64)]
        together = [f.result() for f in futs]
    t2 = time.time()
    same = [i for i in range(64) if together[i][:2] == alone[i][:2] and
            (together[i][2] is None or together[i][2] == alone[i][2])]
    bad = [i for i in range(64) if i not in same]
    check(len(same) == 64, "64 concurrent chat requests equal each alone (%d differ: %s)" %
          (len(bad), [(alone[i], together[i]) for i in bad[:2]]))
    print("load: 64 requests alone in %.2f s, concurrently in %.2f s" % (t1 - t0, t2 - t1))


if __name__ == "__main__":
    main()
    print("%d checks, %d failed" % (checks, failures))
    print("overall okay" if failures == 0 and checks > 0 else "FAILED")
    sys.exit(1 if failures or checks == 0 else 0)
