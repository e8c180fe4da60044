#!/usr/bin/env python3
"""The Python side of benches/llm_train.rs: LoRA alignment training in transformers + peft.

Replays recx's micro-batches (DIR/batches.jsonl) on recx's copy of the base model (DIR/model,
an HF folder with the <user>/<item> rows already added): LoRA on q/k/v/o, the embedding table
trained (`modules_to_save`, as the original), two connectors Linear-GELU-Linear whose outputs
are added at the placeholder positions, loss on the masked answer tokens only, token-weighted
accumulation over the micro-batches of a step, AdamW, clipping. Micro-batches are right-padded
to their longest sample, as recx does. `--gradient-checkpointing` turns on HF's (non-reentrant)
gradient checkpointing. Prints `peft tok_s=<real tokens per second>` and
`peft peak_rss_mb=<peak resident memory over the timed steps>`.

    python benches/llm_train_reference.py DIR --threads 2 --r 16 --alpha 32 --dropout 0.05
"""

import argparse
import json
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    a = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    root = Path(a.dir)
    model = AutoModelForCausalLM.from_pretrained(root / "model", torch_dtype=torch.float32)
    cfg = LoraConfig(
        r=a.r,
        lora_alpha=a.alpha,
        lora_dropout=a.dropout,
        target_modules=a.targets.split(","),
        modules_to_save=["embed_tokens"],
        task_type="CAUSAL_LM",
    )
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, cfg)
    model.train()
    hidden = model.config.hidden_size
    batches = [json.loads(line) for line in open(root / "batches.jsonl")]
    first = batches[0][0][0]
    d_rec = len(first["users"][0][1]) if first["users"] else len(first["items"][0][1])

    def connector():
        return torch.nn.Sequential(
            torch.nn.Linear(d_rec, hidden // 2), torch.nn.GELU(), torch.nn.Linear(hidden // 2, hidden)
        )

    users, items = connector(), connector()
    params = [p for p in model.parameters() if p.requires_grad]
    params += list(users.parameters()) + list(items.parameters())
    optim = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    embed = model.get_input_embeddings()

    def loss_of(micro):
        n = max(len(s["ids"]) for s in micro)
        ids = torch.zeros(len(micro), n, dtype=torch.long)
        mask = torch.zeros(len(micro), n, dtype=torch.long)
        labels = torch.full((len(micro), n), -100, dtype=torch.long)
        for r, s in enumerate(micro):
            k = len(s["ids"])
            ids[r, :k] = torch.tensor(s["ids"])
            mask[r, :k] = 1
            lm = torch.tensor(s["loss_mask"])
            labels[r, :k] = torch.where(lm, torch.tensor(s["ids"]), torch.tensor(-100))
        x = embed(ids)
        for conn, key in ((users, "users"), (items, "items")):
            at = [(r, p) for r, s in enumerate(micro) for p, _ in s[key]]
            if at:
                vecs = torch.tensor([v for s in micro for _, v in s[key]], dtype=torch.float32)
                rows, cols = zip(*at)
                x = x.index_put((torch.tensor(rows), torch.tensor(cols)), conn(vecs), accumulate=True)
        out = model(inputs_embeds=x, attention_mask=mask, labels=labels)
        tokens = int((labels[:, 1:] != -100).sum())
        return out.loss, tokens

    def step(parts):
        total = sum(int(sum(s["loss_mask"][1:])) for m in parts for s in m)
        for micro in parts:
            loss, tokens = loss_of(micro)
            (loss * tokens / max(total, 1)).backward()
        torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
        optim.step()
        optim.zero_grad()

    # Warm-up over the first micro-batch (recx: a whole step at learning rate 0 there).
    loss, _ = loss_of(batches[0][0])
    loss.backward()
    optim.zero_grad()
    real = sum(len(s["ids"]) for parts in batches for m in parts for s in m)
    reset_peak_rss()
    t = time.perf_counter()
    for parts in batches:
        step(parts)
    secs = time.perf_counter() - t
    print(f"peft tok_s={real / secs:.3f} secs={secs:.2f} torch={torch.__version__}")
    print(f"peft peak_rss_mb={peak_rss_mb():.1f}")


def reset_peak_rss():
    """Starts a new peak-RSS window (Linux: 5 into /proc/self/clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


if __name__ == "__main__":
    main()
