"""PyTorch side of benchmarks/compare.sh: one workload per process, printed as one JSON line.

    torch_workloads.py WORKLOAD [--steps N] [--warmup W] [--threads T] [--precision fp32|bf16]

Workloads (random token ids, seed 0; the model is a plain nanoGPT-style GPT-2: learned positions,
pre-LayerNorm blocks, F.scaled_dot_product_attention, tanh GELU, tied embeddings):
  dpo-tiny, dpo-small                 DPO step: 8 pairs, prompt 64 + completion 64 tokens; policy forward
                                      and backward on chosen and rejected, reference forward without
                                      gradients, sigmoid loss (beta 0.1) on summed completion log-probs, AdamW
  dpo-tiny-precomputed, dpo-small-precomputed   the same with the reference's log-probs given
  pretrain-small                      next-token loss on 8 x 256 tokens, AdamW
  sample-b1, sample-b8                256 new tokens from a 64-token prompt with a KV cache (greedy),
                                      on the small model with a context of 512: the prompt's pass (the
                                      head on its last position only), then 255 one-token passes
tiny: 4 layers, 4 heads, width 256, vocabulary 4096, context 256; small: 6 layers, 6 heads, width 384,
vocabulary 8192, context 256. bf16 uses torch.autocast(cpu, bfloat16) around the forward passes.
Output: {"workload", "seconds": [per timed step], "peak_rss_mb", "torch"}.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {"tiny": dict(layers=4, heads=4, width=256, vocab=4096, context=256),
         "small": dict(layers=6, heads=6, width=384, vocab=8192, context=256)}


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)

    def attend(self, x, cache=None):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(q, k, v, is_causal=(cache is None or t > 1))
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x, cache=None):
        x = x + self.attend(self.ln1(x), cache)
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, heads, width, vocab, context):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, caches=None, start=0, last_only=False):
        positions = torch.arange(start, start + ids.shape[1])
        x = self.wte(ids) + self.wpe(positions)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        if last_only:   # sampling reads only the last position's logits (as nanoGPT does at inference)
            x = x[:, -1:]
        return self.ln_f(x) @ self.wte.weight.t()


def completion_logps(model, ids, prompt):
    """Summed log-probabilities of each row's tokens after the prompt."""
    logits = model(ids[:, :-1])[:, prompt - 1:]
    targets = ids[:, prompt:]
    return torch.gather(F.log_softmax(logits.float(), dim=-1), 2, targets.unsqueeze(-1)).squeeze(-1).sum(-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name = args.workload
    size = "tiny" if "tiny" in name else "small"
    cfg = dict(SIZES[size])
    if name.startswith("sample"):
        cfg["context"] = 512   # 64 + 256 positions do not fit a context of 256
    model = GPT(**cfg)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    generator = torch.Generator().manual_seed(0)

    if name.startswith("dpo"):
        pairs, prompt, completion = 8, 64, 64
        reference = GPT(**cfg)
        reference.load_state_dict(model.state_dict())
        reference.requires_grad_(False)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
        precomputed = name.endswith("precomputed")
        ids = torch.randint(0, cfg["vocab"], (2 * pairs, prompt + completion), generator=generator)
        ids[pairs:, :prompt] = ids[:pairs, :prompt]   # chosen and rejected share the prompt
        if precomputed:
            with torch.no_grad(), autocast:
                ref = completion_logps(reference, ids, prompt)

        def step():
            with autocast:
                policy = completion_logps(model, ids, prompt)
            if precomputed:
                r = ref
            else:
                with torch.no_grad(), autocast:
                    r = completion_logps(reference, ids, prompt)
            logits = 0.1 * ((policy[:pairs] - r[:pairs]) - (policy[pairs:] - r[pairs:]))
            loss = -F.logsigmoid(logits).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    elif name == "pretrain-small":
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
        ids = torch.randint(0, cfg["vocab"], (8, cfg["context"] + 1), generator=generator)

        def step():
            with autocast:
                logits = model(ids[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, cfg["vocab"]), ids[:, 1:].reshape(-1))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    elif name.startswith("sample"):
        batch = int(name.split("-b")[1])
        prompt = torch.randint(0, cfg["vocab"], (batch, 64), generator=generator)

        @torch.no_grad()
        def step():
            with autocast:
                # 256 new tokens: the prompt's pass gives the first, 255 one-token passes the rest.
                caches = [dict() for _ in model.blocks]
                logits = model(prompt, caches, last_only=True)[:, -1]
                position = prompt.shape[1]
                for i in range(256):
                    token = logits.argmax(-1, keepdim=True)
                    if i == 255:
                        break
                    logits = model(token, caches, start=position)[:, -1]
                    position += 1
    else:
        raise SystemExit(f"unknown workload {name}")

    for _ in range(args.warmup):
        step()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"workload": name, "seconds": seconds, "peak_rss_mb": peak, "torch": torch.__version__,
                      "precision": args.precision}))


if __name__ == "__main__":
    main()
