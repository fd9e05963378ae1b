"""The model as a service (dlplay/export/serve.py, server_app.py): the server answers as the app
predicts; every bad input gets a 4xx with a message and the server carries on; it stops on request,
when its owner goes away and when the app's process dies; the zip's server runs without dlplay."""
from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dlplay.classify.checkpoint import export_onnx
from dlplay.classify.predict import predict_batch
from dlplay.errors import UserError
from dlplay.export import serve
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig
from helpers import train_to_end, wait_for


@pytest.fixture(scope="module")
def served(mnist):
    """A small CNN trained briefly, its ONNX export, and a server for it."""
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3, padding=1),
                             LayerSpec("maxpool", 1, "identity", kernel=2, stride=2), LayerSpec("dense", 16)))
    session = train_to_end(mnist, spec, TrainConfig(epochs=1, train_size=800, seed=0))
    model = session.model_copy()
    info = mnist.info
    onnx = export_onnx(model, info.mean, info.std)
    server = serve.LocalServer(onnx, {"title": "test", "classes": list(info.classes)}).start()
    yield server, model, info, onnx
    server.stop()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


def test_the_server_answers_as_the_app_predicts(served, mnist):
    server, model, info, _ = served
    images = mnist.test_images[:24].numpy()
    ours = predict_batch(model, images, info.mean, info.std)
    for image, probs in zip(images, ours):
        answer = serve.predict(server.url, image)
        assert answer["class"] == int(np.argmax(probs))
        assert answer["label"] == info.classes[answer["class"]]
        assert np.allclose(answer["probabilities"], probs, atol=2e-5)
    status, many = serve.request(server.url, json.dumps({"images": images[:5].tolist()}).encode())
    assert status == 200
    assert [a["class"] for a in many] == [int(np.argmax(p)) for p in ours[:5]]
    flat = json.dumps({"image": images[0].reshape(-1).tolist()}).encode()  # 784 numbers in a row
    assert serve.request(server.url, flat)[1]["class"] == int(np.argmax(ours[0]))
    status, about = serve.request(server.url, None, path="/")
    assert status == 200
    assert about["classes"] == list(info.classes)


