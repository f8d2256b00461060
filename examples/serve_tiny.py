#!/usr/bin/env python3
"""serve_tiny.py: a tiny HTTP inference server for the inference-server recipe.

The "model" is a fixed bigram table built at start; POST /generate with
{"prompt": "...", "max_tokens": N} returns a continuation, GET /health
answers ok. Standard library only (http.server). It stops cleanly on
SIGTERM or SIGINT.
"""
import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT = ("the queue gives each team its share of the cluster and lends what is idle "
        "the scheduler preempts borrowed work when the owner comes back ")


def bigrams(text):
    words = text.split()
    table = {}
    for a, b in zip(words, words[1:] + words[:1]):
        table.setdefault(a, b)
    return table


MODEL = bigrams(TEXT)


def generate(prompt, n):
    words = prompt.split() or ["the"]
    out = []
    w = words[-1]
    for _ in range(max(0, min(n, 256))):
        w = MODEL.get(w, "the")
        out.append(w)
    return " ".join(out)


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"status": "ok"})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/generate":
            return self.reply(404, {"error": "not found"})
        try:
            n = int(self.headers.get("Content-Length", "0"))
            req = json.loads(self.rfile.read(min(n, 1 << 20)) or b"{}")
            text = generate(str(req.get("prompt", "")), int(req.get("max_tokens", 16)))
        except (ValueError, TypeError) as e:
            return self.reply(400, {"error": str(e)})
        self.reply(200, {"text": text})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)

    def stop(signo, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("serving on %s:%d" % (args.host, srv.server_address[1]), flush=True)
    srv.serve_forever()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
