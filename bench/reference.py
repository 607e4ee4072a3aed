#!/usr/bin/env python3
"""PyTorch reference for `trainer bench` and `trainer bench-check`.

The model of trainer/src/model/ written again, independently, as the plain PyTorch
script a researcher would otherwise use: token embedding, pre-norm blocks of RMSNorm,
attention through scaled_dot_product_attention with rotary embeddings (rotate-half
convention) and optional qk-norm, SwiGLU with gate and up in one matrix, no biases,
final RMSNorm, tied or untied head. Mixture-of-experts MLPs (shape["moe"]): softmax
router in fp32, top-k experts per token with gates renormalised over them (k > 1, as
Mixtral; at k = 1 the gate is the softmax probability, as Switch), each expert
a SwiGLU applied to the tokens that chose it (found with torch.where, as Hugging Face's
Mixtral does: an independent path from the harness's sort-and-slice dispatch), optional
capacity (first tokens in order) and shared experts; the objective's loss plus
aux_loss x mean load-balancing loss (E sum_e f_e P_e) plus z_loss x mean router z-loss.
Objectives: AR (causal, next-token targets, mean
cross-entropy) and masked diffusion (bidirectional, mask id = vocab, cross-entropy on
masked tokens weighted by 1/p_mask, summed and divided by batch x length).
Optimizer: torch.optim.AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices
only) after clip_grad_norm_(1.0); fused=True when benchmarking, the default for-loop
implementation when checking.

Commands (each prints one JSON object on stdout):
  reference.py bench CASE_JSON  train on random tokens: tokens_per_s, step_ms (a typical
                                step: the 20th percentile of per-step times on the CPU,
                                the mean on a GPU), peak_mem_mib
  reference.py check FOLDER     recompute the steps `trainer bench-check` wrote to FOLDER
                                (case.json, weights.safetensors, batch.safetensors):
                                losses and gradient norms per step
Only torch itself is needed (safetensors files are read directly).
"""

