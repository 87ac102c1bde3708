"""The Gradio dashboard driven in a real headless Chromium: upload, generate, report text and heatmaps on the page.

Needs gradio (the ``demo`` extra), selenium, and Debian's ``chromium`` + ``chromium-driver``; skips with the
reason when one is absent. Set XRAY_REPORT_SCREENSHOT_DIR to keep the screenshot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from inference_fixtures import LEARNED_REPORT, cli_env, trained_model_dir, write_png, write_study_csv  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,2400",
)


def _missing_browser_stack() -> str | None:
    """Why the browser test cannot run here, or None."""
    for module, extra in (("gradio", "pip install gradio (the demo extra)"), ("selenium", "pip install selenium")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: {extra}"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            return f"{path} is absent: apt-get install {package}"
    return None


_MISSING = _missing_browser_stack()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _serving(command: list[str], env: dict[str, str], port: int, log_path: Path):
    """Runs a dashboard command until it answers on 127.0.0.1:`port`; yields its URL, stops it afterwards."""
    log = log_path.open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                               cwd=Path(__file__).resolve().parents[1])
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the dashboard did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory, trained_model_dir):
    """`python -m xray_report.demo.app` on 127.0.0.1 with one CSV example; yields its URL, stops it afterwards."""
    tmp_path = tmp_path_factory.mktemp("demo")
    write_png(tmp_path / "ex" / "frontal.png", seed=11)
    examples = write_study_csv(
        tmp_path / "examples.csv", [{"study_id": "ex1", "frontal": "ex/frontal.png", "reference": "Reference text here."}]
    )
    port = _free_port()
    command = [sys.executable, "-m", "xray_report.demo.app", "--model", str(trained_model_dir), "--port", str(port),
               "--examples", str(examples), "--max-file-size", "1mb"]
    with _serving(command, cli_env(), port, tmp_path / "demo.log") as url:
        yield url


@pytest.fixture(scope="module")
def space_server(tmp_path_factory, trained_model_dir):
    """`python space/app.py` as a Space runs it (model and port from the environment), outside a Space."""
    tmp_path = tmp_path_factory.mktemp("space")
    port = _free_port()
    env = {**cli_env(), "XRAY_REPORT_MODEL": str(trained_model_dir), "PORT": str(port)}
    env.pop("SPACE_ID", None)
    with _serving([sys.executable, "space/app.py"], env, port, tmp_path / "space.log") as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _upload_and_generate(browser, url: str, tmp_path: Path):
    """Opens the page, uploads a frontal image, generates, and waits for the report and its heatmaps."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def value(selector: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f"{selector} textarea").get_attribute("value") or ""

    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate-btn"))
    assert "not a medical device" in browser.find_element(By.TAG_NAME, "body").text
    image = write_png(tmp_path / "upload" / "frontal.png", seed=12, bright_spot=True)
    browser.find_element(By.CSS_SELECTOR, "#frontal-input input[type=file]").send_keys(str(image))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#frontal-input img"))
    browser.find_element(By.CSS_SELECTOR, "#generate-btn").click()
    WebDriverWait(browser, 90).until(lambda d: value("#generated-report") == LEARNED_REPORT)
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmaps img")) == 3)
    return value


def test_the_space_serves_the_dashboard_on_its_model(space_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    value = _upload_and_generate(browser, space_server, tmp_path)
    assert value("#report-findings") == "Heart size is unchanged. The lungs are clear."
    assert space_server.startswith("http://127.0.0.1:")  # outside a Space it binds this machine only
    assert browser.find_elements(By.CSS_SELECTOR, "#heatmaps img")


def test_upload_generate_and_see_report_and_heatmaps(demo_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    value = _upload_and_generate(browser, demo_server, tmp_path)
    assert value("#report-impression") == "No acute cardiopulmonary abnormality."
    assert value("#report-findings") == "Heart size is unchanged. The lungs are clear."
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Cardiomegaly" in page and "uncertain" in page and "Heart size is unchanged." in page
    heatmap = browser.find_elements(By.CSS_SELECTOR, "#heatmaps img")[0]
    WebDriverWait(browser, 30).until(lambda d: int(heatmap.get_attribute("naturalWidth") or 0) > 0)
    assert browser.find_elements(By.CSS_SELECTOR, "#model-view img")

    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    keep = os.environ.get("XRAY_REPORT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "demo.png")


def test_uploads_over_the_size_limit_are_refused(demo_server, tmp_path):
    import httpx

    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    with big.open("rb") as handle:
        response = httpx.post(demo_server + "gradio_api/upload", files={"files": ("big.png", handle, "image/png")}, timeout=30)
    assert response.status_code == 413, response.text[:300]
