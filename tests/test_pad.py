"""The digit pad (python src/draw.py): its server's answers and refusals, then real digits drawn in Chromium."""

import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from base64 import b64decode

import numpy as np
import pytest
import torch
from PIL import Image

from mlplab.training import train
from mlplab.use.inference import frame, grayscale
from mlplab.use.pad import PadServer
from mlplab.use.trained import load_trained

import browser
from conftest import REPO, SYNTHETIC, compose_train, real_data, run_entry

ENV = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}


def draw_command(*overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "src" / "draw.py"), *overrides]


def run_draw(*overrides: str) -> subprocess.CompletedProcess:
    """`python src/draw.py OVERRIDES` run in this process, for the errors it ends in before serving."""
    status, out, err = run_entry("src/draw.py", list(overrides))
    return subprocess.CompletedProcess(draw_command(*overrides), status, out, err)


@pytest.fixture(scope="module")
def synthetic_pad(synthetic_mnist, tmp_path_factory):
    """The pad serving a 1-epoch model of the synthetic digits, in a thread of this process (src/draw.py's own
    process is tested below): its address and the checkpoint."""
    run_dir = tmp_path_factory.mktemp("pad_model")
    metrics, _ = train(compose_train([*SYNTHETIC, "trainer.max_epochs=1", "logger=none"], run_dir, synthetic_mnist))
    module = load_trained(metrics["best_checkpoint"]).network
    with PadServer(0, module) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.origin, metrics["best_checkpoint"]
        server.shutdown()


def post(address: str, body: bytes, origin: str | None = "same", **headers: str) -> tuple[int, dict]:
    headers = {"Content-Type": "image/png", **headers}
    if origin:
        headers["Origin"] = address if origin == "same" else origin
    request = urllib.request.Request(f"{address}/predict", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_pad_answers_a_drawing_with_the_top_3_and_the_image_the_network_sees(synthetic_pad):
    address, _ = synthetic_pad
    canvas = np.full((280, 280), 255)
    canvas[60:200, 120:160] = 0  # a dark bar on white paper
    status, answer = post(address, png(canvas))
    assert status == 200 and len(answer["digits"]) == 3 and len(set(answer["digits"])) == 3
    assert (
        answer["probabilities"] == sorted(answer["probabilities"], reverse=True) and sum(answer["probabilities"]) <= 1
    )
    seen = frame(grayscale(Image.fromarray(canvas.astype(np.uint8))))
    assert np.allclose(answer["seen"], seen.numpy(), atol=1e-3)  # 28 x 28, framed as src/predict.py frames files
    with urllib.request.urlopen(address + "/", timeout=30) as page:
        html = page.read().decode()
    assert '<canvas id="pad"' in html and not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched


@pytest.mark.parametrize(
    ("body", "headers", "origin", "status", "error"),
    [
        (np.full((280, 280), 255), {}, "same", 400, "no digit found: the image is blank"),
        (b"<svg>not a png</svg>", {}, "same", 400, "not an image (Pillow recognises no image format in it)"),
        (b"x", {"Content-Length": str(3_000_000)}, "same", 413, "a drawing is a PNG of 1 to 2,000,000 bytes"),
        (np.zeros((28, 28)), {}, "http://evil.example", 403, "only the pad's own page (http://127.0.0.1:"),
        (np.zeros((28, 28)), {}, None, 403, "only the pad's own page (http://127.0.0.1:"),
    ],
    ids=["blank", "not-an-image", "too-large", "other-origin", "no-origin"],
)
def test_bad_requests_get_a_clear_message_and_the_pad_keeps_serving(
    synthetic_pad, body, headers, origin, status, error
):
    address, _ = synthetic_pad
    data = png(body) if isinstance(body, np.ndarray) else body
    if "Content-Length" in headers:  # a client that announces more than it may send
        with socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), timeout=30) as client:
            host = address.removeprefix("http://")
            client.sendall(
                f"POST /predict HTTP/1.1\r\nHost: {host}\r\nOrigin: {address}\r\n"
                f"Content-Length: {headers['Content-Length']}\r\n\r\n".encode()
            )
            reply = client.makefile("rb").read().decode()
        assert reply.startswith(f"HTTP/1.0 {status}") and error in reply
    else:
        got, answer = post(address, data, origin)
        assert got == status and answer["error"].startswith(error)
    canvas = np.full((280, 280), 255)
    canvas[60:200, 120:160] = 0
    assert post(address, png(canvas))[0] == 200  # still serving


