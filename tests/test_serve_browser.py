"""stts serve's page in a real headless Chromium: upload a video, find the predicted class and the timeline drawn.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without them.
``STTS_SERVE_SCREENSHOT=docs/serve_page.png`` saves a screenshot of the page; with
``STTS_SERVE_CHECKPOINT`` and ``STTS_SERVE_VIDEO`` it shows that checkpoint on that video
(the README's picture: the demo's checkpoint on a held-out video, as MP4).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from serve_fixtures import running_server, write_checkpoint, write_clip  # noqa: E402

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")
if not (BROWSER and DRIVER):
    pytest.skip("the browser test needs Chromium and its driver: apt-get install chromium chromium-driver",
                allow_module_level=True)

# offline and quiet: no sign-in, updates, field trials or QUIC probes to Google
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--mute-audio", "--window-size=1100,860", "--autoplay-policy=no-user-gesture-required"]

# non-transparent pixels of the timeline canvas (it is cleared to transparent before drawing)
COUNT_DRAWN = """
const canvas = document.getElementById('timeline');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let drawn = 0;
for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++;
return drawn;
"""


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # a driver given: selenium downloads nothing
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_uploads_a_video_and_shows_the_prediction(browser, tmp_path):
    checkpoint = Path(os.environ.get("STTS_SERVE_CHECKPOINT") or write_checkpoint(tmp_path / "tiny.pt"))
    video = Path(os.environ.get("STTS_SERVE_VIDEO") or write_clip(tmp_path / "moving.mp4", frames=60, width=160,
                                                                      height=120))
    with running_server([checkpoint]) as (url, state):
        with httpx.Client(base_url=url) as client:  # what the API answers for the same video
            expected = client.post("/v1/predict", files={"video": (video.name, video.read_bytes())}).json()
        browser.get(url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        browser.find_element(By.ID, "file").send_keys(str(video))
        wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "error"))
        status = browser.find_element(By.ID, "status")
        assert status.get_attribute("data-state") == "done", status.text

        assert browser.find_element(By.ID, "top1").text == expected["top1"]
        names = [item.find_element(By.CLASS_NAME, "name").text for item in browser.find_elements(By.CSS_SELECTOR, "#topk li")]
        assert names == [entry["class"] for entry in expected["topk"]]
        drawn = browser.execute_script(COUNT_DRAWN)
        assert drawn > 5000, f"timeline almost blank: {drawn} pixels drawn"
        # the video plays from the local file with the label of the window under the play head
        wait.until(lambda d: d.execute_script("return document.getElementById('video').readyState >= 2"))
        wait.until(lambda d: d.find_element(By.ID, "label").text)
        assert browser.find_element(By.ID, "label").text.split()[0] in state.models[next(iter(state.models))].classes

        if os.environ.get("STTS_SERVE_SCREENSHOT"):
            browser.execute_script("const v = document.getElementById('video'); v.pause(); v.currentTime = v.duration * 0.6;")
            wait.until(lambda d: d.execute_script("const v = document.getElementById('video');"
                                                  "return !v.seeking && v.readyState >= 2"))
            browser.set_window_size(1100, browser.execute_script("return document.body.scrollHeight") + 140)
            browser.save_screenshot(os.environ["STTS_SERVE_SCREENSHOT"])
