"""The Gradio dashboard driven in a real headless Chromium: upload or pick an example (PNG, DICOM), generate, and
see the report, the provenance panel, one research notice, and heatmaps with captions and a colour bar.

Needs gradio (the ``demo`` extra), selenium, and Debian's ``chromium`` + ``chromium-driver``; skips with the
reason when one is absent. Set XRAY_REPORT_SCREENSHOT_DIR to keep the screenshot.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, SHARED, require_shared
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
                               cwd=REPO_ROOT)
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


REAL_DICOM = SHARED / "data" / "dicom" / "RG1_UNCR.dcm"


@dataclass
class Dashboard:
    """A running dashboard and what the test gave it."""

    url: str
    provenance: list[str]
    example_image: Path
    sibling: Path


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory, trained_model_dir):
    """`python -m xray_report.demo.app` on 127.0.0.1 with a training record beside the model and CSV examples: a
    PNG with a reference, a 12-bit DICOM, the shared real DICOM (when ../shared has it), a missing file."""
    from test_app import write_dicom, write_record

    tmp_path = tmp_path_factory.mktemp("demo")
    model = shutil.copytree(trained_model_dir, tmp_path / "model")
    provenance = write_record(model)
    example = write_png(tmp_path / "ex" / "frontal.png", seed=11)
    write_dicom(tmp_path / "ex" / "scan.dcm", seed=3)
    sibling = tmp_path / "ex" / "notes.txt"
    sibling.write_text("not an example: never served")
    rows = [
        {"study_id": "ex1", "frontal": "ex/frontal.png", "reference": "Reference text here."},
        {"study_id": "ex-dicom", "frontal": "ex/scan.dcm"},
        {"study_id": "ex-missing", "frontal": "ex/missing.png"},
    ]
    if REAL_DICOM.is_file():
        rows.append({"study_id": "ex-real", "frontal": str(REAL_DICOM)})
    examples = write_study_csv(tmp_path / "examples.csv", rows)
    port = _free_port()
    command = [sys.executable, "-m", "xray_report.demo.app", "--model", str(model), "--port", str(port),
               "--examples", str(examples), "--max-file-size", "1mb"]
    with _serving(command, cli_env(), port, tmp_path / "demo.log") as url:
        yield Dashboard(url, provenance, example, sibling)


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


def _value(browser, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f"{selector} textarea").get_attribute("value") or ""


def _open(browser, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate-btn"))


def _generate(browser) -> None:
    """Presses Generate and waits for the learned report and its three heatmaps."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#frontal-preview img"))
    browser.find_element(By.CSS_SELECTOR, "#generate-btn").click()
    WebDriverWait(browser, 90).until(lambda d: _value(d, "#generated-report") == LEARNED_REPORT)
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmaps img")) == 3)


def _upload(browser, image: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "#frontal-input input[type=file]").send_keys(str(image))


def _pick_example(browser, study_id: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.XPATH, f"//*[@id='examples']//tr[.//*[normalize-space(text())='{study_id}']]").click()


def _upload_and_generate(browser, url: str, tmp_path: Path):
    """Opens the page, uploads a frontal image, generates, and waits for the report and its heatmaps."""
    from selenium.webdriver.common.by import By

    _open(browser, url)
    assert "not a medical device" in browser.find_element(By.TAG_NAME, "body").text
    _upload(browser, write_png(tmp_path / "upload" / "frontal.png", seed=12, bright_spot=True))
    _generate(browser)
    return lambda selector: _value(browser, selector)


def _natural_size(browser, element) -> tuple[int, int]:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: int(element.get_attribute("naturalWidth") or 0) > 0)
    return int(element.get_attribute("naturalWidth")), int(element.get_attribute("naturalHeight"))


