#!/usr/bin/env python3
"""jinja_oracle.py — Python's jinja2 as the oracle of rackllm's chat
template interpreter (src/text/jinja_*.c).

Every template in tests/data/templates/ (*.jinja: real models' templates,
and constructs.jinja, which exercises the interpreter's whole subset) is
rendered with every message set of messages.json, with
add_generation_prompt true and false, by jinja2 configured exactly as
Hugging Face transformers configures it for apply_chat_template
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
its tojson, raise_exception and strftime_now), and by `test_jinja --render`.
The outputs must be identical byte for byte; where jinja2 raises, rackllm
must fail too, and with the same message when the template raised it.

Usage: jinja_oracle.py TEST_JINJA_BINARY [TEMPLATE_DIR]
"""
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ORACLE_TIME = 1700000000  # test_jinja.c's ORACLE_TIME
RAISED = 13  # exit status of test_jinja for JINJA_RAISED (10 + status)


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.fromtimestamp(ORACLE_TIME).strftime(fmt)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def oracle(env, source, variables):
    """('ok', text) | ('raised', message) | ('error', what)"""
    try:
        return "ok", env.from_string(source).render(**variables)
    except TemplateError as e:
        if type(e) is TemplateError:
            return "raised", e.message
        return "error", f"{type(e).__name__}: {e}"
    except Exception as e:  # a TypeError or the like inside the template
        return "error", f"{type(e).__name__}: {e}"


def ours(binary, tpath, variables, tmp):
    vpath = os.path.join(tmp, "vars.json")
    with open(vpath, "w", encoding="utf-8") as f:
        json.dump(variables, f, ensure_ascii=False)
    r = subprocess.run([binary, "--render", tpath, vpath], capture_output=True, timeout=60)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace").strip()


def compare(case, expect, got):
    kind, value = expect
    rc, out, err = got
    if kind == "ok":
        if rc != 0:
            return f"{case}: jinja2 rendered it, rackllm failed: {err}"
        if out != value.encode("utf-8"):
            return f"{case}: outputs differ\n  jinja2:  {value!r}\n  rackllm: {out.decode('utf-8', 'replace')!r}"
        return None
    if rc == 0:
        return f"{case}: jinja2 failed ({value}), rackllm rendered {out[:200]!r}"
    if kind == "raised" and (rc != RAISED or err != "chat template: " + value):
        return f"{case}: jinja2 raised {value!r}, rackllm: status {rc}, {err!r}"
    return None


def main():
    binary = sys.argv[1]
    tdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "data", "templates")
    messages = json.load(open(os.path.join(tdir, "messages.json"), encoding="utf-8"))
    tokens = json.load(open(os.path.join(tdir, "tokens.json"), encoding="utf-8"))
    env = environment()
    names = sorted(n for n in os.listdir(tdir) if n.endswith(".jinja"))
    failures, rendered, total = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            tpath = os.path.join(tdir, name)
            source = open(tpath, encoding="utf-8").read()
            bos, eos = tokens.get(name, ["<s>", "</s>"])
            for set_name, msgs in messages.items():
                for agp in (True, False):
                    variables = {"messages": msgs, "add_generation_prompt": agp, "bos_token": bos,
                                 "eos_token": eos, "tools": None, "documents": None}
                    expect = oracle(env, source, variables)
                    failure = compare(f"{name} / {set_name} / agp={agp}", expect, ours(binary, tpath, variables, tmp))
                    total += 1
                    rendered += expect[0] == "ok"
                    if failure:
                        failures.append(failure)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"jinja_oracle: {len(names)} templates, {total} renders ({rendered} rendered by jinja2, "
          f"{total - rendered} refused by it), {len(failures)} differences")
    if rendered < total // 2:
        print("jinja_oracle: too few cases render at all", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
