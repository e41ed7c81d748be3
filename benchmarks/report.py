"""Text table, markdown table and the scaling plot of benchmark results."""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

UNITS = {"train": "vol/s", "infer": "vol/s", "smoothgrad": "maps/s", "epoch": "vol/s"}


def _size(r: dict) -> str:
  return f"n={r['num_samples']}" if r["kind"] == "smoothgrad" else f"b={r['batch']}"


def _ratios(r: dict) -> str:
  """'best:1.20x eager:1.90x' (train/infer) or 'loop:2.9x captum_bs8:1.5x' (SmoothGrad)."""
  return " ".join(f"{k[9:]}:{v:.2f}x" for k, v in r.items() if k.startswith("ratio_vs_"))


def _mem(r: dict) -> str:
  mb = r["device_peak_mb"] if r.get("device_peak_mb") is not None else r["peak_rss_growth_mb"]
  return f"{mb:.0f}"


def line(r: dict) -> str:
  """One result as a line of text."""
  return (
    f"{r['name']:<34} {r['rate_median']:9.3f} ({r['rate_min']:.3f}-{r['rate_max']:.3f}) "
    f"{UNITS[r['kind']]:<6} compile {r['compile_s']:6.1f}s  mem {_mem(r):>6} MB  "
    f"{r['gflops_per_s']:6.1f} GFLOP/s  roofline {100 * r['roofline']:5.1f}%  {_ratios(r)}"
  )


def moonshots(results: list[dict], rows) -> list[dict]:
  """Each moonshot row (label, kind, shape, size, target rate) with the best JAX rate measured
  for it (size: the batch, or SmoothGrad's samples) and whether it meets the target."""
  out = []
  for label, kind, shape, size, target in rows:
    size_key = "num_samples" if kind == "smoothgrad" else "batch"
    found = [
      r
      for r in results
      if r["framework"] == "jax"
      and r["kind"] == kind
      and r.get("group", kind) == kind
      and tuple(r["shape"]) == tuple(shape)
      and r[size_key] == size
    ]
    best = max(found, key=lambda r: r["rate_median"], default=None)
    rate = None if best is None else best["rate_median"]
    out.append(
      {
        "label": label,
        "kind": kind,
        "shape": list(shape),
        "size": size,
        "target": target,
        "rate": rate,
        "runner": None if best is None else best["name"],
        "met": None if rate is None else rate >= target,
      }
    )
  return out


def moonshot_markdown(rows: list[dict]) -> str:
  """A markdown table of moonshot rows; '' when there are none."""
  if not rows:
    return ""
  lines = ["", "| moonshot | target | measured | runner | met |", "|---|---|---|---|---|"]
  for m in rows:
    unit = UNITS[m["kind"]]
    rate = "not run" if m["rate"] is None else f"{m['rate']:.3g} {unit}"
    met = "-" if m["met"] is None else ("yes" if m["met"] else "no")
    lines.append(f"| {m['label']} | {m['target']:.4g} {unit} | {rate} | {m['runner']} | {met} |")
  return "\n".join(lines) + "\n"


def markdown(results: list[dict]) -> str:
  """A markdown table of all results, with ratios to the torch peers."""
  rows = [
    "| kind | shape | size | runner | median (min-max) | unit | compile s | peak MB | GFLOP/s "
    "| roofline | vs torch |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in results:
    rows.append(
      f"| {r['kind']} | {'x'.join(map(str, r['shape']))} | {_size(r)} | {r['name']} "
      f"| {r['rate_median']:.3g} ({r['rate_min']:.3g}-{r['rate_max']:.3g}) | {UNITS[r['kind']]} "
      f"| {r['compile_s']:.1f} | {_mem(r)} | {r['gflops_per_s']:.1f} "
      f"| {100 * r['roofline']:.1f}% | {_ratios(r) or '-'} |"
    )
  return "\n".join(rows) + "\n"


def plot(results: list[dict], path: pathlib.Path) -> None:
  """Throughput against batch size (train, infer) and against SmoothGrad samples, log-log.

  One colour per runner in every panel, one line style per volume size.
  """
  panels = [("train", "batch"), ("infer", "batch"), ("smoothgrad", "num_samples")]
  names = list(dict.fromkeys(r["name"] for r in results))
  colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
  shapes = list(dict.fromkeys("x".join(map(str, r["shape"])) for r in results))
  styles = dict(zip(shapes, ["-", "--", ":", "-."] * len(shapes), strict=False))
  fig, axes = plt.subplots(1, 3, figsize=(16, 5))
  for ax, (kind, xkey) in zip(axes, panels, strict=True):
    series = {}
    for r in results:
      if r["kind"] == kind and r.get("group", kind) == kind:
        series.setdefault((r["name"], "x".join(map(str, r["shape"]))), []).append(r)
    for (name, shape), rs in series.items():
      rs = sorted(rs, key=lambda r: r[xkey])
      x = [r[xkey] for r in rs]
      y = [r["rate_median"] for r in rs]
      err = [
        [r["rate_median"] - r["rate_min"] for r in rs],
        [r["rate_max"] - r["rate_median"] for r in rs],
      ]
      ax.errorbar(
        x,
        y,
        yerr=err,
        marker="o",
        capsize=3,
        color=colors[name],
        linestyle=styles[shape],
        label=f"{name} {shape}",
      )
    ax.set(xscale="log", yscale="log", xlabel=xkey, ylabel=UNITS[kind], title=kind)
    ax.set_xticks(sorted({r[xkey] for rs in series.values() for r in rs}))
    for axis in (ax.xaxis, ax.yaxis):
      axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
      axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    if series:
      ax.legend(fontsize=6)
  fig.suptitle("median over repeats, bars: min-max; higher is better", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
