"""``report.html``: one self-contained page about a model on a split (no network, images embedded).

It holds the card's facts, accuracy and per-class precision / recall with 95% intervals,
the confusion matrix (counts and row percentages), the misclassified gallery, the training
curves (with marks where a run resumed or changed phase) and the float-int8 agreement.
Written by ``sortcam evaluate`` and ``sortcam build``; the figures are matplotlib PNGs.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sortcam.stats import wilson_interval

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.big{font-size:1.3rem;font-weight:600}.muted{color:#666;font-size:.9rem}
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _pct_ci(k: int, n: int) -> str:
    if n == 0:
        return "n/a"
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:.1f}% <span class='muted'>[{100 * lo:.1f}, {100 * hi:.1f}]</span>"


def per_class_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per class: precision and recall with the counts behind them (for the intervals)."""
    cm = metrics["confusion"]
    rows = []
    for i, (name, m) in enumerate(metrics["per_class"].items()):
        tp = int(cm[i][i])
        support = int(sum(cm[i]))
        predicted = int(sum(row[i] for row in cm))
        rows.append({"class": name, "tp": tp, "support": support, "predicted": predicted, "f1": m["f1"]})
    return rows


def write_html_report(
    path: Path,
    title: str,
    metrics: dict[str, Any],
    figures: dict[str, Path],
    card_facts: dict[str, Any] | None = None,
    agreement: float | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write the report; ``figures`` maps section names (``confusion``, ``gallery``, ``curves``) to PNGs."""
    n = int(metrics["images"])
    correct = sum(int(metrics["confusion"][i][i]) for i in range(len(metrics["confusion"])))
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts.append(f"<p class='muted'>{html.escape(str(metrics.get('data', '')))}</p>")
    parts.append(
        f"<p class='big'>accuracy {_pct_ci(correct, n)}</p>"
        f"<p>macro F1 {metrics['macro_f1']:.3f} · top-3 accuracy {100 * metrics['top3_accuracy']:.1f}% · "
        f"lowest class recall {100 * metrics['min_recall']:.1f}% · {n} images"
        + (f" · float–int8 top-1 agreement {100 * agreement:.1f}%" if agreement is not None else "")
        + "</p><p class='muted'>Intervals are 95% Wilson score intervals.</p>"
    )
    for note in notes:
        parts.append(f"<p class='muted'>{html.escape(note)}</p>")
    parts.append(
        "<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>"
    )
    for r in per_class_rows(metrics):
        parts.append(
            f"<tr><td>{html.escape(r['class'])}</td><td>{_pct_ci(r['tp'], r['predicted'])}</td>"
            f"<td>{_pct_ci(r['tp'], r['support'])}</td><td>{r['f1']:.3f}</td><td>{r['support']}</td></tr>"
        )
    parts.append("</table>")
    sections = (
        ("confusion", "Confusion matrix"),
        ("gallery", "Misclassified images (true / predicted)"),
        ("curves", "Training curves"),
    )
    for key, heading in sections:
        if key in figures and figures[key].is_file():
            parts.append(f"<h2>{heading}</h2>{_img(figures[key], heading)}")
    if card_facts:
        parts.append("<h2>Model card</h2><table>")
        for k, v in card_facts.items():
            shown = v if isinstance(v, str) else json.dumps(v)
            parts.append(
                f"<tr><td>{html.escape(str(k))}</td><td style='text-align:left'>{html.escape(shown)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    tmp = path.with_suffix(".html.part")
    tmp.write_text("".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path


def card_facts(card: Any) -> dict[str, Any]:
    """The facts of a :class:`sortcam.card.ModelCard` worth a reader's eye."""
    facts: dict[str, Any] = {
        "model file": card.tflite,
        "classes": ", ".join(card.classes),
        "input": f"{card.input.height}x{card.input.width} {card.input.color}",
        "preprocessing": (
            f"fit {card.preprocess.fit}, resize {card.preprocess.resize}, range {list(card.preprocess.range)}"
        ),
        "flash": f"{card.flash_bytes:,} B",
        "tensor arena": f"{card.arena_bytes:,} B",
        "MACs": f"{card.macs / 1e6:.2f} M",
        "sha256": card.sha256,
    }
    if card.bins:
        facts["bins"] = ", ".join(f"{c} → {b}" for c, b in card.bins.items())
    for k in ("notes", "training", "teacher"):
        if k in card.extra:
            facts[k] = card.extra[k]
    return facts
