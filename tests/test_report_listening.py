"""The listening page of ``melforge-report``: a listening set (two clips through three rows of
short synthetic audio, one clip with a reference and one without) written with
``write_listening_set`` becomes a self-contained ``listening.html`` whose players decode to the
very samples written (within 16-bit quantisation); broken sets fail naming the file."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melforge.core.listening_set import (
    MANIFEST,
    ListeningClip,
    ListeningSetError,
    read_listening_set,
    write_listening_set,
)
from melforge.core.report import LISTENING_PAGE, NoRunsFound, write_report

SR = 8000
ROWS = ("griffin-lim 32", "pg_vocoder (pg)", "HiFi-GAN → tiny")
PCM16 = 1 / 32768  # one 16-bit quantisation step


def _clips() -> list[ListeningClip]:
    """Clip ``it_0001`` (0.25 s, with a reference) and ``MelNet sample 0`` (0.2 s, none): each row
    a different decaying tone, so the players tell the rows apart."""
    t = np.arange(int(0.25 * SR)) / SR
    tone = lambda f, a: (a * np.sin(2 * np.pi * f * t) * np.exp(-3 * t)).astype(np.float32)  # noqa: E731
    first = ListeningClip("it_0001", "held-out speaker it", tone(220, 0.5),
                          {label: tone(220 * (k + 2), 0.3) for k, label in enumerate(ROWS)})
    second = ListeningClip("MelNet sample 0", "MelNet sample", None,
                           {label: tone(330 * (k + 1), 0.4)[: int(0.2 * SR)] for k, label in enumerate(ROWS)})
    return [first, second]


class _Page(HTMLParser):
    """The listening page's clips and cards: ``clips[name] = [card, …]``, each card
    ``{"label", "img", "audio", "text"}``; every ``src``/``href`` seen."""

    def __init__(self):
        super().__init__()
        self.clips: dict[str, list[dict]] = {}
        self.refs: list[str] = []
        self._clip = self._card = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [a[k] for k in ("src", "href") if k in a]
        if tag == "section" and "data-clip" in a:
            self._clip = self.clips.setdefault(a["data-clip"], [])
        elif tag == "div" and "data-label" in a:
            self._card, self._depth = {"label": a["data-label"], "img": [], "audio": [], "text": ""}, 0
            self._clip.append(self._card)
        if self._card is not None and tag == "div":
            self._depth += 1
        if self._card is not None and tag in ("img", "audio"):
            self._card[tag].append(a)

    def handle_endtag(self, tag):
        if self._card is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self._card = None

    def handle_data(self, data):
        if self._card is not None:
            self._card["text"] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _decode(uri: str, prefix: str) -> bytes:
    assert uri.startswith(prefix), uri[:40]
    return base64.b64decode(uri[len(prefix):], validate=True)


@pytest.fixture
def listening_root(tmp_path) -> Path:
    """A folder holding one listening set (in ``bench/``) and no run."""
    write_listening_set(tmp_path / "bench", SR, _clips())
    return tmp_path


def test_the_manifest_names_every_wav_in_order(listening_root):
    manifest = listening_root / "bench" / MANIFEST
    data = json.loads(manifest.read_text())
    assert data["format"] == "melforge listening set" and data["version"] == 1 and data["sr"] == SR
    assert [c["name"] for c in data["clips"]] == ["it_0001", "MelNet sample 0"]
    assert [r["label"] for r in data["clips"][0]["rows"]] == list(ROWS)
    assert data["clips"][0]["reference"] and data["clips"][1]["reference"] is None
    stored = read_listening_set(manifest)
    assert stored.sr == SR and [label for label, _ in stored.clips[1].rows] == list(ROWS)
    assert all(wav.is_file() and wav.parent.parent == manifest.parent for c in stored.clips for _, wav in c.rows)


def test_a_root_with_only_a_listening_set_gets_a_self_contained_page(listening_root):
    jobs, paths = write_report(listening_root)
    assert jobs == [] and list(paths) == [LISTENING_PAGE] and paths[LISTENING_PAGE] == listening_root / LISTENING_PAGE
    assert not (listening_root / "report.html").exists()
    page = paths[LISTENING_PAGE].read_text()
    parsed = _parse(page)
    assert all(r.startswith("data:") for r in parsed.refs), [r[:60] for r in parsed.refs if not r.startswith("data:")]
    assert not re.search(r"""(src|href)=["'](?!data:)""", page) and "<link" not in page and "<script" not in page
    clips = _clips()
    assert list(parsed.clips) == [c.name for c in clips]
    for clip in clips:
        cards = parsed.clips[clip.name]
        expected = ({"reference": clip.reference} if clip.reference is not None else {}) | dict(clip.rows)
        assert [c["label"] for c in cards] == list(expected)  # the reference first, then the rows in order
        for card, (label, audio) in zip(cards, expected.items()):
            assert len(card["audio"]) == 1 and "controls" in card["audio"][0] and len(card["img"]) == 1
            assert label in card["text"] and clip.note in card["text"]
            png = _decode(card["img"][0]["src"], "data:image/png;base64,")
            assert png.startswith(b"\x89PNG\r\n\x1a\n")
            decoded, sr = sf.read(io.BytesIO(_decode(card["audio"][0]["src"], "data:audio/wav;base64,")), dtype="float32")
            assert sr == SR and decoded.shape == audio.shape
            np.testing.assert_allclose(decoded, audio, atol=PCM16, rtol=0)
    assert page.count("<audio controls") == 3 + 1 + 3  # clip 1: reference and three rows; clip 2: three rows