def test_the_space_serves_the_dashboard_on_its_model(space_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from xray_report.training.record import NOT_RECORDED_LINE

    value = _upload_and_generate(browser, space_server, tmp_path)
    assert value("#report-findings") == "Heart size is unchanged. The lungs are clear."
    assert space_server.startswith("http://127.0.0.1:")  # outside a Space it binds this machine only
    assert browser.find_elements(By.CSS_SELECTOR, "#heatmaps img")
    assert browser.find_element(By.CSS_SELECTOR, "#provenance").text.endswith(NOT_RECORDED_LINE)  # no record: said so


def test_upload_generate_and_see_report_and_heatmaps(demo_server, browser, tmp_path):
    """One notice, above the results; the provenance panel on top; heatmaps at the preview's size with a colour bar
    and their sentence as caption."""
    import httpx
    from selenium.webdriver.common.by import By

    value = _upload_and_generate(browser, demo_server.url, tmp_path)
    assert value("#report-impression") == "No acute cardiopulmonary abnormality."
    assert value("#report-findings") == "Heart size is unchanged. The lungs are clear."
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Cardiomegaly" in page and "uncertain" in page and "Heart size is unchanged." in page

    assert page.count("not a medical device") == 1  # the research notice, once
    notice = browser.find_element(By.CSS_SELECTOR, "#notice")
    results = browser.find_element(By.CSS_SELECTOR, "#generated-report")
    assert notice.is_displayed() and notice.location["y"] < results.location["y"]

    provenance = browser.find_element(By.CSS_SELECTOR, "#provenance")
    assert provenance.location["y"] < browser.find_element(By.CSS_SELECTOR, "#frontal-input").location["y"]
    assert all(line in provenance.text for line in demo_server.provenance) and "synthetic" in provenance.text

    gallery = browser.find_element(By.CSS_SELECTOR, "#heatmaps")
    for number, sentence in enumerate(LEARNED_REPORT.split(". "), start=1):
        assert f"{number}. [frontal, " in gallery.text and sentence.rstrip(".") in gallery.text  # captions
    shown = _natural_size(browser, browser.find_element(By.CSS_SELECTOR, "#frontal-preview img"))
    heatmap = browser.find_elements(By.CSS_SELECTOR, "#heatmaps img")[0]
    width, height = _natural_size(browser, heatmap)
    assert width == shown[0] and height > shown[1]  # the preview's size, then the colour bar and caption below
    figure = np.asarray(Image.open(io.BytesIO(httpx.get(heatmap.get_attribute("src"), timeout=30).content)).convert("RGB"))
    strip = figure[shown[1]:].astype(float)
    low = np.argwhere(np.abs(strip - [0, 0, 96]).sum(axis=-1) < 20)
    high = np.argwhere(np.abs(strip - [255, 32, 0]).sum(axis=-1) < 20)
    assert len(low) and len(high) and low[:, 1].mean() < high[:, 1].mean()  # the colour bar, low to high
    assert browser.find_elements(By.CSS_SELECTOR, "#model-view img")

    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    keep = os.environ.get("XRAY_REPORT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "demo.png")


def test_a_dicom_example_gives_a_report(demo_server, browser):
    """The 12-bit DICOM example an image input flattened to one gray value: read from its file, as the CLI does."""
    from selenium.webdriver.common.by import By

    _open(browser, demo_server.url)
    _pick_example(browser, "ex-dicom")
    _generate(browser)
    assert browser.find_element(By.CSS_SELECTOR, "#status").text == ""
    assert "scan\n.dcm" in browser.find_element(By.CSS_SELECTOR, "#frontal-input").text  # the file itself, by name


def test_the_real_dicom_example_gives_a_report(demo_server, browser):
    from selenium.webdriver.common.by import By

    require_shared("data", "dicom", "RG1_UNCR.dcm")
    _open(browser, demo_server.url)
    _pick_example(browser, "ex-real")
    _generate(browser)
    preview = browser.find_element(By.CSS_SELECTOR, "#frontal-preview img")
    assert _natural_size(browser, preview) == (482, 512)  # 1841 x 1955 read in full, shown at 512 px
    assert _natural_size(browser, browser.find_elements(By.CSS_SELECTOR, "#heatmaps img")[0])[0] == 482


def test_a_dicom_upload_gives_a_report(demo_server, browser, tmp_path):
    from test_app import write_dicom

    _open(browser, demo_server.url)
    _upload(browser, write_dicom(tmp_path / "upload" / "study.dcm", seed=9))
    _generate(browser)


def test_a_missing_example_names_the_file(demo_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, demo_server.url)
    _pick_example(browser, "ex-missing")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#status").text)
    status = browser.find_element(By.CSS_SELECTOR, "#status").text
    assert "ex-missing" in status and "missing.png" in status and "file not found" in status


def test_only_the_example_files_are_served(demo_server):
    """Examples are served file by file: the example image is, a file beside it is not."""
    import httpx

    base = demo_server.url + "gradio_api/file="
    served = httpx.get(base + str(demo_server.example_image.resolve()), timeout=30)
    assert served.status_code == 200 and served.content == demo_server.example_image.read_bytes()
    refused = httpx.get(base + str(demo_server.sibling.resolve()), timeout=30)
    assert refused.status_code == 403 and b"never served" not in refused.content


def test_uploads_over_the_size_limit_are_refused(demo_server, tmp_path):
    import httpx

    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    with big.open("rb") as handle:
        response = httpx.post(demo_server.url + "gradio_api/upload", files={"files": ("big.png", handle, "image/png")},
                              timeout=30)
    assert response.status_code == 413, response.text[:300]
