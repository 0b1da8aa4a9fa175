"""Real-browser test: JupyterLab + headless Chromium run notebook 02 and use its browser.

It checks what a student sees: the animated figure rendered (a plotly plot with a WebGL
canvas, the expected number of animation frames in its slider) and operating a widget
changes what is shown (another utterance updates the transcript and the figure).

Locally the test is skipped, with the reason, when Chromium or Playwright is missing; in
CI (``CI=true``) it fails instead, since ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser import browser_missing_reason, browser_page, jupyter_lab, run_all_cells, wait_until_idle

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_seeing_nonverbal_cues.ipynb"
BROWSER = ".venus-conversation-browser"
FIGURE_3D = f"{BROWSER} .js-plotly-plot:has(.gl-container #scene)"


@pytest.fixture(scope="module")
def lab_page(tmp_path_factory):
    reason = browser_missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the real-browser test must run in CI: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)  # JupyterLab saves into its copy
    env = {"VENUS_MARS_FAST": "1", "HF_HUB_OFFLINE": "1", "VENUS_MARS_CACHE": str(root / "cache"),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    with jupyter_lab(root, env=env) as (base, token), browser_page() as page:
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator') !== null"
                               " || document.title.includes('02_')", timeout=60_000)  # fmt: skip
        page.wait_for_timeout(2000)  # let the kernel connect
        no_news = page.get_by_role("button", name="No", exact=True)
        if no_news.count():  # JupyterLab asks about news on first start; decline
            no_news.first.click()
        run_all_cells(page)
        wait_until_idle(page)
        yield page


def _shot(page, name: str) -> str:
    folder = Path(os.environ.get("VENUS_MARS_SCREENSHOTS", tempfile.gettempdir())) / "venus-mars-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return str(path)


def _expected_frames() -> tuple[int, int]:
    """(first utterance id, animation frames) the browser shows for the notebook's data."""
    from venus_analysis.animation import MAX_FRAMES, decimate
    from venus_analysis.extraction import segment_utterances
    from venus_analysis.synthetic import SyntheticConfig, generate

    data, _ = generate(SyntheticConfig(n_segments=8, seconds=60), progress=False)  # the notebook's fast size
    first = next(u for u in segment_utterances(data["train"][0]) if u.n_frames > 0)
    return first.utterance_id, len(decimate(first.n_frames, MAX_FRAMES))


def test_no_cell_failed(lab_page):
    errors = lab_page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg, "
                              ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")  # fmt: skip
    assert errors.count() == 0, errors.first.inner_text()[:2000]


def test_the_animated_figure_renders_with_its_frames(lab_page):
    figure = lab_page.locator(FIGURE_3D).first
    figure.wait_for(timeout=60_000)
    figure.scroll_into_view_if_needed()
    has_webgl = figure.evaluate(
        "el => [...el.querySelectorAll('canvas')].some(c => !!(c.getContext('webgl') || c.getContext('webgl2')))"
    )
    assert has_webgl, "no WebGL canvas in the 3-D scene"
    n_frames = figure.evaluate("el => el._transitionData._frames.length")
    n_steps = figure.evaluate("el => el._fullLayout.sliders[0].steps.length")
    first_id, expected = _expected_frames()
    assert n_frames == n_steps == expected
    assert f"Utterance {first_id} " in figure.locator(".gtitle").first.text_content()
    _shot(lab_page, "browser_first_utterance")


def test_choosing_another_utterance_updates_transcript_and_figure(lab_page):
    browser = lab_page.locator(BROWSER).first
    utterance_select = browser.locator("select").nth(1)
    options = utterance_select.locator("option")
    assert options.count() >= 3
    target_label = options.nth(2).inner_text()
    target_id = target_label.split()[0]  # labels read "<id> · speaker k · text" (non-breaking spaces)
    utterance_select.select_option(index=2)
    state = None
    for _ in range(60):  # the kernel answers in about a second; allow a minute
        state = lab_page.evaluate(
            """sel => {
                const b = document.querySelector(sel);
                const s = b.querySelector('.venus-utterance.selected');
                return [s ? s.dataset.utterance : null,
                        [...b.querySelectorAll('.js-plotly-plot .gtitle')].map(t => t.textContent)];
            }""",
            BROWSER,
        )
        if state[0] == target_id and any(f"Utterance {target_id} " in t for t in state[1]):
            break
        lab_page.wait_for_timeout(1000)
    assert state[0] == target_id, state
    assert any(f"Utterance {target_id} " in t for t in state[1]), state
    selected = browser.locator(".venus-utterance.selected")
    assert selected.count() == 1 and selected.get_attribute("data-utterance") == target_id
    lab_page.locator(FIGURE_3D).first.scroll_into_view_if_needed()
    _shot(lab_page, "browser_after_choosing_utterance")
