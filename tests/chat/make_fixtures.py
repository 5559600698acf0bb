#!/usr/bin/env python3
"""tests/chat/make_fixtures.py — the chat-template fixtures of tests/test_chat_template.c.

Modes:

    python3 tests/chat/make_fixtures.py --extract [--sdist FILE]   # templates/*.jinja from the pinned package
    python3 tests/chat/make_fixtures.py                            # fixtures.jsonl from templates/*.jinja
    python3 tests/chat/make_fixtures.py --check-all DIR [--sdist FILE]   # all the package's templates, in DIR

--extract takes the models' own chat templates out of the PyPI source distribution of
llama-cpp-python 0.3.36 (its vendored llama.cpp keeps them under models/templates/), after checking the
archive's sha256, and writes them to templates/<family>.jinja (tests/chat/README.md records the source
of each). Without --sdist it runs `pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`
into a temporary directory.

The default mode renders every template in templates/ (the extracted ones and features.jinja, which
covers the rest of the supported subset) and the demo tokenizer's (configs/tokenizers/demo/) over a few hundred generated conversations: system prompts,
multi-turn, tool definitions, assistant tool calls, tool results, reasoning (in reasoning_content or
<think> blocks), content given as a list of text blocks, add_generation_prompt true and false, and
conversations a template refuses (its raise_exception). jinja2 is configured as transformers'
apply_chat_template configures it (an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks,
the loopcontrols extension and the {% generation %} block, tojson without HTML escaping, raise_exception, strftime_now), except that
strftime_now reads a fixed time, FIXED_NOW, so that the fixtures do not depend on the day they were
written; the C test sets SOURCE_DATE_EPOCH to the same instant.

Each line of fixtures.jsonl: {"template": name, "vars": {...}, "expected": text}, or {"template",
"vars", "error": message} where jinja2 fails: the C renderer must fail too, with a message containing
jinja2's (raise_exception) or any message (a type error, where jinja2's text is Python's).

    python3 -m venv /tmp/j && /tmp/j/bin/pip install jinja2 && /tmp/j/bin/python tests/chat/make_fixtures.py
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

SDIST = "llama-cpp-python==0.3.36"
SDIST_FILE = "llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
SDIST_DIR = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/"
# family name -> the file in SDIST_DIR (the template of that model's tokenizer_config.json)
TEMPLATES = {
    "minimax_m1": "MiniMax-M1.jinja",
    "qwen2.5": "Qwen-Qwen2.5-7B-Instruct.jinja",
    "qwen3": "Qwen-Qwen3-0.6B.jinja",
    "qwq": "Qwen-QwQ-32B.jinja",
    "llama3.1": "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "llama3.2": "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "mistral_nemo": "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    "mistral_small3.2": "Mistral-Small-3.2-24B-Instruct-2506.jinja",
    "deepseek_r1": "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
}
# more families, fewer conversations each (EXTRA_CASES): what else users train, and templates that reach
# further into jinja2 (dictsort, str.format, min, Markup from |safe, the sandbox's refusal of
# list.append, jinja2's messages for missing attributes, a filter block, map's generator into tojson)
MORE_TEMPLATES = {
    "minimax_m2": "MiniMax-M2.jinja",
    "qwen3_coder": "Qwen3-Coder.jinja",
    "qwen3.5": "Qwen3.5-4B.jinja",
    "deepseek_v3.1": "deepseek-ai-DeepSeek-V3.1.jinja",
    "deepseek_r1_llama": "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
    "llama3.3": "meta-llama-Llama-3.3-70B-Instruct.jinja",
    "gpt_oss": "openai-gpt-oss-120b.jinja",
    "kimi_k2": "Kimi-K2-Instruct.jinja",
    "glm4.6": "GLM-4.6.jinja",
    "phi3.5": "microsoft-Phi-3.5-mini-instruct.jinja",
    "granite3.3": "ibm-granite-granite-3.3-2B-Instruct.jinja",
    "gemma2": "google-gemma-2-2b-it.jinja",
    "gemma4": "google-gemma-4-31B-it.jinja",
    "hermes3": "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
    "smollm3": "HuggingFaceTB-SmolLM3-3B.jinja",
    "command_r_plus": "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
    "seed_oss": "ByteDance-Seed-OSS.jinja",
    "hunyuan3": "tencent-Hy3.jinja",
    "minicpm5": "openbmb-MiniCPM5-1B.jinja",
    "functionary3.1": "meetkai-functionary-medium-v3.1.jinja",
    "firefunction2": "fireworks-ai-llama-3-firefunction-v2.jinja",
    "llama_cpp_r1": "llama-cpp-deepseek-r1.jinja",
}
EXTRA_CASES = 16

# templates of this repository rendered beside them (name -> path from the repository root)
OWN_TEMPLATES = {"demo": "configs/tokenizers/demo/chat_template.jinja"}
ROOT = os.path.dirname(os.path.dirname(HERE))

# strftime_now's instant (UTC); tests/test_chat_template.c sets SOURCE_DATE_EPOCH to it.
FIXED_NOW = datetime(2026, 3, 7, 9, 5, 0, tzinfo=timezone.utc)


def fetch_sdist(sdist):
    """The path of the pinned sdist (downloaded with pip when sdist is None), its sha256 checked."""
    if sdist is None:
        tmp = tempfile.mkdtemp()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp,
                        SDIST], check=True)
        sdist = os.path.join(tmp, SDIST_FILE)
    digest = hashlib.sha256(open(sdist, "rb").read()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256} ({SDIST})")
    return sdist


def extract(sdist, chat_dir=HERE, names=None):
    """Writes chat_dir/templates/<family>.jinja for names (family -> file in SDIST_DIR; default: ours)."""
    os.makedirs(os.path.join(chat_dir, "templates"), exist_ok=True)
    with tarfile.open(fetch_sdist(sdist), "r:gz") as tf:
        for family, name in (names or {**TEMPLATES, **MORE_TEMPLATES}).items():
            data = tf.extractfile(SDIST_DIR + name).read()
            with open(os.path.join(chat_dir, "templates", family + ".jinja"), "wb") as f:
                f.write(data)
            print(f"templates/{family}.jinja <- {SDIST_DIR}{name} ({len(data)} bytes)")


def check_all(sdist, out_dir):
    """Every template of the package, 24 conversations each, laid out under out_dir as the C test reads
    its files (tests/chat/templates, tests/chat/fixtures.jsonl, configs/tokenizers/demo)."""
    sdist = fetch_sdist(sdist)
    with tarfile.open(sdist, "r:gz") as tf:
        files = sorted(m.name[len(SDIST_DIR):] for m in tf.getmembers()
                       if m.name.startswith(SDIST_DIR) and m.name.endswith(".jinja"))
    chat_dir = os.path.join(out_dir, "tests", "chat")
    extract(sdist, chat_dir, {re.sub(r"[^a-z0-9.]", "_", f[:-6].lower()): f for f in files})
    shutil.copytree(os.path.join(ROOT, "configs", "tokenizers", "demo"),
                    os.path.join(out_dir, "configs", "tokenizers", "demo"), dirs_exist_ok=True)
    render_all(24, chat_dir, all_more=False)
    print(f"now: cd {out_dir} && <build>/tests/test_chat_template")


def make_env():
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # transformers' _compile_jinja_template: the same environment, filters and globals.
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    class Generation(jinja2.ext.Extension):
        # transformers' {% generation %} ... {% endgeneration %}: marks the assistant's tokens for
        # return_assistant_tokens_mask; when not tracking, as here, the body renders as it is
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


SPECIALS = {
    "qwen3": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen2.5": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwq": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "llama3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3.2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral_nemo": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "mistral_small3.2": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "deepseek_r1": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "minimax_m1": {"bos_token": "<beginning_of_sentence>", "eos_token": "<end_of_sentence>"},
    "features": {"bos_token": "<s>", "eos_token": "</s>"},
    "demo": {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
}

WORDS = ["the", "answer", "is", "42", "Hi", "What", "compute", "x^2", "naïve", "café", "数学", "🙂", "\\frac{1}{2}",
         "\"quoted\"", "it's", "<b>", "&amp;", "tab\there", "line\nbreak", "  padded  ", "\\n", "{{ not_a_tag }}", "{% x %}",
         "</s>", "\u00a0nbsp", "ε", "\\u0041"]


def text(rng, lo=1, hi=14):
    s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))
    if rng.random() < 0.2:
        s = s + rng.choice([".", "?", "!", "\n", " ", "\n\n"])
    if rng.random() < 0.1:
        s = "\n" + s
    return s


def args(rng):
    a = {}
    for k in rng.sample(["city", "unit", "n", "x", "flag", "items", "nested", "ratio", "big", "name"], rng.randint(0, 4)):
        a[k] = rng.choice([text(rng, 1, 3), rng.randint(-5, 1000), True, False, None, 0.5, 3.14159, 1e-7, 2.5e20, -0.125,
                           [1, "two", None], {"deep": {"er": ["ü", 2]}}, "", 1.0, 100.0, 1e16, -0.0])
    return a


def str_args(rng):
    # arguments as strings only: Llama 3.1's builtin-tool form concatenates them
    return {k: text(rng, 1, 2) for k in rng.sample(["query", "code", "q"], rng.randint(0, 2))}


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city, in °C.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string", "description": "the \"city\""},
                                          "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "python", "description": "Run code.\nReturns stdout.",
                                      "parameters": {"type": "object", "properties": {"code": {"type": "string"}},
                                                     "required": []}, "return": {"type": "string"}}},
    {"type": "function", "function": {"name": "search", "description": "", "parameters": {"type": "object",
                                                                                           "properties": {}}}},
    {"type": "function", "function": {"name": "brave_search", "description": "Web search: 5 results.",
                                      "parameters": {"type": "object", "properties": {
                                          "query": {"type": "string"}, "count": {"type": "integer", "minimum": 1,
                                                                                 "maximum": 20}}}}},
]

THINKERS = ("qwen3", "qwq", "deepseek_r1", "features")
BLOCK_CONTENT = ("minimax_m1", "mistral_small3.2")  # templates that read content given as text blocks


def tool_id(rng, ok=True):
    return "".join(rng.choice("abcdefghijABCDEF0123456789") for _ in range(9 if ok else rng.choice([5, 12])))


def user_content(rng, name):
    if name in BLOCK_CONTENT and rng.random() < 0.15:
        return [{"type": "text", "text": text(rng)} for _ in range(rng.randint(1, 2))]
    return text(rng)


def conversation(rng, name, mode):
    """mode: 'plain' (system/user/assistant), 'tools' (tool calls and results), 'think' (reasoning),
    'bad' (roles or ids a template may refuse)."""
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": user_content(rng, name)})
    n_turns = rng.randint(1, 4)
    for turn in range(n_turns):
        u = user_content(rng, name)
        if mode == "tools" and name in ("qwen3", "qwq", "qwen2.5") and rng.random() < 0.1:
            u = "<tool_response>\n" + text(rng) + "\n</tool_response>"
        msgs.append({"role": "user", "content": u})
        if turn == n_turns - 1 and rng.random() < 0.5:
            break  # ends with the user: the generation prompt's case
        content = text(rng)
        m = {"role": "assistant", "content": content}
        if mode == "think" or (mode == "tools" and rng.random() < 0.3):
            r = rng.random()
            if r < 0.4:
                m["content"] = "<think>\n" + text(rng) + "\n</think>\n\n" + content
            elif r < 0.6:
                m["content"] = text(rng) + "</think>" + content
            elif name != "deepseek_r1" and r < 0.9:
                m["reasoning_content"] = text(rng) if rng.random() < 0.9 else None
        if name in BLOCK_CONTENT and rng.random() < 0.15:
            m["content"] = [{"type": "text", "text": text(rng)}]
        if mode == "tools" and rng.random() < 0.7:
            single = name.startswith("llama") or rng.random() < 0.7
            calls = []
            for _ in range(1 if single else rng.randint(2, 3)):
                fn = {"name": rng.choice(["get_weather", "python", "search", "brave_search", "wolfram_alpha"])}
                if name.startswith("llama") and fn["name"] in ("brave_search", "wolfram_alpha"):
                    fn["arguments"] = str_args(rng)
                elif name in ("qwen2.5", "qwen3", "qwq", "minimax_m1", "features") and rng.random() < 0.3:
                    fn["arguments"] = json.dumps(args(rng))
                else:
                    fn["arguments"] = args(rng)
                call = {"type": "function", "id": tool_id(rng), "function": fn}
                calls.append(call)
            m["tool_calls"] = calls
            if name in ("deepseek_r1", "qwen2.5", "qwen3") and rng.random() < 0.25:
                m["content"] = None if name == "deepseek_r1" else ""
            msgs.append(m)
            for c in calls:
                tm = {"role": "tool", "content": text(rng), "tool_call_id": c["id"]}
                if rng.random() < 0.2:
                    tm["name"] = c["function"]["name"]
                if name.startswith("llama") and rng.random() < 0.15:
                    tm["content"] = {"temperature": rng.randint(-10, 40), "unit": "c"}
                msgs.append(tm)
            if rng.random() < 0.6:
                msgs.append({"role": "assistant", "content": text(rng)})
            elif turn < n_turns - 1 and name.startswith("mistral"):
                msgs.append({"role": "assistant", "content": text(rng)})  # the roles must alternate
        else:
            msgs.append(m)
    if mode == "bad":
        r = rng.random()
        if r < 0.3:
            msgs.insert(rng.randint(0, len(msgs)), {"role": rng.choice(["user", "assistant"]), "content": text(rng)})
        elif r < 0.55:
            msgs.append({"role": rng.choice(["developer", "critic"]), "content": text(rng)})
        elif r < 0.8:
            msgs.append({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "id": tool_id(rng, False), "function": {"name": "search", "arguments": {}}}]})
            msgs.append({"role": "tool", "content": text(rng), "tool_call_id": tool_id(rng, rng.random() < 0.5)})
        else:
            msgs.append({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "id": tool_id(rng), "function": {"name": "search", "arguments": {"q": "a"}}},
                {"type": "function", "id": tool_id(rng), "function": {"name": "python", "arguments": {}}}]})
    return msgs


def variables(rng, name, i):
    if name == "demo":  # no tool roles: the demo template refuses them ("bad")
        mode = ["plain", "plain", "think", "bad"][i % 4]
    elif name in THINKERS:
        mode = ["plain", "tools", "think", "bad"][i % 4]
    else:
        mode = ["plain", "tools", "tools", "bad"][i % 4]
    v = {"messages": conversation(rng, name, mode)}
    r = rng.random()
    if r < 0.45:
        v["add_generation_prompt"] = True
    elif r < 0.9:
        v["add_generation_prompt"] = False
    # else: undefined, as a caller that leaves it out
    v.update(SPECIALS.get(name, {"bos_token": "<s>", "eos_token": "</s>"}))
    if mode == "tools" or rng.random() < 0.15:
        if rng.random() < 0.8:
            v["tools"] = rng.sample(TOOLS, rng.randint(1, 4))
        else:
            v["tools"] = None if rng.random() < 0.5 else []
    if name in ("qwen3", "qwq", "deepseek_r1") and rng.random() < 0.5:
        v["enable_thinking"] = rng.random() < 0.5
    if name.startswith("llama"):
        if rng.random() < 0.3:
            v["date_string"] = "01 Jan 2025"
        if rng.random() < 0.4:
            v["tools_in_user_message"] = False
        if name == "llama3.1" and rng.random() < 0.25:
            v["builtin_tools"] = ["code_interpreter", "brave_search", "wolfram_alpha"]
    if name == "features" and rng.random() < 0.5:
        v["extra"] = {"n": rng.randint(-3, 30), "f": rng.choice([0.1, 2.0, -1.5, 1e21, 7]), "s": text(rng, 1, 3)}
    return v


def render_all(per_template, chat_dir=HERE, all_more=True):
    import jinja2

    env = make_env()
    rng = random.Random(20261204)
    names = sorted(f[:-6] for f in os.listdir(os.path.join(chat_dir, "templates")) if f.endswith(".jinja"))
    names += sorted(OWN_TEMPLATES)
    out = []
    for name in names:
        path = os.path.join(ROOT, OWN_TEMPLATES[name]) if name in OWN_TEMPLATES else \
            os.path.join(chat_dir, "templates", name + ".jinja")
        src = open(path, encoding="utf-8").read()
        tmpl = env.from_string(src)
        for i in range(EXTRA_CASES if all_more and name in MORE_TEMPLATES else per_template):
            v = variables(rng, name, i)
            case = {"template": name, "vars": v}
            try:
                case["expected"] = tmpl.render(**v)
            except jinja2.exceptions.TemplateError as e:
                case["error"] = str(e)
            except (TypeError, ValueError, AttributeError):  # Python's own message: the C side fails in its words
                case["error"] = ""
            out.append(case)
    with open(os.path.join(chat_dir, "fixtures.jsonl"), "w", encoding="utf-8") as f:
        for c in out:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"tests/chat/fixtures.jsonl: {len(out)} cases over {len(names)} templates")
    for name in names:
        cs = [c for c in out if c["template"] == name]
        print(f"  {name:18s} {len(cs):4d} cases, {sum('error' in c for c in cs):3d} errors "
              f"({sum(c.get('error') == '' for c in cs)} type errors)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extract", action="store_true", help="write templates/*.jinja from the pinned sdist")
    ap.add_argument("--sdist", help=f"the {SDIST_FILE} already downloaded (default: pip download it)")
    ap.add_argument("--per-template", type=int, default=48, help="conversations per template (default 48)")
    ap.add_argument("--check-all", metavar="DIR", help="every template of the package, laid out in DIR for the C test")
    a = ap.parse_args()
    if a.check_all:
        check_all(a.sdist, a.check_all)
    elif a.extract:
        extract(a.sdist)
    else:
        render_all(a.per_template)


if __name__ == "__main__":
    main()
