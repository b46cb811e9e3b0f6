#!/usr/bin/env python3
"""Validation loss against wall-clock minutes for several training runs, from their metrics logs (`set log FILE`,
CSV or JSON lines), as one self-contained SVG and a Markdown table. scripts/compare.clm writes compare-FAMILY.csv for
the race of the four families (docs/benchmarks.md); the README shows the figure this draws.

    python3 scripts/race_plot.py --out docs/race.svg --reference "6-gram=1.5748" \\
        RNN=compare-rnn.csv GRU=compare-gru.csv LSTM=compare-lstm.csv transformer=compare-transformer.csv

Standard library only. Minutes are the log's elapsed_s (time spent in `train`, validations included) from the run's
first line on.
"""

import argparse
import csv
import json
import sys

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def read_validations(path):
    """The (minutes, step, validation loss) of each validation line in a metrics log."""
    with open(path, encoding="utf-8") as f:
        if path.endswith((".jsonl", ".json")):
            records = [json.loads(line) for line in f if line.strip()]
        else:
            records = list(csv.DictReader(f))
    if not records:
        raise SystemExit(f"race_plot: {path} holds no lines: run the script that writes it first")
    start = float(records[0]["elapsed_s"])
    points = []
    for record in records:
        loss = record.get("val_loss")
        if loss not in (None, ""):
            points.append(((float(record["elapsed_s"]) - start) / 60, int(record["step"]), float(loss)))
    return points


def svg(runs, references, title, width=640, height=400):
    """One chart: a line per run (validation loss against minutes), a dashed line per reference loss."""
    left, right, top, bottom = 60, 150, 30, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    losses = [loss for _, points in runs for _, _, loss in points] + [value for _, value in references]
    minutes = [m for _, points in runs for m, _, _ in points]
    y_low, y_high = min(losses) - 0.02, min(max(losses), min(losses) + 0.6) + 0.02
    x_high = max(minutes) if minutes else 1

    def x(m):
        return left + plot_w * m / x_high

    def y(loss):
        loss = min(max(loss, y_low), y_high)
        return top + plot_h * (y_high - loss) / (y_high - y_low)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="14">{title}</text>']
    # grid and axes
    step = 0.05 if y_high - y_low <= 0.4 else 0.1
    tick = round(y_low / step + 0.5) * step
    while tick <= y_high:
        parts.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{left + plot_w}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
        tick += step
    minute_step = 1 if x_high <= 12 else 5
    m = 0
    while m <= x_high + 1e-9:
        parts.append(f'<line x1="{x(m):.1f}" y1="{top}" x2="{x(m):.1f}" y2="{top + plot_h}" stroke="#eee"/>')
        parts.append(f'<text x="{x(m):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{m}</text>')
        m += minute_step
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">minutes of training '
                 f'(2 cores)</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2})">validation loss (nats/char)</text>')
    # references, then runs, each with its legend entry
    legend_y = top + 10
    for label, value in references:
        parts.append(f'<line x1="{left}" y1="{y(value):.1f}" x2="{left + plot_w}" y2="{y(value):.1f}" '
                     f'stroke="#666" stroke-dasharray="6 4"/>')
        parts.append(f'<line x1="{left + plot_w + 10}" y1="{legend_y}" x2="{left + plot_w + 30}" y2="{legend_y}" '
                     f'stroke="#666" stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{left + plot_w + 36}" y="{legend_y + 4}">{label} {value:.4f}</text>')
        legend_y += 20
    for index, (label, points) in enumerate(runs):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{x(m):.1f},{y(loss):.1f}" for m, _, loss in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for m, step_number, loss in points:
            parts.append(f'<circle cx="{x(m):.1f}" cy="{y(loss):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{label}, step {step_number}, {m:.1f} min: {loss:.4f}</title></circle>')
        best = min(loss for _, _, loss in points)
        parts.append(f'<line x1="{left + plot_w + 10}" y1="{legend_y}" x2="{left + plot_w + 30}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{left + plot_w + 36}" y="{legend_y + 4}">{label} {best:.4f}</text>')
        legend_y += 20
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def table(runs):
    """Markdown: each run's validations, step, minutes and loss, its best in bold."""
    lines = ["| run | step | minutes | validation loss |", "|---|---:|---:|---:|"]
    for label, points in runs:
        best = min(loss for _, _, loss in points)
        for m, step_number, loss in points:
            shown = f"**{loss:.4f}**" if loss == best else f"{loss:.4f}"
            lines.append(f"| {label} | {step_number:,} | {m:.1f} | {shown} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=LOG", help="a run's label and its metrics log")
    parser.add_argument("--out", required=True, help="the SVG file to write")
    parser.add_argument("--title", default="Validation loss against wall-clock time")
    parser.add_argument("--reference", action="append", default=[], metavar="LABEL=LOSS",
                        help="a dashed line at a loss (e.g. the best n-gram's)")
    args = parser.parse_args()
    runs = []
    for run in args.runs:
        label, _, path = run.partition("=")
        if not path:
            raise SystemExit(f"race_plot: '{run}' is not LABEL=LOG")
        points = read_validations(path)
        if not points:
            raise SystemExit(f"race_plot: {path} holds no validation line (is `set eval` on?)")
        runs.append((label, points))
    references = []
    for reference in args.reference:
        label, _, value = reference.partition("=")
        references.append((label, float(value)))
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(svg(runs, references, args.title))
    print(table(runs))
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
