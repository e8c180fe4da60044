#!/usr/bin/env python3
"""The Python side of benches/llm_generate.rs: greedy generation speed of SmolLM2-135M in
transformers (and llama.cpp when `llama-cpp-python` is installed), on the same weights recx uses.

transformers gets the GGUF dequantized to f32 by gguf-py (the same values recx computes with),
loaded into a `LlamaForCausalLM`; llama.cpp runs the Q4_1 file directly (the CPU ceiling).
Prints one `name tok_s=<float>` line per engine.

    python benches/llm_reference.py GGUF --prompt 1,2,3 --new 128 --threads 2
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def bench_transformers(gguf_path, prompt, new, threads):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from llm_reference import read_gguf

    torch.set_num_threads(threads)
    cfg, w = read_gguf(gguf_path)
    config = LlamaConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"], rope_theta=cfg["rope_theta"],
        rms_norm_eps=cfg["rms_norm_eps"], tie_word_embeddings=cfg["tie_word_embeddings"],
        max_position_embeddings=8192, bos_token_id=None, eos_token_id=None, pad_token_id=0,
    )
    model = LlamaForCausalLM(config).eval()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    model.tie_weights()
    ids = torch.tensor([prompt])

    def run(n):
        with torch.inference_mode():
            return model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

    run(8)  # warm-up
    t0 = time.perf_counter()
    out = run(new)
    dt = time.perf_counter() - t0
    assert out.shape[1] == len(prompt) + new
    print(f"transformers tok_s={new / dt:.3f} first={out[0, len(prompt):len(prompt) + 8].tolist()}", flush=True)
    if threads > 1:
        # On a shared, oversubscribed machine OpenMP's spinning threads can make torch slower with
        # more threads; report one thread too so the ratio is never flattered by that.
        torch.set_num_threads(1)
        run(8)
        t0 = time.perf_counter()
        run(new)
        dt = time.perf_counter() - t0
        print(f"transformers-1thread tok_s={new / dt:.3f}", flush=True)


def bench_llama_cpp(gguf_path, prompt, new, threads):
    try:
        from llama_cpp import Llama
    except ImportError:
        print("llama.cpp skipped (llama-cpp-python not installed)", flush=True)
        return
    llm = Llama(model_path=str(gguf_path), n_threads=threads, n_threads_batch=threads, n_ctx=512, verbose=False)

    def run(n):
        toks = []
        for t in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            toks.append(t)
            if len(toks) == n:
                break
        return toks

    run(8)
    t0 = time.perf_counter()
    toks = run(new)
    dt = time.perf_counter() - t0
    print(f"llama.cpp tok_s={len(toks) / dt:.3f} first={toks[:8]}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--prompt", required=True, help="comma-separated token ids")
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    prompt = [int(x) for x in a.prompt.split(",")]
    bench_transformers(a.gguf, prompt, a.new, a.threads)
    bench_llama_cpp(a.gguf, prompt, a.new, a.threads)


if __name__ == "__main__":
    main()
