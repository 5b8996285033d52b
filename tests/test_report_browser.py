"""``report.html`` in a real browser (issue 20, item 9): Debian's headless ``chromium`` opens the
report of a tiny sweep (two finished jobs, a failed one, a running one) at 1400 px. The table,
the images and the audio players render with no console errors, every audio element has a
playable duration (its WAV's), and each job's player sits under its spectrogram, on screen. A
screenshot is saved in the test's temp dir. The listening page of a small listening set loads one
player per card, each with its WAV's duration. ``.ci/run`` installs chromium so that CI runs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf



def _report_fixtures():
    """test_report.py's module-scoped fixtures (the tests run with --import-mode=importlib, so
    sibling test modules are not importable by name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_report_tests", Path(__file__).with_name("test_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sweep, module.report


sweep, report = _report_fixtures()  # the tiny sweep and its report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium; .ci/run does)")

WIDTH = 1400

#: Injected first into <head>: records errors (scripts, images, media) and console.error calls.
_WATCH = """<script>
window.__errors = [];
console.error = (...a) => window.__errors.push('console.error: ' + a.join(' '));
window.addEventListener('error', e => window.__errors.push(
  (e.target && e.target.tagName ? e.target.tagName + ' failed to load' : 'error: ' + e.message)), true);
</script>"""

#: Injected last into <body>: once every audio element has its metadata (or failed), writes what
#: rendered into <pre id="probe"> for --dump-dom.
_PROBE = """<script>
function probe() {
  const rect = el => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}; };
  const audios = [...document.querySelectorAll('table audio')].map(a => {
    const img = a.closest('td').querySelector('img');
    return {duration: a.duration, error: a.error ? a.error.code : null, rect: rect(a), img: img ? rect(img) : null};
  });
  const images = [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth, alt: i.alt}));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({audios, images, rows: document.querySelectorAll('table tr').length,
                                    table: rect(document.querySelector('table')), innerWidth: window.innerWidth,
                                    errors: window.__errors});
  document.body.appendChild(out);
}
window.addEventListener('load', () => {
  const audios = [...document.querySelectorAll('audio')];
  Promise.all(audios.map(a => a.readyState >= 1 ? null : new Promise(ok => {
    a.addEventListener('loadedmetadata', ok); a.addEventListener('error', ok); }))).then(probe);
});
</script>"""


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--enable-logging=stderr", "--v=0", f"--window-size={WIDTH},1000", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def rendered(sweep, report, tmp_path_factory) -> dict:  # noqa: F811 - the imported fixtures
    page = (sweep / "report.html").read_text()
    probe_page = tmp_path_factory.mktemp("browser") / "probe.html"
    probe_page.write_text(page.replace("<head>", "<head>" + _WATCH, 1).replace("</body>", _PROBE + "</body>", 1))
    proc = _chromium("--virtual-time-budget=20000", "--dump-dom", probe_page.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the probe did not run: {proc.stderr[-3000:]}"
    import html

    result = json.loads(html.unescape(found.group(1)))
    result["console"] = [l for l in proc.stderr.splitlines() if ":CONSOLE(" in l]
    return result


def test_the_table_images_and_players_render_without_errors(rendered):
    assert rendered["errors"] == [] and rendered["console"] == [], (rendered["errors"], rendered["console"])
    assert rendered["rows"] == 1 + 4  # the header and four jobs
    assert len(rendered["images"]) == 2 + 2  # a spectrogram per sampled job, curves.png, samples.png
    assert all(i["complete"] and i["width"] > 50 for i in rendered["images"]), rendered["images"]


def test_each_audio_element_has_its_wavs_duration(rendered, sweep):  # noqa: F811
    wavs = sorted(sweep.glob("[01]_*/samples/sample_000.wav"))
    assert len(rendered["audios"]) == len(wavs) == 2
    for audio, wav in zip(rendered["audios"], wavs):
        assert audio["error"] is None
        assert audio["duration"] == pytest.approx(sf.info(wav).duration, abs=0.01), (audio, wav)


def test_each_player_sits_under_its_spectrogram_on_screen(rendered):
    for audio in rendered["audios"]:
        a, img = audio["rect"], audio["img"]
        assert a["width"] > 100 and a["height"] > 10, a  # drawn
        assert a["right"] <= rendered["innerWidth"], (a, rendered["innerWidth"])  # not off-screen to the right
        assert img["left"] - 1 <= a["left"] <= img["right"] and 0 <= a["top"] - img["bottom"] < 40, (a, img)


def test_a_screenshot_is_saved(sweep, report, tmp_path):  # noqa: F811
    shot = tmp_path / "report.png"
    proc = _chromium(f"--screenshot={shot}", "--hide-scrollbars", (sweep / "report.html").as_uri())
    assert shot.is_file() and shot.read_bytes().startswith(b"\x89PNG"), proc.stderr[-2000:]
    print(f"screenshot: {shot}")


#: Injected last into the listening page's <body>: once every player has its metadata (or
#: failed), writes each card's player duration and error, and whether its image drew.
_LISTEN_PROBE = """<script>
window.addEventListener('load', () => {
  const audios = [...document.querySelectorAll('audio')];
  Promise.all(audios.map(a => a.readyState >= 1 ? null : new Promise(ok => {
    a.addEventListener('loadedmetadata', ok); a.addEventListener('error', ok); }))).then(() => {
    const cards = [...document.querySelectorAll('div.card')].map(c => {
      const a = c.querySelector('audio'), i = c.querySelector('img');
      return {label: c.dataset.label, duration: a ? a.duration : null, error: a && a.error ? a.error.code : null,
              img: i ? i.complete && i.naturalWidth > 50 : false};
    });
    const out = document.createElement('pre');
    out.id = 'probe';
    out.textContent = JSON.stringify({cards, audios: audios.length, errors: window.__errors});
    document.body.appendChild(out);
  });
});
</script>"""


def test_the_listening_page_players_load(tmp_path):
    """listening.html of a two-clip set: one player per card, each with its WAV's duration."""
    import html

    import numpy as np

    from melforge.core.listening_set import ListeningClip, write_listening_set
    from melforge.core.report import write_report

    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 4000).astype(np.float32)
    write_listening_set(tmp_path, 8000, [ListeningClip("a", "held out", noise, {"x": noise, "y": noise[:2000]}),
                                         ListeningClip("b", "generated", None, {"x": noise[:3000]})])
    page = write_report(tmp_path)[1]["listening.html"].read_text()
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page.replace("<head>", "<head>" + _WATCH, 1).replace("</body>", _LISTEN_PROBE + "</body>", 1))
    proc = _chromium("--virtual-time-budget=20000", "--dump-dom", probe_page.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the probe did not run: {proc.stderr[-3000:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert result["errors"] == [] and result["audios"] == 4, result
    assert [c["label"] for c in result["cards"]] == ["reference", "x", "y", "x"]
    for card, seconds in zip(result["cards"], (0.5, 0.5, 0.25, 0.375)):
        assert card["error"] is None and card["img"] and card["duration"] == pytest.approx(seconds, abs=0.01), card
