#!/usr/bin/env python3
"""TRL parity fixtures for AlignKit's DPO family.

Builds two tiny random Hugging Face checkpoints that share a small byte-level BPE vocabulary — the
policy a LlamaForCausalLM, the reference a GPT2LMHeadModel (different on purpose: the reference is a
separate model) — and a small preference file, then runs TRL's DPOTrainer on them at learning rate 0
for one step over all pairs, once per loss type, and writes the metrics TRL logs.

Writes Tests/AlignKitAlignmentTests/Fixtures/trl-dpo/:
  policy/, reference/   config.json, model.safetensors, tokenizer.json (+ transformers' tokenizer files)
  prefs.jsonl           the preference pairs (one completion is long enough to be truncated at max_length)
  metrics.json          {"trl": version, "max_length": N, "runs": [{"name", "loss_type", "loss_weights",
                         "beta", "label_smoothing", "reference": bool, "metrics": {TRL's logged values}}]}

Run in the benchmark environment (scripts/setup-torch.sh, then `pip install trl==1.16.0`):
  .venv-bench/bin/python scripts/make-trl-parity.py
"""
import json, pathlib, shutil, tempfile
import torch
import trl
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "Tests/AlignKitAlignmentTests/Fixtures/trl-dpo"
tokenizer_file = root / "Tests/AlignKitTextTests/Fixtures/hf-bpe/tokenizer.json"
MAX_LENGTH = 48

pairs = [
    {"prompt": "HAMLET. To be, or not to be:", "chosen": " that is the question.", "rejected": " I know not what."},
    {"prompt": "What says the King?", "chosen": " He bids you come.", "rejected": " Nothing, my lord, nothing at all."},
    {"prompt": "Speak the speech, I pray you,", "chosen": " as I pronounced it to you,", "rejected": " trippingly on the tongue."},
    {"prompt": "My lord,", "chosen": " the Queen would speak with you.", "rejected": " I have remembrances of yours."},
    {"prompt": "Who's there?", "chosen": " Nay, answer me. Stand and unfold yourself.", "rejected": " Long live the King!"},
    {"prompt": "O, that this too too solid flesh", "chosen": " would melt, thaw, and resolve itself into a dew,"
        " or that the Everlasting had not fix'd his canon 'gainst self-slaughter!", "rejected": " is mine."},
    {"prompt": "Give me your pardon, sir.", "chosen": " I have done you wrong.", "rejected": " Go to."},
    {"prompt": "The rest is", "chosen": " silence.", "rejected": " noise and fury, signifying nothing."},
]

runs = [(t, None, 0.1, 0.0) for t in ["sigmoid", "hinge", "ipo", "nca_pair", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
                                      "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]]
runs += [("robust", None, 0.1, 0.1), ("exo_pair", None, 0.1, 0.1), ("aot", None, 0.1, 0.2), ("sigmoid", None, 0.5, 0.0)]
runs += [(["sigmoid", "sft"], [1.0, 0.5], 0.1, 0.0), (["ipo", "hinge", "apo_zero"], [0.3, 1.0, 2.0], 0.2, 0.0)]


def perturbed(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def build():
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    vocab = len(tokenizer)
    torch.manual_seed(0)
    policy = perturbed(LlamaForCausalLM._from_config(LlamaConfig(
        vocab_size=vocab, max_position_embeddings=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=0, pad_token_id=0), attn_implementation="eager").float(), 1)
    torch.manual_seed(2)
    reference = perturbed(GPT2LMHeadModel._from_config(GPT2Config(
        vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
        bos_token_id=0, eos_token_id=0), attn_implementation="eager").float(), 3)
    for name, model in [("policy", policy), ("reference", reference)]:
        model.save_pretrained(out / name, safe_serialization=True)
        tokenizer.save_pretrained(out / name)
    (out / "prefs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return tokenizer


def run_trl(tokenizer, loss_type, weights, beta, smoothing, with_reference):
    policy = LlamaForCausalLM.from_pretrained(out / "policy", dtype=torch.float32, attn_implementation="eager")
    reference = GPT2LMHeadModel.from_pretrained(out / "reference", dtype=torch.float32, attn_implementation="eager") if with_reference else None
    with tempfile.TemporaryDirectory() as tmp:
        args = DPOConfig(output_dir=tmp, learning_rate=0.0, per_device_train_batch_size=len(pairs), max_steps=1, logging_steps=1,
                         report_to=[], save_strategy="no", loss_type=loss_type, loss_weights=weights, beta=beta,
                         label_smoothing=smoothing, max_length=MAX_LENGTH, use_cpu=True, seed=0, dataloader_drop_last=False,
                         disable_tqdm=True, bf16=False, gradient_checkpointing=False)  # TRL defaults to bf16 autocast
        trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=Dataset.from_list(pairs),
                             processing_class=tokenizer)
        trainer.train()
        logged = trainer.state.log_history[0]
    keys = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
            "logps/rejected", "logits/chosen", "logits/rejected"]
    return {k: logged[k] for k in keys}


def main():
    tokenizer = build()
    results = []
    for loss_type, weights, beta, smoothing in runs:
        types = loss_type if isinstance(loss_type, list) else [loss_type]
        name = "+".join(types) + f" beta={beta}" + (f" eps={smoothing}" if smoothing else "") + (f" w={weights}" if weights else "")
        metrics = run_trl(tokenizer, types, weights, beta, smoothing, True)
        results.append({"name": name, "loss_type": types, "loss_weights": weights, "beta": beta, "label_smoothing": smoothing,
                        "reference": True, "metrics": metrics})
        print(f"{name:40s} loss {metrics['loss']:.6f}  margins {metrics['rewards/margins']:.6f}")
    metrics = run_trl(tokenizer, ["sigmoid"], None, 0.1, 0.0, False)
    results.append({"name": "sigmoid, reference = the starting policy", "loss_type": ["sigmoid"], "loss_weights": None, "beta": 0.1,
                    "label_smoothing": 0.0, "reference": False, "metrics": metrics})
    (out / "metrics.json").write_text(json.dumps({"trl": trl.__version__, "max_length": MAX_LENGTH, "runs": results}, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