import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "I64": torch.int64,
    "I32": torch.int32,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors(path):
    """name -> tensor from a .safetensors file (8-byte header size, JSON header, data)."""
    with open(path, "rb") as handle:
        data = handle.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        raw = bytearray(data[base + start : base + end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"]).clone()
    return tensors


def random_parameters(shape, rows, device):
    """Fresh weights with the harness's initialisation (normal, std init_std; output
    projections scaled by 1/sqrt(2 n_layer); norm gains 1)."""
    c, std = shape["d_model"], shape["init_std"]
    hs = c // shape["n_head"]
    small = std / math.sqrt(2 * shape["n_layer"])
    params = {"embedding.weight": torch.randn(rows, c) * std}
    for i in range(shape["n_layer"]):
        pre = f"blocks.{i}."
        params[pre + "attention_norm.weight"] = torch.ones(c)
        params[pre + "attention.qkv.weight"] = torch.randn(3 * c, c) * std
        params[pre + "attention.proj.weight"] = torch.randn(c, c) * small
        if shape["qk_norm"]:
            params[pre + "attention.q_norm.weight"] = torch.ones(hs)
            params[pre + "attention.k_norm.weight"] = torch.ones(hs)
        params[pre + "mlp_norm.weight"] = torch.ones(c)
        moe = mixture_of(shape, i)
        if moe is None:
            params[pre + "mlp.gate_up.weight"] = torch.randn(2 * shape["d_ff"], c) * std
            params[pre + "mlp.down.weight"] = torch.randn(c, shape["d_ff"]) * small
        else:
            e, f = moe["experts"], moe["expert_ffn"]
            params[pre + "mlp.router"] = torch.randn(e, c) * std
            params[pre + "mlp.experts_gate_up"] = torch.randn(e, 2 * f, c) * std
            params[pre + "mlp.experts_down"] = torch.randn(e, c, f) * small
            if moe["shared_experts"]:
                width = moe["shared_experts"] * f
                params[pre + "mlp.shared.gate_up.weight"] = torch.randn(2 * width, c) * std
                params[pre + "mlp.shared.down.weight"] = torch.randn(c, width) * small
    params["final_norm.weight"] = torch.ones(c)
    if not shape["tied_embeddings"]:
        params["head.weight"] = torch.randn(rows, c) * std
    return {name: p.to(device).requires_grad_() for name, p in params.items()}


def rope_tables(head_size, length, base, device):
    half = head_size // 2
    exponents = torch.arange(half, dtype=torch.float32) * (2.0 / head_size)
    inverse_frequency = torch.pow(torch.tensor(base, dtype=torch.float32), exponents).reciprocal()
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inverse_frequency[None, :]
    return angles.cos().to(device), angles.sin().to(device)


def rotate(x, cos, sin):
    """x: (B, nh, T, hs); rotate-half RoPE in fp32, back to x's dtype."""
    half = x.shape[-1] // 2
    wide = x.float()
    x1, x2 = wide[..., :half], wide[..., half:]
    t = x.shape[2]
    cos, sin = cos[:t], sin[:t]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


def mixture_of(shape, block):
    """The block's mixture-of-experts layout, or None for a dense MLP."""
    moe = shape.get("moe")
    if moe is None or (block + 1) % moe["every"] != 0:
        return None
    return moe


def swiglu(x, gate_up, down):
    gate, up = F.linear(x, gate_up).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, down)


def mixture(h, params, pre, moe):
    """h (B, T, C) -> (output (B, T, C) fp32, load-balancing loss, z-loss)."""
    b, t, c = h.shape
    flat = h.reshape(b * t, c)
    experts, k = moe["experts"], moe["top_k"]
    with torch.autocast(flat.device.type, enabled=False):
        logits = F.linear(flat.float(), params[pre + "mlp.router"])
    probs = logits.softmax(dim=-1)
    top_p, top_i = probs.topk(k, dim=-1)
    # Switch at k = 1 (a renormalised single gate is 1 and gives the router no gradient).
    gates = top_p if k == 1 else top_p / top_p.sum(dim=-1, keepdim=True)
    capacity = moe["capacity_factor"]
    limit = None if capacity == "none" else math.ceil(capacity * b * t * k / experts)
    out = torch.zeros(b * t, c, device=h.device, dtype=torch.float32)
    for e in range(experts):
        token, slot = torch.where(top_i == e)
        if limit is not None:
            token, slot = token[:limit], slot[:limit]
        if token.numel() == 0:
            continue
        y = swiglu(flat[token], params[pre + "mlp.experts_gate_up"][e], params[pre + "mlp.experts_down"][e])
        out.index_add_(0, token, y.float() * gates[token, slot].unsqueeze(1))
    out = out.view(b, t, c)
    if moe["shared_experts"]:
        out = out + swiglu(h, params[pre + "mlp.shared.gate_up.weight"], params[pre + "mlp.shared.down.weight"]).float()
    share = F.one_hot(top_i, experts).float().sum(dim=(0, 1)) / (b * t * k)
    balance = experts * (share * probs.mean(dim=0)).sum()
    z = torch.logsumexp(logits, dim=-1).square().mean()
    return out, balance, z


def forward(params, tokens, shape, causal, cos, sin, routers=None):
    """tokens (B, T) -> logits (B, T, rows); each mixture block appends its
    (load-balancing loss, z-loss) to `routers`."""
    c, nh, eps = shape["d_model"], shape["n_head"], shape["norm_eps"]
    hs, d_ff = c // nh, shape["d_ff"]
    b, t = tokens.shape
    x = F.embedding(tokens, params["embedding.weight"])
    for i in range(shape["n_layer"]):
        pre = f"blocks.{i}."
        h = F.rms_norm(x, (c,), params[pre + "attention_norm.weight"], eps)
        q, k, v = F.linear(h, params[pre + "attention.qkv.weight"]).split(c, dim=-1)
        q, k, v = (part.view(b, t, nh, hs).transpose(1, 2) for part in (q, k, v))
        if shape["qk_norm"]:
            q = F.rms_norm(q.float(), (hs,), params[pre + "attention.q_norm.weight"], eps).to(v.dtype)
            k = F.rms_norm(k.float(), (hs,), params[pre + "attention.k_norm.weight"], eps).to(v.dtype)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        x = x + F.linear(y, params[pre + "attention.proj.weight"])
        h = F.rms_norm(x, (c,), params[pre + "mlp_norm.weight"], eps)
        moe = mixture_of(shape, i)
        if moe is None:
            gate, up = F.linear(h, params[pre + "mlp.gate_up.weight"]).split(d_ff, dim=-1)
            x = x + F.linear(F.silu(gate) * up, params[pre + "mlp.down.weight"])
        else:
            y, balance, z = mixture(h, params, pre, moe)
            x = x + y
            if routers is not None:
                routers.append((balance, z))
    x = F.rms_norm(x, (c,), params["final_norm.weight"], eps)
    head = params.get("head.weight", params["embedding.weight"])
    return F.linear(x, head)


def cross_entropy(logits, targets, vocab):
    b, t, _ = logits.shape
    flat = logits[..., :vocab].float().reshape(b * t, vocab)
    return F.cross_entropy(flat, targets.reshape(b * t), reduction="none").view(b, t)


def router_penalty(routers, shape):
    """aux_loss x mean balance + z_loss x mean z over the mixture blocks (0 if dense)."""
    if not routers:
        return 0.0
    moe = shape["moe"]
    balance = torch.stack([r[0] for r in routers]).mean()
    z = torch.stack([r[1] for r in routers]).mean()
    return moe["aux_loss"] * balance + moe["z_loss"] * z


def ar_loss(params, windows, case, cos, sin):
    inputs, targets = windows[:, :-1], windows[:, 1:]
    routers = []
    logits = forward(params, inputs, case["shape"], True, cos, sin, routers)
    loss = cross_entropy(logits, targets, case["vocab"]).mean()
    return loss + router_penalty(routers, case["shape"])


def dlm_loss(params, clean, mask, p_mask, case, cos, sin):
    b, length = clean.shape
    noisy = clean.masked_fill(mask, case["vocab"])  # the mask id follows the vocabulary
    routers = []
    logits = forward(params, noisy, case["shape"], False, cos, sin, routers)
    ce = cross_entropy(logits, clean, case["vocab"])
    loss = (ce * mask.float() * p_mask.reciprocal()[:, None]).sum() / (b * length)
    return loss + router_penalty(routers, case["shape"])


def dlm_draw(windows, eps):
    """Stratified times t_i = (u + i/B) mod 1, p_mask = (1 - eps) t + eps, Bernoulli mask."""
    clean = windows[:, :-1]
    b, length = clean.shape
    times = (torch.rand(1, device=clean.device) + torch.arange(b, device=clean.device) / b) % 1.0
    p_mask = times * (1.0 - eps) + eps
    mask = torch.rand(b, length, device=clean.device) < p_mask[:, None]
    return clean, mask, p_mask


def optimizer_for(params, case, fused):
    decay = [p for n, p in params.items() if not ("norm" in n or n.startswith("embedding"))]
    rest = [p for n, p in params.items() if "norm" in n or n.startswith("embedding")]
    groups = [
        {"params": decay, "weight_decay": case["weight_decay"]},
        {"params": rest, "weight_decay": 0.0},
    ]
    extra = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.95), eps=1e-8, **extra)


