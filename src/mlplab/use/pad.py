"""The digit pad: a local page where one draws a digit and a trained model reads it while it is drawn.

The page (pad.html: nothing from the internet) posts the canvas as a PNG to /predict; the answer is the top 3
digits and the 28 x 28 image the network saw, framed and classified by mlplab.use.inference as `src/predict.py` does.
"""

import contextlib
import errno
import io
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

from omegaconf import DictConfig
from torch import nn

from mlplab.errors import InputError
from mlplab.use.inference import classify, frame, grayscale, network_input, read_image
from mlplab.use.trained import load_trained

HOST = "127.0.0.1"  # this machine only: the pad is for its own user
MAX_BYTES = 2_000_000  # a drawing of the page's 280 x 280 canvas is about 10 kB as PNG
TOP_K = 3


def answer(module: nn.Module, png: bytes) -> dict[str, Any]:
    """What the page shows for a drawing: the top 3 digits with their probabilities, and the network's input."""
    seen = frame(grayscale(read_image(io.BytesIO(png))))
    [(digits, probabilities)] = classify(module, [network_input(seen)], TOP_K)
    return {"digits": digits, "probabilities": probabilities, "seen": seen.round(decimals=3).tolist()}


class PadServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a browser's open connection

    def __init__(self, port: int, module: nn.Module) -> None:
        super().__init__((HOST, port), PadHandler)
        self.module = module
        port = self.server_address[1]
        self.origin = f"http://{HOST}:{port}"
        self.origins = {self.origin, f"http://localhost:{port}"}


class PadHandler(BaseHTTPRequestHandler):
    """GET / is the page; POST /predict, from the page's own origin only, reads a drawing."""

    server: PadServer

    def do_GET(self) -> None:
        if self.path not in ("/", "/index.html"):
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: no such page; the pad is at /"})
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", files("mlplab.use").joinpath("pad.html").read_bytes())

    def do_POST(self) -> None:
        if self.path != "/predict":
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: post drawings to /predict"})
        # Any other page open in the browser could post here too (and a rebound DNS name could pose as this
        # host): only the pad's own page is answered.
        hosts = {origin.removeprefix("http://") for origin in self.server.origins}
        if self.headers.get("Origin") not in self.server.origins or self.headers.get("Host") not in hosts:
            refusal = f"only the pad's own page ({self.server.origin}) may ask"
            return self._json(HTTPStatus.FORBIDDEN, {"error": refusal})
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or not 0 < int(length) <= MAX_BYTES:
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length.isdigit() and int(length) else HTTPStatus.BAD_REQUEST
            return self._json(status, {"error": f"a drawing is a PNG of 1 to {MAX_BYTES:,} bytes (Content-Length)"})
        body = self.rfile.read(int(length))
        try:
            self._json(HTTPStatus.OK, answer(self.server.module, body))
        except InputError as error:  # a blank canvas, bytes that are no image
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except Exception as error:  # a bug: the page says so, the pad keeps serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the pad failed: {type(error).__name__}: {error}"})

    def _json(self, status: HTTPStatus, content: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(content).encode())

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per stroke would bury the address line


def serve(cfg: DictConfig) -> None:
    """Serves the pad on 127.0.0.1:cfg.port until Ctrl-C."""
    port = cfg.port
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535):
        raise InputError(f"port={port}: give a whole number from 0 to 65535 (0: any free port)")
    network = load_trained(cfg.ckpt_path, cfg.trusted_modules).network
    try:
        server = PadServer(port, network)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise InputError(f"port={port}: already in use on {HOST}; choose another with port=N") from None
        raise InputError(f"port={port}: cannot serve on it ({error.strerror})") from None
    print(f"digit pad: {server.origin}/  (model {cfg.ckpt_path}; Ctrl-C stops it)", flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the way to stop it, not an error
        server.serve_forever()
