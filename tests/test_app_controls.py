"""The app's search controls come from the config dataclasses: one source of defaults, choices and help."""

from __future__ import annotations

import gradio as gr
import pytest

from app import controls, search_tab
from clear_core.config import ERASER_KINDS, EraserOptions, SearchConfig


def _search_controls() -> dict[str, dict]:
    """{label: props} of the page's components, as the browser gets them."""
    from app.layout import build_demo

    demo = build_demo()
    return {c["props"]["label"]: c["props"] for c in demo.config["components"] if c["props"].get("label")}


def test_a_default_changed_in_the_config_shows_in_the_app(monkeypatch):
    """Change SearchConfig / EraserOptions defaults and build the page: the controls follow, with no
    other edit (the CLI's twin: tests/test_cli.py::test_search_options_come_from_the_config_dataclasses)."""
    before = _search_controls()
    assert before["Steps"]["value"] == SearchConfig().steps
    assert "Optimisation steps" in before["Steps"]["info"]
    monkeypatch.setattr(SearchConfig.__dataclass_fields__["steps"], "default", 1230)
    monkeypatch.setattr(SearchConfig.__dataclass_fields__["d_sae"], "default", 768)
    monkeypatch.setattr(SearchConfig.__dataclass_fields__["use_con"], "default", False)
    monkeypatch.setattr(EraserOptions.__dataclass_fields__["calibration_pairs"], "default", 32)
    monkeypatch.setattr(EraserOptions.__dataclass_fields__["gammas"], "default", (0.0, 0.5, 3.0))
    monkeypatch.setattr(EraserOptions.__dataclass_fields__["mask"], "default", "paper")
    monkeypatch.setattr(EraserOptions.__dataclass_fields__["method"], "default", "brute_force")
    after = _search_controls()
    assert after["Steps"]["value"] == 1230
    assert after["SAE features (d_sae)"]["value"] == 768
    assert 768 in [v for _label, v in after["SAE features (d_sae)"]["choices"]]
    assert after["Contrastive loss L_con"]["value"] is False
    assert after["Calibration pairs"]["value"] == 32
    assert after["γ grid searched by the calibration"]["value"] == "0, 0.5, 3"
    assert after["Feature mask"]["value"] == "paper"
    assert search_tab.METHODS[after["Layer selection"]["value"]] == "brute_force"


def test_the_grid_text_reads_back_as_the_config_grid():
    text = controls.gammas_text(EraserOptions().gammas)
    assert search_tab.parse_gammas(text) == EraserOptions().gammas


def test_the_app_labels_name_config_values():
    assert set(search_tab.KINDS.values()) <= set(ERASER_KINDS)
    assert {"search", "brute_force"} == set(search_tab.METHODS.values())
    for label, method in search_tab.METHODS.items():
        assert search_tab.eraser_options("SAE (CLEAR)", "contrastive", label, 8, "1").method == method
    with pytest.raises(ValueError, match="method must be 'search' or 'brute_force'"):
        search_tab.eraser_options("SAE (CLEAR)", "contrastive", "grid search", 8, "1")


def test_a_default_outside_the_app_range_or_choices_is_refused(monkeypatch):
    monkeypatch.setattr(SearchConfig.__dataclass_fields__["steps"], "default", 5000)
    with pytest.raises(
        ValueError, match="SearchConfig.steps: default 5000 is outside the app's range 20..3000"
    ):
        controls.slider(SearchConfig, "steps", 20, 3000, 10, "Steps")
    monkeypatch.setattr(EraserOptions.__dataclass_fields__["kind"], "default", "leace")
    with pytest.raises(
        ValueError, match="EraserOptions.kind: default 'leace' is not one of the app's choices"
    ):
        controls.choice(EraserOptions, "kind", search_tab.KINDS, "Eraser")


def test_info_is_the_field_docstring_with_the_app_note():
    box = controls.checkbox(EraserOptions, "gate", "Look-alike gate", "a note")
    assert isinstance(box, gr.Checkbox) and box.value is False
    assert box.info.startswith("Look-alike gate (needs a preserve list)") and box.info.endswith("; a note")
    assert "``" not in box.info
