#!/usr/bin/env python3
"""Reference numbers for AlignKit's preference losses, their gradients, the Bradley-Terry reward loss,
KTO, GAE and the PPO losses, computed in float64 with PyTorch autograd.

Each formula below is written from the papers and TRL's documented definitions (DPOTrainer loss types,
CPO/SimPO, ORPO, KTO), independently of AlignKit's Swift code. Writes
Tests/AlignKitAlignmentTests/Fixtures/losses.json.

Run in the benchmark environment: .venv-bench/bin/python scripts/make-loss-fixtures.py
"""
import json, math, pathlib
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
root = pathlib.Path(__file__).resolve().parent.parent
out = root / "Tests/AlignKitAlignmentTests/Fixtures/losses.json"

g = torch.Generator().manual_seed(0)
B = 6
chosen = -(20 + 40 * torch.rand(B, generator=g))
rejected = -(20 + 40 * torch.rand(B, generator=g))
ref_chosen = chosen + torch.randn(B, generator=g) * 3
ref_rejected = rejected + torch.randn(B, generator=g) * 3
chosen_len = torch.randint(5, 30, (B,), generator=g).double()
rejected_len = torch.randint(5, 30, (B,), generator=g).double()


def preference_loss(kind, c, r, c0, r0, beta, eps, tau=0.05, gamma=0.5, alpha=1.0):
    cr, rr = c - c0, r - r0
    d = cr - rr
    ls = lambda z: -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
    nll = -c.sum() / chosen_len.sum()
    cm, rm = c / chosen_len, r / rejected_len
    if kind == "sigmoid": return (-F.logsigmoid(beta * d)).mean()
    if kind == "hinge": return torch.relu(1 - beta * d).mean()
    if kind == "ipo": return ((cr / chosen_len - rr / rejected_len - 1 / (2 * beta)) ** 2).mean()
    if kind == "robust": return ((-(1 - eps) * F.logsigmoid(beta * d) + eps * F.logsigmoid(-beta * d)) / (1 - 2 * eps)).mean()
    if kind == "exo_pair":
        z = beta * d
        return (torch.sigmoid(z) * (F.logsigmoid(z) - math.log1p(-eps)) + torch.sigmoid(-z) * (F.logsigmoid(-z) - math.log(eps))).mean()
    if kind == "nca_pair":
        a, b = beta * cr, beta * rr
        return (-F.logsigmoid(a) - 0.5 * F.logsigmoid(-a) - 0.5 * F.logsigmoid(-b)).mean()
    if kind == "bco_pair": return (-F.logsigmoid(beta * cr) - F.logsigmoid(-beta * rr)).mean()
    if kind == "sppo_hard": return ((cr - 0.5 / beta) ** 2 + (rr + 0.5 / beta) ** 2).mean()
    if kind == "aot": return ls(beta * (torch.sort(c - r).values - torch.sort(c0 - r0).values)).mean()
    if kind == "aot_unpaired": return ls(beta * (torch.sort(cr).values - torch.sort(rr).values)).mean()
    if kind == "apo_zero": return (1 - torch.sigmoid(beta * cr) + torch.sigmoid(beta * rr)).mean()
    if kind == "apo_down": return (torch.sigmoid(beta * cr) + 1 - torch.sigmoid(beta * d)).mean()
    if kind == "discopop":
        z = beta * d
        m = torch.sigmoid(z / tau)
        return (-F.logsigmoid(z) * (1 - m) + torch.exp(-z) * m).mean()
    if kind == "sft": return nll
    if kind == "sigmoid_norm": return (-F.logsigmoid(beta * (cr / chosen_len - rr / rejected_len))).mean()
    if kind == "simpo": return ls(beta * (cm - rm) - gamma).mean()
    if kind == "cpo": return ls(beta * (c - r)).mean() + alpha * nll
    if kind == "orpo":
        log_odds = (cm - rm) - (torch.log1p(-torch.exp(cm)) - torch.log1p(-torch.exp(rm)))
        return nll - beta * F.logsigmoid(log_odds).mean()
    raise ValueError(kind)


cases = []
for kind, beta, eps in [("sigmoid", 0.1, 0), ("sigmoid", 0.5, 0), ("hinge", 0.1, 0), ("ipo", 0.1, 0), ("robust", 0.1, 0.2),
                        ("exo_pair", 0.1, 0.1), ("nca_pair", 0.1, 0), ("bco_pair", 0.1, 0), ("sppo_hard", 0.1, 0), ("aot", 0.1, 0.1),
                        ("aot_unpaired", 0.1, 0), ("apo_zero", 0.1, 0), ("apo_down", 0.1, 0), ("discopop", 0.1, 0), ("sft", 0.1, 0),
                        ("sigmoid_norm", 0.1, 0), ("simpo", 2.0, 0), ("simpo", 2.0, 0.1), ("cpo", 0.1, 0), ("orpo", 0.1, 0)]:
    c, r = chosen.clone().requires_grad_(), rejected.clone().requires_grad_()
    loss = preference_loss(kind, c, r, ref_chosen, ref_rejected, beta, eps)
    loss.backward()
    cases.append({"type": kind, "beta": beta, "label_smoothing": eps, "loss": loss.item(),
                  "grad_chosen": c.grad.tolist(),
                  "grad_rejected": (r.grad if r.grad is not None else torch.zeros(B)).tolist()})

