#!/usr/bin/env python3
"""gguf_template.py — a GGUF's chat template, for the server template test.

  gguf_template.py show FILE          prints tokenizer.chat_template, then a NUL
                                      and the BOS token's text
  gguf_template.py render FILE MSGS   prints what jinja2 (as transformers sets
                                      it up, tests/jinja_oracle.py) renders for
                                      the JSON messages MSGS, add_generation_prompt
                                      true, a leading BOS text left out
  gguf_template.py patch IN OUT OLD NEW  copies IN with OLD replaced by NEW (same
                                      length) inside the template
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from jinja_oracle import environment  # noqa: E402

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def read_kv(path):
    data = open(path, "rb").read()
    assert data[:4] == b"GGUF", "not a GGUF file"
    n_kv = struct.unpack_from("<Q", data, 16)[0]
    pos, kv = 24, {}

    def string(p):
        n = struct.unpack_from("<Q", data, p)[0]
        return data[p + 8:p + 8 + n], p + 8 + n

    def value(t, p):
        if t == 8:
            return string(p)
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, p)
            p += 12
            if et != 8:
                return None, p + n * SIZES[et]
            items = []
            for _ in range(n):
                s, p = string(p)
                items.append(s)
            return items, p
        return data[p:p + SIZES[t]], p + SIZES[t]

    for _ in range(n_kv):
        key, pos = string(pos)
        t = struct.unpack_from("<I", data, pos)[0]
        start = pos + 4
        v, pos = value(t, start)
        kv[key.decode()] = (t, v, start)
    return data, kv


def template_and_bos(path):
    _, kv = read_kv(path)
    tmpl = kv["tokenizer.chat_template"][1].decode()
    bos_id = struct.unpack("<I", kv["tokenizer.ggml.bos_token_id"][1])[0]
    bos = kv["tokenizer.ggml.tokens"][1][bos_id].decode()
    eos_id = struct.unpack("<I", kv["tokenizer.ggml.eos_token_id"][1])[0]
    eos = kv["tokenizer.ggml.tokens"][1][eos_id].decode()
    return tmpl, bos, eos


def main():
    cmd = sys.argv[1]
    if cmd == "render":
        tmpl, bos, eos = template_and_bos(sys.argv[2])
        msgs = json.loads(sys.argv[3])
        out = environment().from_string(tmpl).render(messages=msgs, add_generation_prompt=True, bos_token=bos,
                                                     eos_token=eos, tools=None, documents=None)
        sys.stdout.write(out[len(bos):] if out.startswith(bos) else out)
    elif cmd == "patch":
        data, kv = read_kv(sys.argv[2])
        old, new = sys.argv[4].encode(), sys.argv[5].encode()
        assert len(old) == len(new)
        t, v, start = kv["tokenizer.chat_template"]
        at = start + 8 + v.index(old)
        open(sys.argv[3], "wb").write(data[:at] + new + data[at + len(old):])
    else:
        tmpl, bos, _ = template_and_bos(sys.argv[2])
        sys.stdout.write(tmpl + "\0" + bos)


if __name__ == "__main__":
    main()
