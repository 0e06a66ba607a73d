"""The PyTorch peer of `sfnap bench --train`: whole training steps (batch, forward,
backward, optimizer step) of the same models as `sfnap train`, and a matmul sweep
giving the device's measured matmul peak.

Models (as src/model/gpt.rs and src/model/mlp.rs build them):

- gpt: `sfnap train --model gpt --data text`: character-level, vocabulary = the
  distinct characters of data/licenses.txt, context 64, width 64, 4 heads, 2
  pre-LN blocks (LayerNorm eps 1e-5; attention: one Linear to q, k, v with bias,
  causal softmax attention, Linear back with bias; MLP: Linear to 4C, GELU (tanh
  form, as shaders/activation.wgsl), Linear back), learned position embeddings,
  final LayerNorm, a Linear head without bias and no weight tying; batch 8
  sequences of real text windows.
- mlp: `sfnap train --model mlp --data digits`: 64-256-256-10, each hidden layer
  Linear without bias -> LayerNorm -> ReLU, a Linear head with bias; batch 64 of
  random 8x8 inputs and labels (the values do not change the work).

Each step draws its batch, runs forward, cross-entropy, backward and the optimizer
step (torch.optim.AdamW, foreach; or schedulefree.AdamWScheduleFree with --opt
adamw_sf), and is timed alone (synchronized on CUDA); the median of --steps timed
steps after --warmup is reported. CPU runs use torch threads = the machine's cores.
Prints one JSON object per line ("peer": "train" or "matmul").
Run through run.sh (TRAIN=1), which makes the virtual environment.
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CONTEXT, WIDTH, HEADS, LAYERS = 64, 64, 4, 2
MLP_WIDTHS, CLASSES = (64, 256, 256), 10


def shipped_tokens():
    """The shipped text as token ids over its sorted distinct characters (as src/data/text.rs)."""
    with open(os.path.join(ROOT, "data", "licenses.txt"), encoding="utf-8") as f:
        text = f.read()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([index[c] for c in text], dtype=torch.long), len(vocab)


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(c, eps=1e-5)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c, eps=1e-5)
        self.fc = nn.Linear(c, 4 * c)
        self.fc_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tok = nn.Embedding(vocab, WIDTH)
        self.pos = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.ModuleList(Block(WIDTH, HEADS) for _ in range(LAYERS))
        self.lnf = nn.LayerNorm(WIDTH, eps=1e-5)
        self.head = nn.Linear(WIDTH, vocab, bias=False)
        # GPT-2's scheme, as sfnap's: N(0, 0.02), output projections N(0, 0.02 / sqrt(2L)).
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() > 1:
                std = 0.02 / math.sqrt(2 * LAYERS) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, ids, targets):
        x = self.tok(ids) + self.pos.weight[: ids.shape[1]]
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for i, o in zip(MLP_WIDTHS, MLP_WIDTHS[1:]):
            layers += [nn.Linear(i, o, bias=False), nn.LayerNorm(o, eps=1e-5), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(MLP_WIDTHS[-1], CLASSES)

    def forward(self, x, targets):
        return F.cross_entropy(self.head(self.body(x)), targets)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def adapter(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def optimizer(kind, params):
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0, foreach=True)
    import schedulefree

    opt = schedulefree.AdamWScheduleFree(params, lr=2.5e-3, foreach=True)
    opt.train()
    return opt


def train_bench(model_name, kind, batch, device, warmup, steps):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if model_name == "gpt":
        tokens, vocab = shipped_tokens()
        model = Gpt(vocab).to(device)
        offsets = torch.arange(CONTEXT + 1)

        def draw():
            starts = torch.randint(0, len(tokens) - CONTEXT - 1, (batch, 1), generator=gen)
            window = tokens[starts + offsets].to(device)
            return window[:, :-1], window[:, 1:]
    else:
        model = Mlp().to(device)

        def draw():
            x = torch.randn(batch, MLP_WIDTHS[0], generator=gen).to(device)
            return x, torch.randint(0, CLASSES, (batch,), generator=gen).to(device)

    opt = optimizer(kind, model.parameters())

    def step():
        inputs, targets = draw()
        opt.zero_grad(set_to_none=True)
        model(inputs, targets).backward()
        opt.step()

    times = []
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    row = {
        "peer": "train",
        "model": model_name,
        "kind": kind,
        "batch": batch,
        "context": CONTEXT if model_name == "gpt" else None,
        "params": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "step_ms": step_s * 1e3,
        "step_ms_best": min(times) * 1e3,
        "examples_per_s": batch / step_s,
        "tokens_per_s": batch * CONTEXT / step_s if model_name == "gpt" else None,
        "adapter": adapter(device),
        "backend": f"pytorch-{device.type}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if model_name == "gpt":
        row["vocab"] = vocab
    return row


def matmul_bench(n, device, target_s=0.05, groups=7):
    """GFLOP/s of torch.matmul on n x n float32 matrices: the median of `groups`
    groups of k calls, k chosen so a group takes about target_s."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    c = torch.matmul(a, b)
    sync(device)
    t0 = time.perf_counter()
    c = torch.matmul(a, b)
    sync(device)
    k = max(1, min(10_000, int(target_s / max(time.perf_counter() - t0, 1e-7))))
    rates = []
    for _ in range(groups):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(k):
            c = torch.matmul(a, b)
        sync(device)
        rates.append(2 * n**3 * k / (time.perf_counter() - t0) / 1e9)
    del c
    return {
        "peer": "matmul",
        "n": n,
        "calls": k,
        "gflops": statistics.median(rates),
        "gflops_best": max(rates),
        "adapter": adapter(device),
        "backend": f"pytorch-{device.type}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present)")
    ap.add_argument("--models", default="gpt,mlp", help="comma-separated: gpt, mlp (empty: none)")
    ap.add_argument("--opt", default="adamw", choices=["adamw", "adamw_sf"],
                    help="torch.optim.AdamW (foreach) or schedulefree.AdamWScheduleFree (foreach)")
    ap.add_argument("--gpt-batch", type=int, default=8, help="sequences per gpt batch")
    ap.add_argument("--mlp-batch", type=int, default=64, help="examples per mlp batch")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (the median is reported)")
    ap.add_argument("--matmul", default="64,128,256,512,1024,2048",
                    help="comma-separated square sizes of the matmul sweep (empty: none)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: every core)")
    ap.add_argument("--out", default=None, help="append the JSON lines to this file as well")
    args = ap.parse_args()
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_peer: --device cuda, but torch sees no CUDA device")
    torch.set_num_threads(max(1, args.threads))
    out = open(args.out, "a") if args.out else None

    def emit(row):
        line = json.dumps(row)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    for m in filter(None, args.models.split(",")):
        if m not in ("gpt", "mlp"):
            raise SystemExit(f"train_peer: unknown model {m!r} (expected gpt or mlp)")
        batch = args.gpt_batch if m == "gpt" else args.mlp_batch
        emit(train_bench(m, args.opt, batch, device, args.warmup, args.steps))
    for n in filter(None, args.matmul.split(",")):
        emit(matmul_bench(int(n), device))
    if out:
        out.close()


if __name__ == "__main__":
    main()