def test_the_cli_renders_a_listening_set(listening_root, capsys):
    from melforge.core.cli.report import main

    main([str(listening_root)])
    assert capsys.readouterr().out.strip().splitlines() == [str(listening_root / LISTENING_PAGE)]


def test_report_html_links_the_listening_page_when_there_are_runs(listening_root):
    """A (failed) run beside the set: both pages; report.html links listening.html."""
    (listening_root / "0_run").mkdir()
    (listening_root / "0_run/config.yaml").write_text("seed: 0\n")
    jobs, paths = write_report(listening_root)
    assert [j.status for j in jobs] == ["failed"]
    assert {"report.html", LISTENING_PAGE} <= set(paths)
    assert f'href="{LISTENING_PAGE}"' in (listening_root / "report.html").read_text()


def test_neither_runs_nor_sets_is_still_no_runs_found(tmp_path):
    with pytest.raises(NoRunsFound, match="listening set"):
        write_report(tmp_path)


def test_a_missing_wav_or_bad_json_names_the_file(listening_root):
    manifest = listening_root / "bench" / MANIFEST
    wav = read_listening_set(manifest).clips[1].rows[2][1]
    wav.unlink()
    with pytest.raises(ListeningSetError, match=re.escape(str(wav))):
        write_report(listening_root)
    assert not (listening_root / LISTENING_PAGE).exists()
    manifest.write_text('{"format": "melforge listening set", "version": 1,')
    with pytest.raises(ListeningSetError, match=re.escape(str(manifest)) + ".*not valid JSON"):
        write_report(listening_root)


def test_a_wav_outside_the_set_or_at_another_rate_is_refused(listening_root):
    manifest = listening_root / "bench" / MANIFEST
    data = json.loads(manifest.read_text())
    data["clips"][0]["rows"][0]["wav"] = "../elsewhere.wav"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ListeningSetError, match="inside the set's folder"):
        read_listening_set(manifest)
    data["clips"][0]["rows"][0]["wav"] = data["clips"][0]["rows"][1]["wav"]
    data["sr"] = 16000
    manifest.write_text(json.dumps(data))
    with pytest.raises(ListeningSetError, match="8000 Hz, the set at 16000 Hz"):
        read_listening_set(manifest)


@pytest.mark.parametrize("change, message", [
    (lambda c: ListeningClip(c.name, c.note, c.reference, {"": c.rows[ROWS[0]]}), "empty row label"),
    (lambda c: ListeningClip(c.name, c.note, c.reference, {"x": np.array([0.0, np.nan])}), "row 'x'.*NaN"),
    (lambda c: ListeningClip(c.name, c.note, c.reference, {"x": np.zeros((2, 10))}), r"row 'x'.*shape \(2, 10\)"),
    (lambda c: ListeningClip(c.name, c.note, np.zeros(0), c.rows), "reference.*non-empty"),
    (lambda c: ListeningClip(c.name, c.note, c.reference, {}), "has no rows"),
    (lambda c: ListeningClip(" ", c.note, c.reference, c.rows), "empty name"),
])
def test_invalid_input_is_refused_before_anything_is_written(tmp_path, change, message):
    clips = _clips()
    clips[1] = change(clips[1])
    with pytest.raises(ListeningSetError, match=message):
        write_listening_set(tmp_path / "bench", SR, clips)
    assert not (tmp_path / "bench").exists()


def test_a_bad_rate_or_repeated_clip_name_is_refused(tmp_path):
    with pytest.raises(ListeningSetError, match="positive integer"):
        write_listening_set(tmp_path, 22050.0, _clips())
    with pytest.raises(ListeningSetError, match="two clips are named 'it_0001'"):
        write_listening_set(tmp_path, SR, [_clips()[0], _clips()[0]])