def bench(case):
    torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    shape = case["shape"]
    params = random_parameters(shape, case["vocab_rows"], device)
    cos, sin = rope_tables(shape["d_model"] // shape["n_head"], shape["max_seq_len"], shape["rope_base"], device)
    # The fastest eager optimizer PyTorch has on either device (the harness runs the
    # same fused kernel); `check` uses the plain for-loop one, an independent path.
    optimizer = optimizer_for(params, case, fused=True)
    windows = torch.randint(case["vocab"], (case["batch_size"], case["seq_len"] + 1), device=device)
    bf16 = case["precision"] == "bf16"

    def loss_of(windows):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if case["objective"] == "ar":
                return ar_loss(params, windows, case, cos, sin)
            clean, mask, p_mask = dlm_draw(windows, case["dlm_eps"])
            return dlm_loss(params, clean, mask, p_mask, case, cos, sin)

    if case["compile"]:
        loss_of = torch.compile(loss_of)

    def step():
        loss = loss_of(windows)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), case["grad_clip"])
        optimizer.step()

    for _ in range(case["warmup_steps"]):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    # As the harness: each CPU step timed, a GPU's whole window (its work is queued).
    step_seconds = []
    start = time.perf_counter()
    for _ in range(case["steps"]):
        started = time.perf_counter()
        step()
        if not cuda:
            step_seconds.append(time.perf_counter() - started)
    if cuda:
        torch.cuda.synchronize(device)
        step_seconds.append((time.perf_counter() - start) / case["steps"])
    seconds = typical_step_seconds(step_seconds)
    tokens = case["batch_size"] * case["seq_len"]
    peak = (torch.cuda.max_memory_reserved() / 2**20) if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"tokens_per_s": tokens / seconds, "step_ms": 1e3 * seconds, "peak_mem_mib": peak}


def typical_step_seconds(seconds, quantile=0.2):
    """The harness's rule (trainer/src/bench/case.rs, STEP_QUANTILE): the 20th percentile of
    per-step times by nearest rank."""
    ordered = sorted(seconds)
    rank = max(1, math.ceil(quantile * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def check(folder):
    with open(os.path.join(folder, "case.json")) as handle:
        case = json.load(handle)
    torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    shape = case["shape"]
    weights = read_safetensors(os.path.join(folder, "weights.safetensors"))
    params = {name: w.to(device).requires_grad_() for name, w in weights.items()}
    batch = {name: t.to(device) for name, t in read_safetensors(os.path.join(folder, "batch.safetensors")).items()}
    cos, sin = rope_tables(shape["d_model"] // shape["n_head"], shape["max_seq_len"], shape["rope_base"], device)
    optimizer = optimizer_for(params, case, fused=False)
    # bf16: PyTorch's autocast, against the harness's mixed precision (weights,
    # optimizer, norms and losses in fp32; matmuls and attention in bf16).
    bf16 = case["precision"] == "bf16"
    losses, norms = [], []
    for _ in range(case["steps"]):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if case["objective"] == "ar":
                loss = ar_loss(params, batch["windows"], case, cos, sin)
            else:
                loss = dlm_loss(params, batch["clean"], batch["mask"].bool(), batch["p_mask"], case, cos, sin)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params.values(), case["grad_clip"])
        optimizer.step()
        losses.append(loss.item())
        norms.append(norm.item())
    return {"losses": losses, "grad_norms": norms, "torch": torch.__version__}


def main(argv):
    if len(argv) != 3 or argv[1] not in ("bench", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    result = bench(json.loads(argv[2])) if argv[1] == "bench" else check(argv[2])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
