"""A fake OpenAI-compatible model server for the engine lifecycle tests (run as a script).

    python fake_server.py MODE PORT MODEL

MODE: ``serve`` (lists MODEL, answers chat completions; port 0 is reported the way uvicorn
reports it), ``garbage`` (200 with a non-JSON body), ``garbage-chat`` (lists MODEL, answers
completions with garbage), ``wrong-model`` (lists another model), ``no-logprobs`` (completions
without logprobs), ``ignore-term`` (serve, but ignore SIGTERM), ``spawn-child`` (serve, and
start a grandchild that sleeps; its pid is printed as ``child PID``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE, PORT, MODEL = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if MODE == "garbage":
            self._send(200, b"<html>not a model server</html>")
            return
        if self.path != "/v1/models":
            self._send(404, b'{"detail": "Not Found"}')
            return
        name = "someone-else" if MODE == "wrong-model" else MODEL
        self._send(200, json.dumps({"object": "list", "data": [{"id": name}]}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        choice: dict[str, object] = {
            "index": 0,
            "message": {"role": "assistant", "content": "yes"},
            "finish_reason": "length",
        }
        if MODE == "garbage-chat":
            self._send(200, b"\x00\x01 garbage")
            return
        if request.get("logprobs") and MODE != "no-logprobs":
            choice["logprobs"] = {
                "content": [
                    {
                        "token": "yes",
                        "logprob": -0.1,
                        "top_logprobs": [
                            {"token": "yes", "logprob": -0.1},
                            {"token": "no", "logprob": -2.3},
                        ],
                    }
                ]
            }
        doc = {"choices": [choice], "usage": {"prompt_tokens": 7, "completion_tokens": 1}}
        self._send(200, json.dumps(doc).encode())


def main() -> None:
    if MODE == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if MODE == "spawn-child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"child {child.pid}", flush=True)
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"INFO:     Uvicorn running on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
