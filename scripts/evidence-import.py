#!/usr/bin/env python3
"""evidence-import.py — turns the published CSVs of Ampere's llama.cpp benchmark
repository into the points of data/evidence.json (rows only: the machines,
sources and assumptions in that file are written by hand and kept).

Usage: scripts/evidence-import.py CSV_ROOT data/evidence.json
CSV_ROOT holds benchmarks/example_results/ of github.com/AmpereComputingAI/llama.cpp
(directory per machine, then per software version, then one CSV per model).
Only rows that use every thread of the machine (n_proc x n_threads = the most
any row of that machine uses) are kept: then each process has 1/n_proc of the
machine, as the planner's partitions do. A stream's speed is the inverse of
the CSV's average per-token generation latency of a process."""
import csv, glob, json, os, sys

MODELS = {"Llama-3.2-1B-Instruct": "llama3.2-1b", "Llama-3.2-3B-Instruct": "llama3.2-3b",
          "Meta-Llama-3-8B-Instruct": "llama3-8b", "llama-3.1-8b-instruct": "llama3.1-8b"}
SOFTWARE = {"llama.cpp": "llama.cpp", "ampere_optimized_llama.cpp": "ampere-llama.cpp"}


def parse_name(path):
    base = os.path.basename(path)[:-4]
    model_file, pp, tg = base.split("@")
    stem, quant = model_file[:-5].rsplit(".", 1) if model_file.count(".gguf") and "." in model_file[:-5] and \
        model_file[:-5].rsplit(".", 1)[1][:1] in "QF" else model_file[:-5].rsplit("-", 1)
    return stem, quant


def rows_of(root):
    out = []
    for path in sorted(glob.glob(os.path.join(root, "*", "*", "*.csv"))):
        machine = path.split(os.sep)[-3]
        soft_dir = path.split(os.sep)[-2]
        soft, version = soft_dir.rsplit("_", 1)
        stem, quant = parse_name(path)
        rows = list(csv.DictReader(open(path)))
        full = max(int(r["n_proc"]) * int(r["n_threads"]) for r in rows)
        rel = os.path.relpath(path, root)
        for i, r in enumerate(rows):
            procs, threads = int(r["n_proc"]), int(r["n_threads"])
            if procs * threads != full:
                continue
            lat = r.get("tg_avg_per_token_latency_sec") or r["tg_avg_latency_sec"]
            out.append([machine, SOFTWARE[soft], version, MODELS[stem], quant, int(r["prompt_size"]),
                        int(r["output_tokens"]), procs, threads, int(r["batch_size"]),
                        round(float(r["tg_throughput_tps"]), 3), round(1.0 / float(lat), 4),
                        "benchmarks/example_results/" + rel, i + 2])
    return out


def main():
    root, out_path = sys.argv[1], sys.argv[2]
    doc = json.load(open(out_path))
    doc["points"].pop("rows", None)
    rows = rows_of(root)
    text = json.dumps(doc, indent=1).replace('"columns": [\n   ', '"columns": [')
    body = ",\n".join("   " + json.dumps(r) for r in rows)
    # One row a line: the file stays readable and diffs stay small.
    text = text[:text.rstrip().rfind("}")].rstrip()[:-1].rstrip() + ',\n  "rows": [\n' + body + "\n  ]\n }\n}"
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, out_path)
    print(f"{len(rows)} points")


if __name__ == "__main__":
    main()
