"""Bar charts as inline SVG, drawn by the appliance itself (no outside scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup


def bar_chart(values: Sequence[int], labels: Sequence[str], *, title: str,
              width: int = 900, height: int = 180, every: int = 1) -> Markup:
    """An accessible SVG bar chart; each bar carries a <title> with its label and value.

    `every` prints one axis label in that many bars.
    """
    top = max(values, default=0) or 1
    count = max(len(values), 1)
    slot = width / count
    plot = height - 20
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
             f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        bar = plot * value / top
        x = index * slot
        parts.append(
            f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{plot - bar:.1f}"'
            f' width="{slot * 0.8:.1f}" height="{bar:.1f}" data-value="{value}">'
            f"<title>{escape(label)}: {value}</title></rect>")
        if index % every == 0:
            parts.append(f'<text x="{x + slot * 0.1:.1f}" y="{height - 5}"'
                         f' font-size="11">{escape(label)}</text>')
    parts.append(f'<text x="2" y="11" font-size="11">max {top}</text></svg>')
    return Markup("".join(parts))
