"""The run report: what was run, on what, with which seeds and versions, and the figures it produced.

:func:`build_report` gathers a session's results into one JSON-ready dict (nothing is recomputed);
:func:`render_html` lays it out as a self-contained page (plotly.js inline, opens offline) with the
figures from :mod:`analysis.figures`. Every user-provided string is HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import html
import json
import shlex
import time
from typing import Any

from app.state import Session

__all__ = [
    "BUNDLE_CONCEPT",
    "BUNDLE_IMPLICIT",
    "build_report",
    "render_html",
    "report_figures",
    "reproduce_command",
    "versions",
]


def versions() -> dict[str, str]:
    """Python, the workbench and the libraries that decide the numbers."""
    from clear_core.provenance import library_versions

    return library_versions()


BUNDLE_CONCEPT = "concept.jsonl"
"""The run's pairs, in the exported artifact."""
BUNDLE_IMPLICIT = "implicit.txt"
"""The run's paraphrases (half calibrated γ), in the exported artifact."""


def _cli_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    from clear_core.search import SearchConfig
    from clear_core.workflow import EraserOptions

    options = dataclasses.asdict(EraserOptions())
    options["gammas"] = list(options["gammas"])
    return SearchConfig().to_json(), options


SEARCH_FLAGS = {"steps": "--steps", "seed": "--seed", "d_sae": "--d-sae", "batch_pairs": "--batch-pairs"}
SEARCH_FLAGS |= {
    "sae_kind": "--sae",
    "k": "--k",
    "lr_alpha": "--lr-alpha",
    "verdict_seeds": "--verdict-seeds",
}
"""SearchConfig fields and the ``search`` option that sets each (always written, so a change of the
command line's defaults cannot change what the command does)."""
SET_ELSEWHERE = {"use_con", "layers", "event_every"}
"""SearchConfig fields written another way (``--no-con``) or that do not change the result."""
OPTION_FLAGS = {"kind", "mask", "method", "layer", "calibrate", "gamma", "preserve", "gate"}
OPTION_FLAGS |= {"gammas", "calibration_pairs", "preserve_prompts", "holdout", "calibrate_on"}
OPTION_FLAGS |= {"context_gate", "gate_ramp", "gate_scope", "null_space", "prompt_gate", "probe_gate"}
"""EraserOptions fields the command below writes."""


