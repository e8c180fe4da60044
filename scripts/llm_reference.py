#!/usr/bin/env python3
"""Reference forward passes that made recx's LLM golden fixtures (tests/fixtures/llm).

Everything here is independent of recx: a plain numpy Llama-family forward pass (HF layout,
half-split RoPE, GQA, SwiGLU, RMSNorm) over weights read with `safetensors` / `gguf`
(llama.cpp's own Python package, whose dequantizers are the reference for recx's).

    python scripts/llm_reference.py tiny             # tiny random-weight fixtures + goldens
    python scripts/llm_reference.py smollm2 GGUF     # golden for SmolLM2-135M-Instruct (needs transformers)

`tiny` writes, for three architectures (llama untied f32, qwen2 tied f16 with Q/K/V biases,
phi3 fused bf16), an HF folder and the greedy logits of the first decoding steps for a fixed
prompt; a quantized GGUF of the llama model (Q8_0/Q4_0/Q4_1/F16/BF16 tensors, Q/K rows permuted
the way llama.cpp's converter does) with its own golden; a Q4_K/Q6_K dequantization fixture; and
a vocab-8 model whose five best 3-token continuations are found by exhaustive search (for the
beam-search test). When torch+transformers are importable, the numpy forward is also checked
against transformers on every HF fixture.

Tolerance used by the Rust tests: |recx - reference| <= 1e-3 on logits (f32 everywhere).
"""

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "llm"
PROMPT = [1, 7, 3, 12, 5, 30, 2]
STEPS = 4


def rms_norm(x, w, eps):
    x = x.astype(np.float32)
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)) * w


def rope_tables(positions, head_dim, theta):
    inv_freq = (1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim))).astype(np.float32)
    ang = np.outer(np.asarray(positions, dtype=np.float32), inv_freq).astype(np.float32)
    return np.cos(ang), np.sin(ang)


def apply_rope(x, cos, sin):
    # x [H, L, D], half-split layout
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def split_fused(cfg, w):
    """Phi-3 fused tensors -> per-projection tensors (HF names)."""
    out = dict(w)
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    q, kv, inter = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d, cfg["intermediate_size"]
    for name in list(w):
        if name.endswith("qkv_proj.weight"):
            p = name[: -len("qkv_proj.weight")]
            t = out.pop(name)
            out[p + "q_proj.weight"], out[p + "k_proj.weight"], out[p + "v_proj.weight"] = t[:q], t[q:q + kv], t[q + kv:]
        if name.endswith("gate_up_proj.weight"):
            p = name[: -len("gate_up_proj.weight")]
            t = out.pop(name)
            out[p + "gate_proj.weight"], out[p + "up_proj.weight"] = t[:inter], t[inter:]
    return out


