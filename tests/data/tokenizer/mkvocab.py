#!/usr/bin/env python3
"""mkvocab.py — the small byte-level BPE vocabularies of tests/data/tokenizer.

Every byte (GPT-2's printable stand-ins), merges that join digits, spaces
before digits, and a few letters, and the ChatML special tokens: small, but
any difference in how a pre-tokenizer cuts numbers changes the ids. One file
per pre-tokenizer name given. Run with PYTHONPATH=<llama.cpp>/gguf-py:
    mkvocab.py OUT.gguf PRE
"""
import sys
import gguf

def byte_stand_ins():
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cps, n = {}, 0
    for b in range(256):
        if b in keep:
            cps[b] = b
        else:
            cps[b] = 256 + n
            n += 1
    return [chr(cps[b]) for b in range(256)]

MERGES = [  # rank order; "Ġ" is the space's stand-in
    "Ġ 1", "1 2", "2 3", "Ġ1 2", "12 3", "Ġ12 3", "0 0", "00 0", "Ġ 2", "2 0", "20 2", "202 4",
    "Ġ 4", "4 2", "Ġ 0", "Ġ0 0", "9 9", "1 9", "19 99", "Ġ 3", "3 .", ". 1", "1 4", "14 1",
    "Ġ a", "a b", "Ġa b", "a n", "Ġ x", "Ġ =", "Ġ v", "v 1", "Ġ $", "$ 1", "$1 0", "$10 0",
    "Ġ Ġ", "ĠĠ 1", "Ċ 4", "1 ,", ", 0", ",0 00", "- 1",
]

def main():
    out, pre = sys.argv[1], sys.argv[2]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + byte_stand_ins()
    types = [3, 3, 3] + [1] * 256
    for m in MERGES:
        a, b = m.split(" ")
        if a + b not in tokens:
            tokens.append(a + b)
            types.append(1)
    w = gguf.GGUFWriter(out, "llama")
    w.add_name("digits vocabulary (" + pre + ")")
    w.add_block_count(1); w.add_context_length(512); w.add_embedding_length(64)
    w.add_feed_forward_length(128); w.add_head_count(2)
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre(pre)
    w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges(MERGES)
    w.add_bos_token_id(0); w.add_eos_token_id(2); w.add_add_bos_token(False)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(progress=False); w.close()
    print(f"wrote {out}: {len(tokens)} tokens, pre {pre}")

if __name__ == "__main__":
    sys.exit(main())
