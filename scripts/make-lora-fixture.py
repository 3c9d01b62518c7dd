#!/usr/bin/env python3
"""A PEFT LoRA adapter on the tiny Llama fixture, for AlignKit's adapter parity test.

Loads Tests/AlignKitModelsTests/Fixtures/llama-tiny with transformers, wraps it with PEFT's LoRA
(r 4, alpha 8, on q_proj, v_proj and down_proj), sets every lora_B to random values (PEFT starts B at
zero, which would make the adapter invisible), and writes under
Tests/AlignKitModelsTests/Fixtures/llama-tiny-lora/:
  adapter_config.json, adapter_model.safetensors   (PEFT's save_pretrained)
  expected.safetensors   "tokens" (as float) and "logits" [B, T, V] of the adapted model (eval mode)

Run with the benchmark environment: .venv-bench/bin/python scripts/make-lora-fixture.py
"""
import json, pathlib
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root / "Tests/AlignKitModelsTests/Fixtures"

torch.manual_seed(0)
base = LlamaForCausalLM.from_pretrained(fixtures / "llama-tiny", torch_dtype=torch.float32)
config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM")
model = get_peft_model(base, config)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(torch.randn_like(p) * 0.2)
model.eval()
out = fixtures / "llama-tiny-lora"
out.mkdir(exist_ok=True)
model.save_pretrained(out)
(out / "README.md").unlink(missing_ok=True)   # PEFT's model-card template: not ours to commit
config_path = out / "adapter_config.json"
saved = json.loads(config_path.read_text())
saved["base_model_name_or_path"] = "llama-tiny"   # relative, not this machine's path
config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
tokens = torch.randint(0, base.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    logits = model(tokens).logits
save_file({"tokens": tokens.float(), "logits": logits.contiguous()}, out / "expected.safetensors")
print("wrote", out, "logit range", float(logits.abs().max()))
