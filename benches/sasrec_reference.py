"""PyTorch port of recx's SASRec training step (UniRec's SASRec, spec section 2.1/2.3).

Reads the batches recx's benchmark wrote (one sample per line: target, then 9 left-padded
history ids), trains with the same settings and prints samples/s on the last line.
Exits with a message (status 3) when torch is not installed.
"""
import argparse
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed (pip install torch)")
    sys.exit(3)


class Layer(nn.Module):
    def __init__(self, d, heads, inner, hid_drop, attn_drop, eps):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.f1, self.f2 = nn.Linear(d, inner), nn.Linear(inner, d)
        self.attn_drop, self.drop = nn.Dropout(attn_drop), nn.Dropout(hid_drop)

    def forward(self, x, mask, last_only=False):
        """x [B, L, d], mask [B, 1, L, L] -> [B, L, d] (or [B, 1, d] with last_only)."""
        b, l, d = x.shape
        xq = x[:, -1:] if last_only else x
        mask = mask[:, :, -1:] if last_only else mask
        lq = xq.shape[1]
        split = lambda t, n: t.view(b, n, self.h, self.dh).transpose(1, 2)
        q, k, v = split(self.q(xq), lq), split(self.k(x), l), split(self.v(x), l)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh) + mask
        ctx = (self.attn_drop(scores.softmax(-1)) @ v).transpose(1, 2).reshape(b, lq, d)
        h = self.ln1(self.drop(self.o(ctx)) + xq)
        return self.ln2(self.drop(self.f2(F.silu(self.f1(h)))) + h)


class SASRec(nn.Module):
    def __init__(self, n_items, d=256, layers=2, heads=16, inner=512, L=9,
                 hid_drop=0.4954053313841075, attn_drop=0.1871672079253271, eps=1e-10):
        super().__init__()
        self.item = nn.Embedding(n_items, d, padding_idx=0)
        self.pos = nn.Embedding(L + 1, d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.drop = nn.Dropout(hid_drop)
        self.layers = nn.ModuleList(Layer(d, heads, inner, hid_drop, attn_drop, eps) for _ in range(layers))
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.data.normal_(0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            m.weight.data[m.padding_idx].zero_()

    def forward(self, seq, last_only=False):
        b, l = seq.shape
        keep = (seq > 0).float()[:, None, None, :]
        causal = torch.tril(torch.ones(l, l))[None, None]
        mask = (1.0 - keep * causal) * -10000.0
        x = self.drop(self.ln(self.item(seq) + self.pos.weight[:l][None]))
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, last_only and i == len(self.layers) - 1)
        return x[:, -1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", required=True)
    ap.add_argument("--n-items", type=int, required=True)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--last-only", action="store_true",
                    help="compute the last block at the last position only (recx's shortcut)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(3418)
    rows = torch.tensor([[int(v) for v in line.split()] for line in open(a.batches)], dtype=torch.long)
    targets, seqs = rows[:, 0], rows[:, 1:]
    model = SASRec(a.n_items)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0003112577321994525, weight_decay=0.0)
    steps = len(rows) // a.batch
    for s in range(steps):
        if s == a.warmup:
            start = time.perf_counter()
        sl = slice(s * a.batch, (s + 1) * a.batch)
        user = model(seqs[sl], a.last_only)
        loss = F.cross_entropy(user @ model.item.weight.t(), targets[sl])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
    elapsed = time.perf_counter() - start
    print(f"loss {loss.item():.4f}", file=sys.stderr)
    print(f"{(steps - a.warmup) * a.batch / elapsed:.1f}")


if __name__ == "__main__":
    main()
