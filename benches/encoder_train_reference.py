#!/usr/bin/env python3
"""The Python side of benches/encoder_train.rs: fine-tuning all-MiniLM-L6-v2 in transformers.

Replays recx's batches (BATCHES: a JSON list of [token id lists, labels]) through
`BertForSequenceClassification` with 3 labels: forward with the loss, backward, global-norm
clipping at 1, AdamW (weight decay 0), dropout on. The first two batches warm up. Prints
`transformers examples_s=<examples per second>`, then the f32 matmul rate of PyTorch and of
numpy (OpenBLAS, whose threads the caller sets with OPENBLAS_NUM_THREADS) for 1024 x 384
times 384 x 1536.

    python benches/encoder_train_reference.py MODEL_DIR BATCHES --threads 2
"""

import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("batches")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=3)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    batches = json.load(open(a.batches))
    examples = 0
    start = time.perf_counter()
    for k, (ids, labels) in enumerate(batches):
        if k == 2:
            examples = 0
            start = time.perf_counter()
        ids = torch.tensor(ids)
        out = model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            labels=torch.tensor(labels),
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        examples += len(labels)
    secs = time.perf_counter() - start
    print(f"transformers examples_s={examples / secs:.2f}")

    def rate(matmul, a, b):
        best = float("inf")
        for _ in range(10):
            t = time.perf_counter()
            matmul(a, b)
            best = min(best, time.perf_counter() - t)
        return 2 * 1024 * 384 * 1536 / best / 1e9

    a, b = torch.rand(1024, 384), torch.rand(384, 1536)
    line = f"matmul 1024x384x1536 f32, {torch.get_num_threads()} threads: torch {rate(torch.matmul, a, b):.1f} GFLOP/s"
    try:
        import numpy as np

        line += f", numpy {rate(np.matmul, a.numpy(), b.numpy()):.1f} GFLOP/s"
    except ImportError:
        line += ", numpy not installed"
    print(line)


if __name__ == "__main__":
    main()
