#!/usr/bin/env python3
"""dataprep_tiny.py: a tiny CPU data-processing job that checkpoints and resumes.

The cpu-dataprep recipe runs it. It processes --chunks chunks of made-up
records (a running checksum and count per chunk), and after every chunk
writes its progress as a checkpoint named step-N in --checkpoint-dir
atomically: the JSON goes to a temporary name, is flushed to disk and then
renamed into place, so a reader (hpq checkpoint --watch) never sees half a
checkpoint. With --resume PATH it starts after the chunk PATH records and
prints "resumed from step N". On SIGTERM (preemption) it finishes the
chunk at hand, checkpoints and exits with 143. The result goes to --out.

Pure Python 3, standard library only.
"""
import argparse
import hashlib
import json
import os
import signal
import sys
import time

stop = False


def on_term(signo, frame):
    global stop
    stop = True


def process_chunk(index, size):
    """The work of one chunk: hash made-up records. Deterministic."""
    h = hashlib.sha256()
    for i in range(size):
        h.update(("record-%d-%d\n" % (index, i)).encode())
    return h.hexdigest()


def save(ckpt_dir, state):
    """Writes step-N atomically: temporary file, fsync, rename."""
    step = state["step"]
    final = os.path.join(ckpt_dir, "step-%d" % step)
    tmp = os.path.join(ckpt_dir, ".step-%d.tmp" % step)
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, final)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--chunk-size", type=int, default=2000, help="records per chunk")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to wait per chunk")
    ap.add_argument("--checkpoint-dir", default=os.environ.get("HPQ_CHECKPOINT_DIR", "."))
    ap.add_argument("--resume", default="", help="a checkpoint to resume from")
    ap.add_argument("--out", default="", help="where to write the result (JSON)")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    os.makedirs(args.checkpoint_dir, exist_ok=True)

    state = {"step": 0, "digests": []}
    if args.resume:
        with open(args.resume) as f:
            state = json.load(f)
        print("resumed from step %d" % state["step"], flush=True)

    while state["step"] < args.chunks:
        index = state["step"]
        state["digests"].append(process_chunk(index, args.chunk_size))
        state["step"] = index + 1
        path = save(args.checkpoint_dir, state)
        print("chunk %d done, checkpoint %s" % (index + 1, path), flush=True)
        if stop:
            print("stopping at step %d" % state["step"], flush=True)
            return 143
        if args.delay:
            time.sleep(args.delay)
        if stop:
            print("stopping at step %d" % state["step"], flush=True)
            return 143

    total = hashlib.sha256("".join(state["digests"]).encode()).hexdigest()
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            json.dump({"chunks": state["step"], "digest": total}, f)
        os.rename(args.out + ".tmp", args.out)
    print("done: %d chunks, digest %s" % (state["step"], total), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
