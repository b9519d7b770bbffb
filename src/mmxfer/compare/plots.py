"""Margin plots (matplotlib, Agg backend), each written as PNG and SVG.

- :func:`forest_plot`: margins per task category (and the suite average) with intervals;
- :func:`resource_plot`: per-language margins against XLM-R pretraining size (log scale),
  coloured by script;
- :func:`heatmap`: arms x tasks, margin against the baseline;
- :func:`family_plot`: FLORES-200 margins over all languages, grouped by family.

Every function takes the frames of :class:`mmxfer.compare.gaps.GapResult` (or the same
columns read back from CSV) and returns the paths it wrote.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmxfer.languages import metadata  # noqa: E402
from mmxfer.runs import atomic  # noqa: E402

UNSEEN_GB = 0.03  # where languages outside XLM-R's 100 are drawn on the log axis


def save(fig: plt.Figure, out_dir: str | Path, stem: str) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{stem}.{ext}"
        with atomic.atomic_open(path, "wb") as handle:
            fig.savefig(handle, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _label(row: pd.Series) -> str:
    return f"{row['arm']} - {row['reference']}"


def forest_plot(
    categories: pd.DataFrame,
    suite: pd.DataFrame,
    out_dir: str | Path,
    stem: str = "forest_categories",
) -> list[Path]:
    """One row per comparison x category (+ suite average), point = margin, bar = interval."""
    frames = [categories.assign(group=categories["category"])]
    if not suite.empty:
        frames.append(suite.assign(group="suite average"))
    df = pd.concat(frames, ignore_index=True)
    df["comparison"] = df.apply(_label, axis=1)
    groups = list(dict.fromkeys(df["group"]))
    comps = list(dict.fromkeys(df["comparison"]))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(df) + 1.5))
    colors = plt.get_cmap("tab10")
    y, ticks, labels = 0, [], []
    for group in groups:
        sub = df[df["group"] == group]
        for row in sub.itertuples():
            c = colors(comps.index(row.comparison) % 10)
            lo, hi = row.ci_low, row.ci_high
            if pd.notna(lo):
                ax.plot([lo, hi], [y, y], color=c, lw=1.6)
            ax.plot(row.margin, y, "o", color=c, mfc="white" if not row.significant else c)
            ticks.append(y)
            labels.append(f"{group}: {row.comparison}")
            y -= 1
        y -= 0.6
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("margin (score points; filled = significant after correction)")
    ax.set_title("Margins per task category")
    return save(fig, out_dir, stem)


def _per_language(languages: pd.DataFrame) -> pd.DataFrame:
    """Mean margin per comparison x language over the tasks, with language metadata."""
    per = languages.groupby(["arm", "reference", "kind", "lang"], as_index=False)["margin"].mean()
    meta = metadata(list(dict.fromkeys(per["lang"])))
    return per.merge(meta, on="lang", how="left")


def resource_plot(
    languages: pd.DataFrame,
    out_dir: str | Path,
    stem: str = "margin_vs_resource",
    max_panels: int = 6,
) -> list[Path]:
    """Per-language margin vs XLM-R CC-100 GiB (log x); unseen languages at the left edge."""
    per = _per_language(languages)
    comps = per[["arm", "reference"]].drop_duplicates().head(max_panels)
    n = len(comps)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False, sharey=True)
    scripts = sorted(per["script"].dropna().unique())
    cmap = plt.get_cmap("tab20")
    for ax, (_, comp) in zip(axes[0], comps.iterrows()):
        sub = per[(per["arm"] == comp["arm"]) & (per["reference"] == comp["reference"])]
        x = sub["xlmr_gb"].fillna(UNSEEN_GB).to_numpy(float)
        for i, script in enumerate(scripts):
            m = (sub["script"] == script).to_numpy()
            if m.any():
                ax.scatter(
                    x[m], sub["margin"].to_numpy()[m], s=18, color=cmap(i % 20), label=script
                )
        ax.set_xscale("log")
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.axvline(UNSEEN_GB * 1.8, color="lightgrey", lw=0.6)
        ax.set_title(f"{comp['arm']} - {comp['reference']}", fontsize=9)
        ax.set_xlabel("XLM-R CC-100 GiB (log; left of line = unseen)")
    axes[0][0].set_ylabel("margin (mean over tasks)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            labels,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            fontsize=7,
            title="script",
        )
    return save(fig, out_dir, stem)


def heatmap(
    tasks: pd.DataFrame, out_dir: str | Path, stem: str = "heatmap_arms_tasks"
) -> list[Path]:
    """Arms x tasks, margin against the baseline (task level)."""
    vs_base = tasks[tasks["kind"].str.endswith("vs-baseline")]
    if vs_base.empty:
        vs_base = tasks
    grid = vs_base.pivot_table(index="arm", columns="task", values="margin", aggfunc="mean")
    sig = vs_base.pivot_table(index="arm", columns="task", values="significant", aggfunc="max")
    fig, ax = plt.subplots(figsize=(1.0 * grid.shape[1] + 2.5, 0.5 * grid.shape[0] + 1.5))
    vmax = float(np.nanmax(np.abs(grid.to_numpy()))) if grid.size else 1.0
    im = ax.imshow(
        grid.to_numpy(float), cmap="RdBu", vmin=-vmax or -1, vmax=vmax or 1, aspect="auto"
    )
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            if pd.notna(v):
                star = "*" if bool(sig.iat[i, j]) else ""
                ax.text(j, i, f"{v:+.1f}{star}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="margin vs baseline (* significant)")
    ax.set_title("Arms x tasks")
    return save(fig, out_dir, stem)


def family_plot(
    languages: pd.DataFrame,
    out_dir: str | Path,
    arm: str,
    reference: str,
    task: str | None = None,
    stem: str | None = None,
) -> list[Path]:
    """Margins of one comparison over every language of a (FLORES-200) task, grouped by family."""
    sub = languages[(languages["arm"] == arm) & (languages["reference"] == reference)]
    if task is not None:
        sub = sub[sub["task"] == task]
    per = sub.groupby("lang", as_index=False).agg(
        margin=("margin", "mean"), ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean")
    )
    per = per.merge(metadata(list(per["lang"])), on="lang", how="left")
    sizes = per["family"].value_counts()
    per["family_n"] = per["family"].map(sizes)
    per = per.sort_values(
        ["family_n", "family", "margin"], ascending=[False, True, False], ignore_index=True
    )
    fams = list(dict.fromkeys(per["family"]))
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(max(8.0, 0.075 * len(per) + 3), 4.2))
    x = np.arange(len(per))
    colors = [cmap(fams.index(f) % 20) for f in per["family"]]
    ax.bar(x, per["margin"], color=colors, width=0.85)
    if per["ci_low"].notna().any():
        ax.errorbar(
            x,
            per["margin"],
            yerr=[per["margin"] - per["ci_low"], per["ci_high"] - per["margin"]],
            fmt="none",
            ecolor="black",
            elinewidth=0.4,
            capsize=0,
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, per["lang"], rotation=90, fontsize=4 if len(per) > 60 else 7)
    for i, fam in enumerate(fams):
        ax.bar([], [], color=cmap(i % 20), label=f"{fam} ({sizes[fam]})")
    ax.legend(fontsize=6, ncol=2, loc="upper right", title="family")
    ax.set_ylabel("margin")
    ax.set_title(
        f"{arm} - {reference}{' on ' + task if task else ''}: {len(per)} languages by family"
    )
    return save(fig, out_dir, stem or f"families_{arm}_vs_{reference}".replace("/", "-"))


def all_plots(result, out_dir: str | Path, max_family_plots: int = 4) -> list[Path]:
    """Every plot for a :class:`~mmxfer.compare.gaps.GapResult`."""
    paths = forest_plot(result.categories, result.suite, out_dir)
    paths += resource_plot(result.languages, out_dir)
    paths += heatmap(result.tasks, out_dir)
    langs = result.languages
    flores_like = langs["lang"].str.contains("_", regex=False)
    # one plot per FLORES-200 track (task and metric): margins of different metrics never mix
    if flores_like.any():
        fl = langs[flores_like]
        tracks = fl[["task", "metric"]].drop_duplicates()
        several = len(tracks) > 1
        for track in tracks.itertuples():
            one = fl[(fl["task"] == track.task) & (fl["metric"] == track.metric)]
            pairs = one[one["kind"] != "text-vs-baseline"][["arm", "reference"]].drop_duplicates()
            for row in pairs.head(max_family_plots).itertuples():
                stem = f"families_{row.arm}_vs_{row.reference}" + (
                    f"_{track.task}_{track.metric}" if several else ""
                )
                paths += family_plot(
                    one,
                    out_dir,
                    row.arm,
                    row.reference,
                    task=track.task if several else None,
                    stem=stem.replace("/", "-"),
                )
    return paths