BLACK = [[0] * 28] * 28
BAD = {
    "not JSON": (b"this is not json", 400, "not JSON"),
    "not UTF-8": (b"\xff\xfe{", 400, "UTF-8"),
    "an array, not an object": (b"[1, 2, 3]", 422, "JSON object"),
    "no image": (b'{"picture": 1}', 422, "\"image\""),
    "both keys": (json.dumps({"image": BLACK, "images": [BLACK]}).encode(), 422, "\"image\""),
    "a wrong shape": (json.dumps({"image": [[0] * 27] * 28}).encode(), 422, "28 rows of 28"),
    "a 3-D image": (json.dumps({"image": [BLACK]}).encode(), 422, "shape 1×28×28"),
    "a string pixel": (json.dumps({"image": [["7"] * 28] * 28}).encode(), 422, "must be a number"),
    "a boolean pixel": (json.dumps({"image": [[True] * 28] * 28}).encode(), 422, "must be a number"),
    "a null image": (b'{"image": null}', 422, "28 rows of 28"),
    "NaN": (b'{"image": [[NaN]]}', 422, "NaN"),
    "Infinity": (b'{"image": [[-Infinity]]}', 422, "Infinity"),
    "an overflowing number": (json.dumps({"image": BLACK}).replace("0", "1e999", 1).encode(), 422, "inf"),
    "a pixel above 255": (json.dumps({"image": [[256] * 28] * 28}).encode(), 422, "0 to 255"),
    "a negative pixel": (json.dumps({"image": [[-1] * 28] * 28}).encode(), 422, "0 to 255"),
    "no images": (b'{"images": []}', 422, "1 to 64"),
    "too many images": (json.dumps({"images": [BLACK] * 65}).encode(), 422, "1 to 64"),
    "a body over 1 MB": (b"[" + b"0," * 600_000 + b"0]", 413, "larger than"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_request_gets_a_4xx_with_a_message_and_the_server_carries_on(served, mnist, case):
    server, *_ = served
    body, expected, words = BAD[case]
    status, answer = serve.request(server.url, body)
    assert status == expected, (status, answer)
    assert isinstance(answer, dict), (status, answer)
    assert words in answer["error"], (status, answer)
    assert server.running
    assert serve.request(server.url, serve.image_body(mnist.test_images[0].numpy()))[0] == 200


def test_the_curl_example_gets_an_answer(served):
    server, *_ = served
    assert shutil.which("curl"), "curl is part of the machine (the page shows the command)"
    done = subprocess.run(["bash", "-c", serve.curl_example(server.url)], capture_output=True, text=True, timeout=60)
    answer = json.loads(done.stdout)
    assert done.returncode == 0
    assert len(answer["probabilities"]) == 10
    assert 0 <= answer["class"] < 10


def test_a_body_announced_too_large_and_a_wrong_method_are_refused(served):
    server, *_ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Length", str(50_000_000))  # refused before a byte of it is read
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert "larger than" in json.loads(response.read())["error"]
    conn.close()
    assert serve.request(server.url, None, path="/predict")[0] == 405
    assert serve.request(server.url, None, path="/health") == (200, {"status": "ok"})


def test_the_load_test_is_bounded_and_loopback_only(served):
    server, *_ = served
    results = serve.load_test(server.url, serve.image_body(np.zeros((28, 28))), levels=(1, 4), seconds=0.5,
                              max_requests=200)
    assert [r.clients for r in results] == [1, 4]
    for r in results:
        assert 0 < r.requests <= 200
        assert r.errors == 0
        assert r.rps > 0
        assert r.p50_ms <= r.p95_ms <= r.p99_ms
    with pytest.raises(ValueError, match="only servers on this machine"):
        serve.load_test("http://example.com:80", b"{}", levels=(1,), seconds=0.1)


def test_the_server_stops_on_request_and_when_its_owner_goes_away(served):
    _, _, info, onnx = served
    server = serve.LocalServer(onnx, {"classes": list(info.classes)}).start()
    pid, url = server.pid, server.url
    assert pid is not None
    assert serve.request(url, None, path="/health")[0] == 200
    server.stop()
    assert not server.running
    assert server.stopped_because == "request"
    assert not _alive(pid)
    with pytest.raises(OSError):  # noqa: PT011 - refused or reset: any OS error means nothing answers
        serve.request(url, None, path="/health")

    owner = {"here": True}
    server = serve.LocalServer(onnx, {}, owner_alive=lambda: owner["here"], check_every=0.2).start()
    pid = server.pid
    assert server.running
    owner["here"] = False  # the browser session is gone
    assert wait_for(lambda: not server.running, timeout=30)
    assert server.stopped_because == "owner"
    assert wait_for(lambda: not _alive(pid), timeout=30)


def test_the_server_exits_when_the_app_process_dies(served, tmp_path):
    _, _, _, onnx = served
    (tmp_path / "model.onnx").write_bytes(onnx)
    app = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom dlplay.export.serve import LocalServer\n"
        "s = LocalServer(Path(sys.argv[1]).read_bytes(), {}).start()\nprint(s.pid, s.port, s._folder, flush=True)\n"
        "time.sleep(600)\n"),
        str(tmp_path / "model.onnx")], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        pid, port, folder = app.stdout.readline().split()
        pid, port = int(pid), int(port)
        assert (Path(folder) / "model.onnx").is_file()
        assert serve.request(f"http://127.0.0.1:{port}", None, path="/health")[0] == 200
        os.kill(app.pid, signal.SIGKILL)  # no atexit, no cleanup: only the server's own watch is left
        assert wait_for(lambda: not _alive(pid), timeout=30)
        assert wait_for(lambda: not Path(folder).exists(), timeout=10)  # it cleaned up after itself
    finally:
        app.kill()
        app.wait()


def test_one_process_runs_a_bounded_number_of_servers(served, monkeypatch):
    _server, _, _, onnx = served
    monkeypatch.setenv(serve.ENV_MAX_SERVERS, str(len(serve.running_servers())))
    with pytest.raises(UserError) as refused:
        serve.LocalServer(onnx, {}).start()
    assert refused.value.key == "deploy.too_many"


def test_the_zip_holds_a_server_that_runs_without_dlplay(served, mnist, tmp_path):
    _, model, info, onnx = served
    data = serve.bundle_zip(onnx, {"title": "dlplay-mnist-test", "classes": list(info.classes)})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["Dockerfile", "README.md", "model.json", "model.onnx", "requirements.txt",
                                         "server.py"]
        zf.extractall(tmp_path)
    assert (tmp_path / "server.py").read_text() == serve.SERVER_APP.read_text()
    docker = (tmp_path / "Dockerfile").read_text()
    assert docker.startswith("FROM python:")
    assert "pip install --no-cache-dir -r requirements.txt" in docker
    assert "\"--host\", \"0.0.0.0\"" in docker
    pins = (tmp_path / "requirements.txt").read_text().split()
    assert {p.split("==")[0] for p in pins} == {"numpy", "onnxruntime", "starlette", "uvicorn"}
    proc = subprocess.Popen([sys.executable, "-I", "server.py", "--model", "model.onnx", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    try:
        port = int(proc.stdout.readline().split()[-1])
        image = mnist.test_images[3].numpy()
        answer = serve.predict(f"http://127.0.0.1:{port}", image)
        assert answer["class"] == int(np.argmax(predict_batch(model, image[None], info.mean, info.std)[0]))
    finally:
        proc.terminate()
        proc.wait(10)
