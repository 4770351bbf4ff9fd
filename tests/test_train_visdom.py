"""--visdom: a real visdom server on 127.0.0.1 receives the seed's windows."""

import socket
import subprocess
import sys
import time

import pytest

from conftest import moving_squares
from stts.engine.config import TrainConfig
from stts.engine.train import fit

visdom = pytest.importorskip("visdom", reason="visdom is not installed (pip install 'setuptools<81' then "
                                              "pip install --no-build-isolation visdom)")

WINDOWS = ["Loss", "Top1 Accuracy", "Top5 Accuracy", "Train Confusion Matrix", "Val Confusion Matrix",
           "Test Confusion Matrix"]


@pytest.fixture
def visdom_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # run_server.main() serves the API without first downloading the browser's JavaScript (no internet here)
    command = [sys.executable, "-c", "from visdom.server.run_server import main; main()", "-port", str(port),
               "--hostname", "127.0.0.1", "-env_path", str(tmp_path / "envs"), "-logging_level", "WARNING"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = visdom.Visdom(server="http://127.0.0.1", port=port, use_incoming_socket=False, raise_exceptions=False)
    deadline = time.monotonic() + 30
    while not client.check_connection() and time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.skip(f"the visdom server did not start: {server.stderr.read().decode()[-300:]}")
        time.sleep(0.2)
    try:
        yield port, client
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_visdom_gets_the_seeds_windows_in_an_environment_named_after_the_dataset(tmp_path, visdom_server):
    port, client = visdom_server
    config = TrainConfig(data_type="tiny-set", model_type="c3d", width=8, clip_len=8, crop_size=32, batch_size=8,
                         epochs=2, workers=0, precision="fp32", tensorboard=False, visdom=f"127.0.0.1:{port}",
                         out=str(tmp_path / "run"))
    fit(config, datasets=moving_squares())
    for window in WINDOWS:
        assert client.win_exists(window, env="tiny-set"), window
    import json

    loss = json.loads(client.get_window_data("Loss", env="tiny-set"))
    assert [trace["name"] for trace in loss["content"]["data"]] == ["train", "val", "test"]
    assert loss["content"]["data"][0]["x"] == [1, 2]
    heatmap = json.loads(client.get_window_data("Test Confusion Matrix", env="tiny-set"))
    assert heatmap["content"]["data"][0]["x"] == ["right", "left", "down", "up"]
