#!/usr/bin/env python3
"""pretrain_tiny.py: a tiny PyTorch pre-training run for the torchrun-pretrain recipe.

It trains a small MLP language-model stand-in on random tokens with
DistributedDataParallel when torchrun started several processes (one per
GPU; on a machine without a GPU it runs on the CPU with the gloo backend).
Every --save-every steps rank 0 writes a checkpoint step-N into
$HPQ_CHECKPOINT_DIR atomically: torch.save to a temporary name, then
os.rename, so hpq's watcher reports only complete checkpoints. With
--resume PATH (the recipe passes the newest checkpoint after preemption)
it loads the model, the optimizer and the step and prints
"resumed from step N". On SIGTERM (preemption) it saves a checkpoint at
the current step and exits.
"""
import argparse
import os
import signal
import sys
import time

try:
    import torch
    import torch.distributed as dist
    import torch.nn as nn
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("pretrain_tiny.py needs PyTorch: pip install torch")

stop = False


def on_term(signo, frame):
    global stop
    stop = True


class TinyLM(nn.Module):
    def __init__(self, vocab=256, dim=64):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, vocab))

    def forward(self, x):
        return self.mlp(self.emb(x))


def save(ckpt_dir, step, model, opt):
    final = os.path.join(ckpt_dir, "step-%d" % step)
    tmp = os.path.join(ckpt_dir, ".step-%d.tmp" % step)
    torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict()}, tmp)
    os.rename(tmp, final)
    print("saved %s" % final, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to wait per step")
    ap.add_argument("--checkpoint-dir", default=os.environ.get("HPQ_CHECKPOINT_DIR", "."))
    ap.add_argument("--resume", default="")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")

    torch.manual_seed(0)
    model = TinyLM().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    step = 0
    if args.resume:
        state = torch.load(args.resume, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        if rank == 0:
            print("resumed from step %d" % step, flush=True)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[local] if cuda else None) \
        if world > 1 else model
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    gen = torch.Generator(device="cpu").manual_seed(1000 + rank)

    while step < args.steps:
        x = torch.randint(0, 256, (args.batch, 16), generator=gen).to(device)
        y = torch.roll(x, -1, dims=1)  # predict the next token
        loss = nn.functional.cross_entropy(ddp(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if rank == 0 and step % 10 == 0:
            print("step %d loss %.4f" % (step, loss.item()), flush=True)
        # Everyone agrees on stopping, so that all ranks leave together.
        flag = torch.tensor([1 if stop else 0], device=device)
        if world > 1:
            dist.all_reduce(flag)
        if step % args.save_every == 0 or step == args.steps or flag.item():
            if rank == 0:
                save(args.checkpoint_dir, step, model, opt)
            if world > 1:
                dist.barrier()
        if flag.item():
            if rank == 0:
                print("preempted at step %d" % step, flush=True)
            break
        if args.delay:
            time.sleep(args.delay)
    if world > 1:
        dist.destroy_process_group()
    return 143 if stop else 0


if __name__ == "__main__":
    sys.exit(main())
