#!/usr/bin/env python3
"""Reference fixtures from Hugging Face `transformers` for AlignKit's GPT parity tests.

For a tiny GPT2LMHeadModel and a tiny LlamaForCausalLM (grouped-query attention, untied head), with
every parameter perturbed so that norm scales and biases are not 1 and 0, writes under
Tests/AlignKitModelsTests/Fixtures/<name>/:
  config.json, model.safetensors   (save_pretrained)
  expected.safetensors             "tokens" (as float), "logits" [B, T, V], "logprobs" [B, T-1] (each next
                                   token's log-probability), "loss" (mean next-token cross-entropy), and
                                   "grad.<parameter name>" for every parameter
Check mode: --check MODEL_DIR ALIGNKIT_BINARY loads an AlignKit-saved model folder in transformers and
compares its per-token log-probabilities with `alignkit score` on the same tokens.

Run with the benchmark environment: .venv-bench/bin/python scripts/make-gpt-fixtures.py
"""
import json, pathlib, subprocess, sys
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root / "Tests/AlignKitModelsTests/Fixtures"


def logprobs(model, tokens):
    logits = model(tokens).logits
    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1).gather(-1, tokens[:, 1:, None])[..., 0]
    return logits, lp


if len(sys.argv) == 4 and sys.argv[1] == "--check":
    folder, binary = sys.argv[2], sys.argv[3]
    config = json.loads((pathlib.Path(folder) / "config.json").read_text())
    cls = GPT2LMHeadModel if config["model_type"] == "gpt2" else LlamaForCausalLM
    model = cls.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(0, config["vocab_size"], (1, 24), generator=g)
    with torch.no_grad():
        _, lp = logprobs(model, tokens)
    ids = ",".join(str(t) for t in tokens[0].tolist())
    ours = json.loads(subprocess.run([binary, "score", "--model", folder, "--tokens", ids], check=True, capture_output=True, text=True).stdout)
    theirs = [None] + lp[0].tolist()
    worst = max(abs(a - b) for a, b in zip(ours["logprobs"][1:], theirs[1:]))
    print(f"{folder}: transformers loaded the AlignKit checkpoint; largest log-probability difference {worst:.2e} over 23 tokens")
    sys.exit(0 if worst < 1e-4 else 1)

cases = {
    "gpt2-tiny": (GPT2LMHeadModel, GPT2Config(vocab_size=61, n_positions=16, n_embd=16, n_layer=2, n_head=4,
                                                 resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)),
    "llama-tiny": (LlamaForCausalLM, LlamaConfig(vocab_size=61, max_position_embeddings=32, hidden_size=16, intermediate_size=40,
                                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)),
}
for name, (cls, config) in cases.items():
    torch.manual_seed(0)
    model = cls._from_config(config, attn_implementation="eager").float()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    out = fixtures / name
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, config.vocab_size, (2, 12), generator=g)
    model.zero_grad()
    logits, lp = logprobs(model, tokens)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size), tokens[:, 1:].reshape(-1))
    loss.backward()
    expected = {"tokens": tokens.float(), "logits": logits.detach().contiguous(), "logprobs": lp.detach().float(),
                "loss": loss.detach().reshape(1)}
    for pname, p in model.named_parameters():
        expected["grad." + pname] = p.grad.contiguous()
    save_file(expected, str(out / "expected.safetensors"))
    (out / "generation_config.json").unlink(missing_ok=True)
    print(name, "parameters", sum(p.numel() for p in model.parameters()), "loss", loss.item())