# Bradley-Terry: -log σ(r_c - r_r - m), mean; with per-pair margins.
rc = torch.randn(B, generator=g).requires_grad_(); rr_ = torch.randn(B, generator=g).requires_grad_()
margin = torch.rand(B, generator=g)
bt = (-F.logsigmoid(rc - rr_ - margin)).mean()
bt.backward()
bradley_terry = {"chosen": rc.tolist(), "rejected": rr_.tolist(), "margin": margin.tolist(), "loss": bt.item(),
                 "grad_chosen": rc.grad.tolist(), "grad_rejected": rr_.grad.tolist()}

# KTO: z0 = max(0, mean KL estimate), desirable 1 - σ(β(r - z0)), undesirable 1 - σ(β(z0 - r)), weighted mean.
logps = -(10 + 30 * torch.rand(B, generator=g)); ref_logps = logps + torch.randn(B, generator=g) * 2
labels = [True, False, True, True, False, False]
kl = 0.7
lp = logps.clone().requires_grad_()
ratio = lp - ref_logps
per = torch.stack([1.0 * (1 - torch.sigmoid(0.1 * (ratio[i] - kl))) if labels[i] else 1.5 * (1 - torch.sigmoid(0.1 * (kl - ratio[i])))
                   for i in range(B)])
kto = per.mean()
kto.backward()
kto_case = {"logps": logps.tolist(), "ref_logps": ref_logps.tolist(), "labels": labels, "kl": kl, "beta": 0.1,
            "desirable_weight": 1.0, "undesirable_weight": 1.5, "loss": kto.item(), "grad": lp.grad.tolist()}

# GAE over one sequence with a terminal step: δ_t = r_t + γ V_{t+1} - V_t (V_T = 0), A_t = δ_t + γλ A_{t+1}.
T = 7
rewards = torch.randn(T, generator=g) * 0.1; values = torch.randn(T, generator=g)
gamma, lam = 0.99, 0.95
adv = torch.zeros(T); last = 0.0
for t in reversed(range(T)):
    nxt = values[t + 1] if t + 1 < T else 0.0
    delta = rewards[t] + gamma * nxt - values[t]
    last = delta + gamma * lam * last
    adv[t] = last
gae = {"rewards": rewards.tolist(), "values": values.tolist(), "gamma": gamma, "lambda": lam, "advantages": adv.tolist(),
       "returns": (adv + values).tolist()}

# PPO: clipped policy loss and clipped value loss (masked token means), with their gradients.
N = 8
new_lp = (torch.randn(N, generator=g) * 0.3 - 2).requires_grad_(); old_lp = new_lp.detach() + torch.randn(N, generator=g) * 0.2
advantages = torch.randn(N, generator=g)
new_v = torch.randn(N, generator=g).requires_grad_(); old_v = new_v.detach() + torch.randn(N, generator=g) * 0.3
returns = torch.randn(N, generator=g)
clip, vclip = 0.2, 0.2
ratio = torch.exp(new_lp - old_lp)
policy_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
v_clipped = old_v + torch.clamp(new_v - old_v, -vclip, vclip)
value_loss = 0.5 * torch.max((new_v - returns) ** 2, (v_clipped - returns) ** 2).mean()
(policy_loss + value_loss).backward()
ppo = {"new_logps": new_lp.tolist(), "old_logps": old_lp.tolist(), "advantages": advantages.tolist(), "new_values": new_v.tolist(),
       "old_values": old_v.tolist(), "returns": returns.tolist(), "clip": clip, "value_clip": vclip,
       "policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
       "clip_fraction": ((ratio - 1).abs() > clip).double().mean().item(),
       "grad_logps": new_lp.grad.tolist(), "grad_values": new_v.grad.tolist()}

out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps({"inputs": {"chosen": chosen.tolist(), "rejected": rejected.tolist(), "ref_chosen": ref_chosen.tolist(),
                                      "ref_rejected": ref_rejected.tolist(), "chosen_len": chosen_len.tolist(),
                                      "rejected_len": rejected_len.tolist()},
                           "preference": cases, "bradley_terry": bradley_terry, "kto": kto_case, "gae": gae, "ppo": ppo}, indent=1) + "\n")
print("wrote", out, len(cases), "preference cases")