def test_a_missing_or_foreign_checkpoint_and_a_taken_port_end_in_one_line(tmp_path, synthetic_pad):
    result = run_draw()
    assert result.returncode == 1 and result.stderr.startswith("error: ckpt_path is required")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    result = run_draw(f"ckpt_path={foreign}")
    assert result.returncode == 1
    assert result.stderr == f"error: ckpt_path={foreign}: not a Lightning checkpoint (it has no state_dict)\n"
    address, checkpoint = synthetic_pad
    taken = int(address.rsplit(":", 1)[1])
    result = run_draw(f"ckpt_path={checkpoint}", f"port={taken}")
    assert result.returncode == 1
    assert result.stderr == f"error: port={taken}: already in use on 127.0.0.1; choose another with port=N\n"
    result = run_draw(f"ckpt_path={checkpoint}", "port=70000")
    assert result.stderr == "error: port=70000: give a whole number from 0 to 65535 (0: any free port)\n"


# --- in the browser ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_pad(tmp_path_factory):
    """The pad serving the lesson's network after 1 epoch on real MNIST: its address."""
    run_dir = tmp_path_factory.mktemp("real_model")
    metrics, _ = train(compose_train(["trainer.max_epochs=1", "logger=none"], run_dir))
    with browser.digit_pad(metrics["best_checkpoint"]) as address:
        yield address, metrics["best_checkpoint"]


@pytest.mark.browser
@real_data
@pytest.mark.slow
def test_drawn_mnist_digits_are_read_as_src_predict_reads_the_same_drawing(real_pad, tmp_path):
    address, checkpoint = real_pad
    images, labels = browser.mnist_test_digits(12)
    drawings = tmp_path / "drawings"
    drawings.mkdir()
    pages = []
    with browser.chromium() as driver:
        driver.get(address + "/")
        for number, image in enumerate(images):
            driver.find_element("id", "clear").click()
            browser.draw(driver, image, pointer=("mouse", "pen")[number % 2])
            page = browser.shown(driver)
            assert page["message"] == "" and len(page["digits"]) == 3
            drawing = drawings / f"{number:02d}.png"
            drawing.write_bytes(b64decode(page["drawing"].split(",", 1)[1]))
            # The image beside the answer is what the network was given: the drawing framed as predict frames it.
            seen = frame(grayscale(Image.open(drawing))).numpy().ravel()
            assert np.allclose(page["seen"], seen, atol=1.5 / 255)
            pages.append(page)
        driver.save_screenshot(str(tmp_path / "pad.png"))
    result = subprocess.run(
        [sys.executable, str(REPO / "src" / "predict.py"), f"ckpt_path={checkpoint}", f"input={drawings}", "top_k=3"]
        + [f"hydra.run.dir={tmp_path / 'predict'}"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    predicted = json.loads((tmp_path / "predict" / "predictions.json").read_text(encoding="utf-8"))["predictions"]
    for page, prediction in zip(pages, predicted, strict=True):
        assert page["digits"] == prediction["digits"]  # the same forward pass on the same image
        texts = [
            f"{digit}{100 * p:.1f}%" for digit, p in zip(prediction["digits"], prediction["probabilities"], strict=True)
        ]
        assert page["texts"] == texts
    right = sum(page["digits"][0] == label for page, label in zip(pages, labels, strict=True))
    print(f"digits drawn: {len(pages)}; read as their MNIST label: {right}; screenshot: {tmp_path / 'pad.png'}")
    assert right >= 10


@pytest.mark.browser
@real_data
def test_on_a_phone_sized_screen_a_finger_draws_and_the_answer_is_in_view(real_pad, tmp_path):
    address, _ = real_pad
    images, labels = browser.mnist_test_digits(1)
    with browser.chromium(width=390, height=844) as driver:
        driver.get(address + "/")
        box = driver.execute_script("return document.getElementById('pad').getBoundingClientRect().toJSON()")
        assert box["right"] <= driver.execute_script("return window.innerWidth")
        browser.draw(driver, images[0], pointer="touch")
        page = browser.shown(driver)
        top = driver.execute_script("return document.querySelector('#top li').getBoundingClientRect().toJSON()")
        assert top["bottom"] <= driver.execute_script("return window.innerHeight")  # no scrolling to see it
        driver.save_screenshot(str(tmp_path / "pad_phone.png"))
        assert page["digits"][0] == labels[0]
        driver.find_element("id", "clear").click()
        assert driver.execute_script("return document.querySelectorAll('#top li').length") == 0
