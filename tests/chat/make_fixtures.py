#!/usr/bin/env python3
"""tests/chat/make_fixtures.py — writes tests/chat/fixtures.jsonl: chat templates (tests/chat/templates/*.jinja,
written out after the public tokenizer configs of Qwen3, Qwen2.5, Llama 3.1, Mistral v0.3, DeepSeek-R1 and
MiniMax, plus features.jinja for the rest of the subset) rendered over a few hundred generated conversations
with tool calls, tool messages, reasoning and Unicode, by jinja2 configured as transformers'
apply_chat_template configures it. tests/test_chat_template.c renders the same cases in C and compares.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install jinja2 && /tmp/v/bin/python tests/chat/make_fixtures.py

Each line: {"template": name, "vars": {...}, "expected": text} or {"template", "vars", "error": message}
(raise_exception and the like: the C renderer must fail with a message containing it).
"""
import json
import os
import random
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def make_env():
    # transformers' _compile_jinja_template: the same environment, filters and globals.
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


SPECIALS = {
    "qwen3": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen2.5": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "llama3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "deepseek_r1": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "minimax_m1": {"bos_token": "<beginning_of_sentence>", "eos_token": "<end_of_sentence>"},
    "features": {"bos_token": "<s>", "eos_token": "</s>"},
}

WORDS = ["the", "answer", "is", "42", "Hi", "What", "compute", "x^2", "naïve", "café", "数学", "🙂", "\\frac{1}{2}",
         "\"quoted\"", "it's", "<b>", "&amp;", "tab\there", "line\nbreak", "  padded  ", "\\n", "{{ not_a_tag }}", "{% x %}"]


def text(rng, lo=1, hi=14):
    s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))
    if rng.random() < 0.2:
        s = s + rng.choice([".", "?", "!", "\n", " "])
    if rng.random() < 0.1:
        s = "\n" + s
    return s


def args(rng):
    a = {}
    for k in rng.sample(["city", "unit", "n", "x", "flag", "items", "nested", "ratio", "big", "name"], rng.randint(0, 4)):
        a[k] = rng.choice([text(rng, 1, 3), rng.randint(-5, 1000), True, False, None, 0.5, 3.14159, 1e-7, 2.5e20, -0.125,
                           [1, "two", None], {"deep": {"er": ["ü", 2]}}, ""])
    return a


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
]


def tool_id(rng, ok=True):
    return "".join(rng.choice("abcdefghij0123456789") for _ in range(9 if ok else 5))


def conversation(rng, name):
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": text(rng)})
    for turn in range(rng.randint(1, 4)):
        msgs.append({"role": "user", "content": text(rng) if rng.random() < 0.9 else
                     "<tool_response>\n" + text(rng) + "\n</tool_response>"})
        last = turn == 3 or rng.random() < 0.3
        if last and rng.random() < 0.5:
            break
        content = text(rng)
        if rng.random() < 0.3:
            content = "<think>\n" + text(rng) + "\n</think>\n\n" + content
        m = {"role": "assistant", "content": content}
        if rng.random() < 0.15:
            m["reasoning_content"] = text(rng)
        if rng.random() < 0.35:
            calls = []
            for _ in range(1 if name in ("llama3.1",) or rng.random() < 0.7 else 2):
                fn = {"name": rng.choice(["get_weather", "python", "search"]),
                      "arguments": args(rng) if rng.random() < 0.8 else json.dumps(args(rng))}
                if name == "deepseek_r1" or name == "mistral":
                    fn["arguments"] = args(rng)
                calls.append({"type": "function", "id": tool_id(rng, rng.random() < 0.95), "function": fn})
            m["tool_calls"] = calls
            if name in ("deepseek_r1",) and rng.random() < 0.3:
                m["content"] = None
            msgs.append(m)
            for c in calls:
                tm = {"role": "tool", "content": text(rng), "tool_call_id": c["id"]}
                if rng.random() < 0.2:
                    tm["name"] = c["function"]["name"]
                msgs.append(tm)
            if rng.random() < 0.5:
                msgs.append({"role": "assistant", "content": text(rng)})
        else:
            msgs.append(m)
    return msgs


def main():
    env = make_env()
    rng = random.Random(20240601)
    names = sorted(f[:-6] for f in os.listdir(os.path.join(HERE, "templates")) if f.endswith(".jinja"))
    out = []
    for name in names:
        src = open(os.path.join(HERE, "templates", name + ".jinja"), encoding="utf-8").read()
        tmpl = env.from_string(src)
        for i in range(60):
            v = {"messages": conversation(rng, name), "add_generation_prompt": rng.random() < 0.5}
            v.update({k: t for k, t in SPECIALS[name].items() if t is not None})
            if rng.random() < 0.4:
                v["tools"] = rng.sample(TOOLS, rng.randint(1, 3))
            elif rng.random() < 0.2:
                v["tools"] = None
            if name == "qwen3" and rng.random() < 0.5:
                v["enable_thinking"] = rng.random() < 0.5
            if name == "llama3.1":
                if rng.random() < 0.3:
                    v["date_string"] = "01 Jan 2025"
                if rng.random() < 0.4:
                    v["tools_in_user_message"] = False
                if rng.random() < 0.2:
                    v["builtin_tools"] = ["code_interpreter", "brave_search", "wolfram_alpha"]
            case = {"template": name, "vars": v}
            try:
                case["expected"] = tmpl.render(**v)
            except jinja2.exceptions.TemplateError as e:
                case["error"] = str(e)
            except (TypeError, ValueError) as e:  # e.g. a str + a dict in a template: the C side fails too
                case["error"] = ""
            out.append(case)
    with open(os.path.join(HERE, "fixtures.jsonl"), "w", encoding="utf-8") as f:
        for c in out:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    n_err = sum("error" in c for c in out)
    print(f"tests/chat/fixtures.jsonl: {len(out)} cases ({n_err} expected errors) over {len(names)} templates")


if __name__ == "__main__":
    main()
