#!/usr/bin/python3
"""train_llama.py — the PyTorch oracle of rackllm's trainer (issue 13).

Trains, in PyTorch on the CPU (Debian's python3-torch), the very model that
bench/train_speed.c trains in C: it reads the run that `train_speed --dump
DIR` wrote (config.txt, layout.tsv, init.f32, batches.i32), builds the same
Llama (token embedding; per layer RMSNorm, Q/K/V, ggml's "normal" RoPE on
adjacent pairs, grouped-query causal attention, output projection, RMSNorm,
SwiGLU; final RMSNorm; tied or separate output), starts from the same
weights and takes the same batches in the same order, with the same
optimiser (AdamW, decay on matrices only; global-norm clipping; linear
warm-up then cosine to a floor). It prints each step's loss and the tokens
per second of the steps after the first, the way train_speed does.

    /usr/bin/python3 bench/oracles/train_llama.py DIR --threads 2

Only a benchmark needs it; no test does.
"""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_run(d):
    cfg = {}
    for line in open(os.path.join(d, "config.txt")):
        k, v = line.strip().split("=", 1)
        cfg[k] = float(v) if "." in v or "e" in v else int(v)
    layout = []
    for line in open(os.path.join(d, "layout.tsv")):
        name, rows, cols, off, decay = line.rstrip("\n").split("\t")
        layout.append((name, int(rows), int(cols), int(off), decay == "1"))
    flat = np.fromfile(os.path.join(d, "init.f32"), dtype=np.float32)
    T, B = cfg["seq_len"], cfg["batch"]
    batches = np.fromfile(os.path.join(d, "batches.i32"), dtype=np.int32).reshape(-1, B, T + 1)
    weights = {}
    for name, rows, cols, off, decay in layout:
        w = torch.tensor(flat[off:off + rows * cols].reshape(rows, cols) if rows > 1 else flat[off:off + cols])
        weights[name] = (w.requires_grad_(), decay)
    return cfg, weights, torch.tensor(batches.astype(np.int64))


def rope_tables(cfg):
    hd, T = cfg["head_dim"], cfg["seq_len"]
    inv = cfg["rope_base"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * cfg["rope_freq_scale"] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):
    """x: (B, T, H, hd); rotates adjacent pairs (2i, 2i+1) by position."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(cfg, W, tokens, cos, sin):
    B, T1 = tokens.shape
    T, H, KV, hd, eps = T1 - 1, cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"], cfg["rms_eps"]
    x = W["token_embd.weight"][0][tokens[:, :T]]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg["n_layer"]):
        p = lambda n: W[f"blk.{l}.{n}.weight"][0]
        h = rmsnorm(x, p("attn_norm"), eps)
        q = rope((h @ p("attn_q").T).view(B, T, H, hd), cos, sin).transpose(1, 2)
        k = rope((h @ p("attn_k").T).view(B, T, KV, hd), cos, sin).transpose(1, 2)
        v = (h @ p("attn_v").T).view(B, T, KV, hd).transpose(1, 2)
        k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = torch.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        x = x + (att @ v).transpose(1, 2).reshape(B, T, H * hd) @ p("attn_output").T
        h = rmsnorm(x, p("ffn_norm"), eps)
        x = x + (F.silu(h @ p("ffn_gate").T) * (h @ p("ffn_up").T)) @ p("ffn_down").T
    x = rmsnorm(x, W["output_norm.weight"][0], eps)
    out = W["output.weight"][0] if "output.weight" in W else W["token_embd.weight"][0]
    logits = x @ out.T
    return F.cross_entropy(logits.reshape(B * T, -1), tokens[:, 1:].reshape(-1))


def lr_at(cfg, step):
    lr, warm, total = cfg["lr"], cfg["warmup"], cfg["steps"]
    if warm > 0 and step < warm:
        return lr * (step + 1) / warm
    frac = min(max((step - warm) / (total - warm), 0.0), 1.0) if total > warm else 1.0
    lo = lr * cfg["min_lr_frac"]
    return lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * frac))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=0, help="at most this many (default: the run's)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, W, batches = read_run(a.dir)
    groups = [{"params": [w for w, d in W.values() if d], "weight_decay": cfg["weight_decay"]},
              {"params": [w for w, d in W.values() if not d], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"])
    cos, sin = rope_tables(cfg)
    params = [w for w, _ in W.values()]
    steps = min(a.steps or cfg["steps"], batches.shape[0])
    t0 = 0.0
    for st in range(steps):
        if st == 1:
            t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, st)
        opt.zero_grad(set_to_none=True)
        loss = forward(cfg, W, batches[st], cos, sin)
        loss.backward()
        if cfg["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        opt.step()
        print(f"step {st} loss {loss.item():.6f}", flush=True)
    secs = time.perf_counter() - t0
    tokens = (steps - 1) * cfg["batch"] * cfg["seq_len"]
    print(f"train_llama.py: {steps} steps of {cfg['batch']} x {cfg['seq_len']} tokens, "
          f"{tokens / secs if steps > 1 else 0:.0f} tok/s (steps 1..{steps - 1}), torch {torch.__version__}, "
          f"{a.threads} threads")


if __name__ == "__main__":
    main()
