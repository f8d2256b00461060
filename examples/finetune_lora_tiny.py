#!/usr/bin/env python3
"""finetune_lora_tiny.py: LoRA fine-tuning with accelerate, for the finetune-lora recipe.

With --model tiny it fine-tunes a toy two-layer model (no download); with a
Hugging Face model name it loads that causal LM. The LoRA adapter comes
from peft, the device placement and process group from accelerate.
Every --save-every steps the main process saves the adapter into a
directory checkpoint-N and then writes checkpoint-N/COMPLETE: hpq's watcher
reports a directory checkpoint once it holds that marker. With --resume
PATH it loads the adapter and optimizer from there and prints
"resumed from step N". On SIGTERM it saves at the current step and exits.
"""
import argparse
import json
import os
import signal
import sys

try:
    import torch
    import torch.nn as nn
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit("finetune_lora_tiny.py needs torch, accelerate and peft "
             "(pip install torch accelerate peft): %s" % e)

stop = False


def on_term(signo, frame):
    global stop
    stop = True


class Toy(nn.Module):
    """A stand-in for a pretrained model: LoRA wraps its linear layers."""

    def __init__(self, dim=64):
        super().__init__()
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def build(name, rank):
    if name == "tiny":
        torch.manual_seed(0)
        base, targets = Toy(), ["up", "down"]
    else:
        from transformers import AutoModelForCausalLM
        base, targets = AutoModelForCausalLM.from_pretrained(name), None
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0)
    return get_peft_model(base, cfg)


def save(acc, ckpt_dir, step, model, opt):
    path = os.path.join(ckpt_dir, "checkpoint-%d" % step)
    if acc.is_main_process:
        os.makedirs(path, exist_ok=True)
        acc.unwrap_model(model).save_pretrained(path)
        torch.save({"step": step, "opt": opt.state_dict()}, os.path.join(path, "trainer.pt"))
        with open(os.path.join(path, "COMPLETE"), "w") as f:
            json.dump({"step": step}, f)
        print("saved %s" % path, flush=True)
    acc.wait_for_everyone()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--checkpoint-dir", default=os.environ.get("HPQ_CHECKPOINT_DIR", "."))
    ap.add_argument("--resume", default="")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)

    acc = Accelerator()
    model = build(args.model, args.lora_rank)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    step = 0
    if args.resume:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
        weights = os.path.join(args.resume, "adapter_model.safetensors")
        set_peft_model_state_dict(model, load_file(weights))
        state = torch.load(os.path.join(args.resume, "trainer.pt"))
        opt.load_state_dict(state["opt"])
        step = state["step"]
        if acc.is_main_process:
            print("resumed from step %d" % step, flush=True)
    model, opt = acc.prepare(model, opt)
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(acc.process_index)
    while step < args.steps:
        x = torch.randn(16, 64, generator=gen).to(acc.device)
        loss = nn.functional.mse_loss(model(x), x.flip(1)) if args.model == "tiny" else \
            model(input_ids=x.long().abs() % 100, labels=x.long().abs() % 100).loss
        opt.zero_grad()
        acc.backward(loss)
        opt.step()
        step += 1
        if acc.is_main_process and step % 10 == 0:
            print("step %d loss %.4f" % (step, loss.item()), flush=True)
        if step % args.save_every == 0 or step == args.steps or stop:
            save(acc, args.checkpoint_dir, step, model, opt)
        if stop:
            return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