def forward(cfg, w, ids):
    """Logits [L, V] for a token list (no padding, positions 0..L-1)."""
    w = split_fused(cfg, w)
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or H // nh
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    L = len(ids)
    x = w["model.embed_tokens.weight"][ids].astype(np.float32)
    cos, sin = rope_tables(range(L), d, theta)
    causal = np.triu(np.full((L, L), -np.inf, dtype=np.float32), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = h @ w[p + f"self_attn.{name}.weight"].T
            b = w.get(p + f"self_attn.{name}.bias")
            return y + b if b is not None else y

        q = proj("q_proj").reshape(L, nh, d).transpose(1, 0, 2)
        k = proj("k_proj").reshape(L, nkv, d).transpose(1, 0, 2)
        v = proj("v_proj").reshape(L, nkv, d).transpose(1, 0, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        g = nh // nkv
        k, v = np.repeat(k, g, axis=0), np.repeat(v, g, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d) + causal
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = x + a.transpose(1, 0, 2).reshape(L, nh * d) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def greedy_golden(cfg, w, prompt=PROMPT, steps=STEPS):
    ids, logits = list(prompt), []
    for _ in range(steps):
        last = forward(cfg, w, ids)[-1]
        logits.append([float(v) for v in last])
        ids.append(int(np.argmax(last)))
    return {"prompt": list(prompt), "tokens": ids[len(prompt):], "logits": logits, "tolerance": 1e-3}


def random_weights(cfg, rng, std=0.2):
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = H // nh
    n = lambda *s: (rng.standard_normal(s) * std).astype(np.float32)
    w = {"model.embed_tokens.weight": n(V, H), "model.norm.weight": (1 + n(H)).astype(np.float32)}
    if not cfg.get("tie_word_embeddings"):
        w["lm_head.weight"] = n(V, H)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = (1 + n(H)).astype(np.float32)
        w[p + "post_attention_layernorm.weight"] = (1 + n(H)).astype(np.float32)
        q, k, v = n(nh * d, H), n(nkv * d, H), n(nkv * d, H)
        gate, up = n(I, H), n(I, H)
        if cfg["model_type"] == "phi3":
            w[p + "self_attn.qkv_proj.weight"] = np.concatenate([q, k, v])
            w[p + "mlp.gate_up_proj.weight"] = np.concatenate([gate, up])
        else:
            w[p + "self_attn.q_proj.weight"], w[p + "self_attn.k_proj.weight"], w[p + "self_attn.v_proj.weight"] = q, k, v
            w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"] = gate, up
        if cfg["model_type"] == "qwen2":
            w[p + "self_attn.q_proj.bias"], w[p + "self_attn.k_proj.bias"], w[p + "self_attn.v_proj.bias"] = n(nh * d), n(nkv * d), n(nkv * d)
        w[p + "self_attn.o_proj.weight"] = n(H, nh * d)
        w[p + "mlp.down_proj.weight"] = n(H, I)
    return w


def tiny_config(model_type, tied, vocab=48):
    return {
        "model_type": model_type,
        "architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "phi3": "Phi3ForCausalLM"}[model_type]],
        "vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": tied, "max_position_embeddings": 128, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "torch_dtype": "float32", "rope_scaling": None,
    }


def save_hf(folder, cfg, w, dtype):
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    save_file({k: v.astype(dtype) for k, v in w.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    # What recx reads back: the stored precision, as f32.
    return {k: v.astype(dtype).astype(np.float32) for k, v in w.items()}


def check_with_transformers(folder, cfg, w):
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError:
        print("  (transformers not importable: numpy forward not cross-checked)")
        return
    model = AutoModelForCausalLM.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    with torch.no_grad():
        ref = model(torch.tensor([PROMPT])).logits[0].numpy()
    diff = np.abs(ref - forward(cfg, w, PROMPT)).max()
    print(f"  numpy vs transformers max |diff| = {diff:.2e}")
    assert diff < 1e-4, diff


def permute_qk(t, n_head):
    """llama.cpp convert_hf_to_gguf.py `LlamaModel.permute`."""
    return t.reshape(n_head, 2, t.shape[0] // n_head // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)


def write_gguf(path, cfg, w):
    """The llama fixture as llama.cpp would convert it, with a mix of tensor types."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_rope_freq_base(cfg["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_rope_dimension_count(cfg["hidden_size"] // cfg["num_attention_heads"])
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    plan = {  # HF name suffix -> (GGUF name, type)
        "self_attn.q_proj.weight": ("attn_q.weight", Q.Q4_0),
        "self_attn.k_proj.weight": ("attn_k.weight", Q.Q4_1),
        "self_attn.v_proj.weight": ("attn_v.weight", Q.F16),
        "self_attn.o_proj.weight": ("attn_output.weight", Q.BF16),
        "mlp.gate_proj.weight": ("ffn_gate.weight", Q.Q4_1),
        "mlp.up_proj.weight": ("ffn_up.weight", Q.Q8_0),
        "mlp.down_proj.weight": ("ffn_down.weight", Q.Q4_0),
        "input_layernorm.weight": ("attn_norm.weight", Q.F32),
        "post_attention_layernorm.weight": ("ffn_norm.weight", Q.F32),
    }

    def add(gname, t, qtype):
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(gname, t.astype(np.float16 if qtype == Q.F16 else np.float32))
        else:
            writer.add_tensor(gname, gguf.quants.quantize(t, qtype), raw_dtype=qtype)

    add("token_embd.weight", w["model.embed_tokens.weight"], Q.Q8_0)
    add("output_norm.weight", w["model.norm.weight"], Q.F32)
    add("output.weight", w["lm_head.weight"], Q.Q8_0)
    for i in range(cfg["num_hidden_layers"]):
        for suffix, (gname, qtype) in plan.items():
            t = w[f"model.layers.{i}.{suffix}"]
            if suffix.startswith("self_attn.q_proj"):
                t = permute_qk(t, nh)
            elif suffix.startswith("self_attn.k_proj"):
                t = permute_qk(t, nkv)
            add(f"blk.{i}.{gname}", t, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    # The reference reads the file back with gguf's own reader and dequantizer.
    return read_gguf(path)[1]


GGUF_NAMES = {
    "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def read_gguf(path):
    """A llama-architecture GGUF as (HF config, HF-layout f32 weights): gguf's dequantizer, and
    the inverse of llama.cpp's Q/K permutation."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = lambda k: reader.fields[k].contents() if k in reader.fields else None
    cfg = {
        "model_type": "llama", "hidden_size": field("llama.embedding_length"),
        "intermediate_size": field("llama.feed_forward_length"), "num_hidden_layers": field("llama.block_count"),
        "num_attention_heads": field("llama.attention.head_count"),
        "num_key_value_heads": field("llama.attention.head_count_kv"),
        "rope_theta": field("llama.rope.freq_base") or 10000.0,
        "rms_norm_eps": field("llama.attention.layer_norm_rms_epsilon"),
    }
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    inv = lambda t, n: t.reshape(n, t.shape[0] // n // 2, 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)
    w = {}
    for t in reader.tensors:
        arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
        arr = arr.reshape([int(x) for x in reversed(t.shape.tolist())])
        if t.name == "token_embd.weight":
            w["model.embed_tokens.weight"] = arr
        elif t.name == "output_norm.weight":
            w["model.norm.weight"] = arr
        elif t.name == "output.weight":
            w["lm_head.weight"] = arr
        else:
            _, layer, rest = t.name.split(".", 2)
            if rest == "attn_q.weight":
                arr = inv(arr, nh)
            elif rest == "attn_k.weight":
                arr = inv(arr, nkv)
            w[f"model.layers.{layer}.{GGUF_NAMES[rest]}"] = arr
    cfg["vocab_size"] = w["model.embed_tokens.weight"].shape[0]
    cfg["tie_word_embeddings"] = "lm_head.weight" not in w
    return cfg, w


def kquant_fixture(rng):
    """Random Q4_K / Q6_K blocks (with sane f16 scales) and gguf's dequantization of them."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    out = {}
    path = OUT / "kquants.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    for name, qtype, nbytes, scale_at in [("q4k", Q.Q4_K, 144, [0, 2]), ("q6k", Q.Q6_K, 210, [208])]:
        blocks = rng.integers(0, 256, size=(2, nbytes), dtype=np.uint8)
        for off in scale_at:
            scales = (rng.random(2) * 0.05 + 0.01).astype(np.float16)
            blocks[:, off:off + 2] = scales.view(np.uint8).reshape(2, 2)
        writer.add_tensor(name, blocks, raw_dtype=qtype)
        out[name] = [float(v) for v in gguf.quants.dequantize(blocks, qtype).reshape(-1)]
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (OUT / "kquants.json").write_text(json.dumps(out))


def beam_fixture(rng):
    """A vocab-8 llama whose best 3-token continuations are known by exhaustive search, and where
    greedy decoding misses the best one (so the test shows beam search doing its job)."""
    import itertools

    for attempt in range(200):
        cfg = tiny_config("llama", False, vocab=8)
        cfg["num_hidden_layers"] = 1
        w = random_weights(cfg, rng, std=0.6)
        prompt = [1, 4, 6]
        scores = {}
        for seq in itertools.product(range(8), repeat=3):
            ids, total = list(prompt), 0.0
            logits = forward(cfg, w, prompt + list(seq))
            for j, t in enumerate(seq):
                row = logits[len(prompt) - 1 + j]
                total += float(row[t] - (row.max() + np.log(np.exp(row - row.max()).sum())))
            scores[seq] = total
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        greedy, ids = [], list(prompt)
        for _ in range(3):
            greedy.append(int(np.argmax(forward(cfg, w, ids)[-1])))
            ids.append(greedy[-1])
        best = list(ranked[0][0])
        if greedy != best and ranked[0][1] - ranked[1][1] > 1e-3:
            r = save_hf(OUT / "beam_llama", cfg, w, np.float32)
            assert r is not None
            top5 = [{"tokens": list(s), "sum_logprob": v} for s, v in ranked[:5]]
            (OUT / "beam_llama" / "expected.json").write_text(json.dumps(
                {"prompt": prompt, "greedy": greedy, "best": top5, "attempt": attempt}, indent=1))
            print(f"beam fixture: best {best} ({ranked[0][1]:.3f}) vs greedy {greedy} ({scores[tuple(greedy)]:.3f})")
            return
    raise SystemExit("no beam fixture found")


def tiny():
    rng = np.random.default_rng(20261129)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, model_type, tied, dtype in [("llama_f32", "llama", False, np.float32),
                                           ("qwen2_f16", "qwen2", True, np.float16),
                                           ("phi3_bf16", "phi3", False, "bfloat16")]:
        cfg = tiny_config(model_type, tied)
        w = random_weights(cfg, rng)
        if dtype == "bfloat16":
            folder = OUT / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.json").write_text(json.dumps(cfg, indent=1))
            import torch
            from safetensors.torch import save_file
            save_file({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in w.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
            w = {k: torch.from_numpy(v).to(torch.bfloat16).float().numpy() for k, v in w.items()}
        else:
            w = save_hf(OUT / name, cfg, w, dtype)
        (OUT / name / "golden.json").write_text(json.dumps(greedy_golden(cfg, w)))
        print(name)
        check_with_transformers(OUT / name, cfg, w)
        if name == "llama_f32":
            hf = write_gguf(OUT / "llama_quant.gguf", cfg, w)
            (OUT / "llama_quant_golden.json").write_text(json.dumps(greedy_golden(cfg, hf)))
            print("llama_quant.gguf")
    kquant_fixture(rng)
    beam_fixture(rng)


def smollm2(gguf_path):
    """Golden for SmolLM2: numpy forward over gguf's dequantization of the file; the chat
    prompt is tokenized by transformers' GGUF tokenizer loader. Keeps the top-20 logits of the
    first greedy steps (the full vocabulary would make a large fixture)."""
    from transformers import AutoTokenizer

    p = Path(gguf_path)
    tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    cfg, w = read_gguf(p)
    text = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    steps, out_ids, rows = 4, list(ids), []
    for _ in range(steps):
        logits = forward(cfg, w, out_ids)[-1]
        top = np.argsort(-logits)[:20]
        rows.append({"top_ids": [int(t) for t in top], "top_logits": [float(logits[t]) for t in top]})
        out_ids.append(int(top[0]))
    golden = {"prompt_text": text, "prompt": ids, "tokens": out_ids[len(ids):], "steps": rows, "tolerance": 2e-3,
              "reference": "numpy forward over gguf-py dequantized weights"}
    (OUT / "smollm2_golden.json").write_text(json.dumps(golden, indent=1))
    print("tokens", out_ids[len(ids):], repr(tok.decode(out_ids[len(ids):])))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "tiny":
        tiny()
    elif len(sys.argv) >= 3 and sys.argv[1] == "smollm2":
        smollm2(sys.argv[2])
    else:
        raise SystemExit(__doc__)