def reproduce_command(settings: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(the ``search`` command that repeats the run on the exported files, the settings it cannot
    set). The artifact ships the pairs (:data:`BUNDLE_CONCEPT`), the paraphrases
    (:data:`BUNDLE_IMPLICIT`) and the preserve list is in the command, so run in the unzipped folder
    it gives the same block, masks and γ (tested). (None, []) without a search run."""
    if not settings or "search" not in settings:
        return None, []
    s, o = settings["search"], settings["options"]
    args = [
        "python",
        "-m",
        "clear_core",
        "search",
        "--concept",
        BUNDLE_CONCEPT,
        "--name",
        settings["concept"],
    ]
    args += ["--implicit", BUNDLE_IMPLICIT] if settings.get("implicit") else ["--no-implicit"]
    preserve = settings.get("preserve") or []
    args += ["--preserve", ",".join(preserve)] if preserve else ["--no-preserve"]
    if o.get("gate"):
        args.append("--gate")
    if "context_gate" in o:  # written either way: the default of the command line may change
        args.append("--context-gate" if o["context_gate"] else "--no-context-gate")
    if "prompt_gate" in o:
        args.append("--prompt-gate" if o["prompt_gate"] else "--no-prompt-gate")
    if o.get("probe_gate"):
        args.append("--probe-gate")
    if o.get("context_gate") and "gate_ramp" in o:
        args += ["--gate-ramp", f"{o['gate_ramp']:g}"]
    if o.get("gate_scope", "token") != "token":
        args += ["--gate-scope", o["gate_scope"]]
    if o.get("null_space"):
        args += ["--null-space", f"{o['null_space']:g}"]
    args += ["--model", settings["model_id"]]
    for field, flag in SEARCH_FLAGS.items():
        args += [flag, str(s[field])]
    if not s["use_con"]:
        args.append("--no-con")
    if o["method"] == "brute_force":
        args.append("--brute-force")
    if o["kind"] != "sae":
        args += ["--eraser-type", o["kind"]]
    if o["mask"] != "contrastive":
        args += ["--mask", o["mask"]]
    if o.get("layer") is not None:
        args += ["--block", str(o["layer"] - 1)]
    if not o.get("calibrate", True):
        args += ["--gamma", f"{o['gamma']:g}"]
    if o.get("calibrate_on", "text") != "text":
        args += ["--calibrate-on", o["calibrate_on"]]
    args += ["--holdout", f"{o['holdout']:g}"]  # which pairs everything is fit on and measured on
    args += ["--calibration-pairs", str(o["calibration_pairs"])]
    args += ["--gammas", ",".join(f"{g:g}" for g in o["gammas"])]
    args += ["--out", "run"]
    search_defaults, option_defaults = _cli_defaults()
    unset = [
        f"{k} = {v!r}"
        for k, v in s.items()
        if k not in SEARCH_FLAGS and k not in SET_ELSEWHERE and v != search_defaults.get(k)
    ]
    unset += [f"{k} = {v!r}" for k, v in o.items() if k not in OPTION_FLAGS and v != option_defaults.get(k)]
    return shlex.join(args), unset


def _layer_map_summary(session: Session) -> dict[str, Any] | None:
    lm = session.layer_map
    if lm is None:
        return None
    obj = lm.to_json()
    return {
        k: obj[k]
        for k in (
            "layer_names",
            "config",
            "counts",
            "probe",
            "transfer",
            "separability",
            "complete",
            "timings",
        )
    }


def _settings_summary(settings: dict[str, Any]) -> dict[str, Any] | None:
    """The run's settings for the report: the prompt lists themselves travel as files in the
    artifact, the report counts them."""
    if not settings:
        return None
    out = {k: v for k, v in settings.items() if k not in ("pairs", "implicit")}
    out["n_implicit"] = len(settings.get("implicit") or [])
    return out


def build_report(session: Session) -> dict[str, Any]:
    """Everything the session produced, as plain JSON (seeds, versions and settings included)."""
    eraser = session.eraser
    run = session.run
    command, unset = reproduce_command(session.run_settings)
    report: dict[str, Any] = {
        "title": "CLEAR Workbench run report",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
        "model": session.model,
        "concept": None,
        "eraser": None,
        "settings": _settings_summary(session.run_settings),
        "reproduce": command,
        "reproduce_unset": unset,
        "search": None,
        "calibration": None,
        "layer_map": _layer_map_summary(session),
    }
    if session.concept is not None:
        report["concept"] = {
            "name": session.concept.name,
            "n_pairs": len(session.concept),
            "n_held_out": len(session.implicit),
            "source": session.source,
        }
    if eraser is not None:
        meta = eraser.meta
        report["eraser"] = {
            "concept": eraser.concept,
            "model_id": eraser.model_id,
            "model_revision": meta.get("model_revision"),
            "kind": eraser.kind,
            "mask": eraser.mask,
            "layer": eraser.layer,
            "block": eraser.layer - 1,
            "layer_name": eraser.layer_name,
            "default_gamma": eraser.gamma,
            "d_sae": eraser.sae.config.d_sae if eraser.sae is not None else None,
            "source": session.eraser_source,
            "search_config": meta.get("search"),
        }
        report["calibration"] = meta.get("calibration")
        if run is None and "layer_probs" in meta:
            report["search"] = {"candidates": meta.get("candidates"), "probs": meta.get("layer_probs")}
    if run is not None:
        s = run.search
        report["search"] = {
            "layer": s.layer,
            "layer_names": s.layer_names,
            "candidates": s.candidates,
            "probs": s.probs,
            "scales": s.scales,
            "cancelled": run.cancelled,
            "elapsed_s": round(run.elapsed, 3),
            "history": [e.to_json() for e in run.history],
        }
    return report


def report_figures(session: Session) -> list[tuple[str, Any]]:
    """(caption, plotly figure) for every result the session holds, in reading order."""
    from analysis.figures import feature_bars, layer_probability_chart, loss_chart, mask_histograms

    figs: list[tuple[str, Any]] = []
    eraser, run = session.eraser, session.run
    if session.layer_map is not None:
        from app.layer_tab import chosen_layer, layer_map_figures

        sep, proj = layer_map_figures(session.layer_map, chosen=chosen_layer(session, session.layer_map))
        figs += [("Where the concept is separable", sep), ("Prompts at every block", proj)]
    if run is not None and run.search.history:
        s = run.search
        names = [s.layer_names[c] for c in s.candidates]
        pick = (
            s.candidates.index(eraser.layer) if eraser is not None and eraser.layer in s.candidates else None
        )
        steps = [e.step for e in s.history]
        figs.append(
            (
                "Layer probabilities during the search",
                layer_probability_chart(steps, [e.probs for e in s.history], names, pick),
            )
        )
        losses = {
            k: [getattr(e, a) for e in s.history]
            for k, a in (("L_SAE", "loss_sae"), ("L_con", "loss_con"), ("L_CLEAR", "loss_clear"))
        }
        figs.append(("Losses and temperature", loss_chart(steps, losses, [e.tau for e in s.history])))
    if eraser is not None and eraser.kind == "sae":
        shared = eraser.m_shared if eraser.m_shared is not None else 1 - eraser.m_spec
        figs.append(("Feature masks", mask_histograms(shared.numpy(), eraser.m_spec.numpy())))
        t = session.features
        if t is not None:
            k = min(20, len(t.ids))
            figs.append(
                (
                    "Most concept-specific features",
                    feature_bars(t.ids[:k], t.pos_mean[:k], t.neg_mean[:k], t.spec[:k]),
                )
            )
    if eraser is not None:
        from app.preview_tab import calibration_chart

        sweep = calibration_chart(eraser)
        if sweep is not None:
            figs.append(("Calibration: leakage and preservation against γ", sweep))
    return figs


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


_CSS = """
body{font-family:system-ui,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #eee}
th{color:#555;font-weight:600}code,pre{background:#f6f6f6;padding:.1em .3em;border-radius:3px}
pre{padding:.8em;overflow-x:auto;white-space:pre-wrap}
"""


def render_html(report: dict[str, Any], figures: list[tuple[str, Any]]) -> str:
    """A self-contained HTML page: summary tables, the figures (plotly.js inline once), the raw JSON."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(report['title'])}</title>"]
    parts.append(f"<style>{_CSS}</style></head><body><h1>{esc(report['title'])}</h1>")
    parts.append(f"<p>Created {esc(report['created'])} with the CLEAR Workbench.</p>")
    summary = [("model", report["model"])]
    if report["concept"]:
        c = report["concept"]
        summary += [
            ("concept", c["name"]),
            ("pairs", c["n_pairs"]),
            ("held-out paraphrases", c["n_held_out"]),
        ]
    if report["eraser"]:
        e = report["eraser"]
        summary += [
            ("eraser", f"{e['kind']} ({e['mask']} mask) for {e['concept']!r}"),
            ("block", f"{e['block']} ({e['layer_name']})"),
            ("default γ", e["default_gamma"]),
            ("eraser source", e["source"]),
        ]
    if report["settings"]:
        s = report["settings"]["search"]
        summary += [
            ("seed", s["seed"]),
            ("steps", s["steps"]),
            ("d_sae", s["d_sae"]),
            ("L_con", s["use_con"]),
        ]
    parts += ["<h2>Summary</h2>", _table(summary)]
    if report["reproduce"]:
        parts.append(
            "<p>Reproduce on the command line, in the unzipped artifact (it holds the pairs, "
            f"<code>{BUNDLE_CONCEPT}</code>, and the paraphrases, <code>{BUNDLE_IMPLICIT}</code>; the "
            f"preserve list is in the command):</p><pre>{esc(report['reproduce'])}</pre>"
        )
        if report.get("reproduce_unset"):
            unset = ", ".join(report["reproduce_unset"])
            parts.append(f"<p>The command line cannot set: {esc(unset)}; it uses its defaults there.</p>")
    parts += ["<h2>Versions</h2>", _table(list(report["versions"].items()))]
    for i, (caption, fig) in enumerate(figures):
        parts.append(f"<h2>{esc(caption)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False}))
    raw = json.dumps(report, indent=1, ensure_ascii=False, default=str)
    parts += [
        "<h2>Raw report (JSON)</h2>",
        f"<details><summary>show</summary><pre>{esc(raw)}</pre></details>",
    ]
    parts.append("</body></html>")
    return "\n".join(parts)
