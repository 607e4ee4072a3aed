#!/usr/bin/env python3
"""The before/after table of issue 14 from a finished `sweeps/faithfulness.yaml`.

Each variant (the defaults, each old behaviour alone, all of them together) is
analysed on its own: its AR and DLM jobs are linked into results/faithfulness-<variant>/
and `harness analyze` runs there, so every comparison pairs exactly one AR with one
DLM per budget. Prints a markdown table of the crossovers in epochs (early-stopped and
raw) on validation loss and cloze accuracy, with the best values behind them.

    scripts/faithfulness-table.py [results/faithfulness] [--harness target/debug/harness]
"""
import csv
import os
import subprocess
import sys

# variant -> the DLM's (windows, order, truncate_prob, dlm_pad, val_windows); AR jobs
# match on (windows, order, val_windows), the only fields that reach AR.
VARIANTS = [
    ("defaults (after)", ("reshuffle", "shuffled", "0.01", "none", "spread")),
    ("windows: fixed", ("fixed", "shuffled", "0.01", "none", "spread")),
    ("order: corpus", ("reshuffle", "corpus", "0.01", "none", "spread")),
    ("truncate_prob: 0", ("reshuffle", "shuffled", "0", "none", "spread")),
    ("dlm_pad: mask", ("reshuffle", "shuffled", "0.01", "mask", "spread")),
    ("all old (before)", ("fixed", "corpus", "0", "none", "first")),
]


def unquote(value):
    return value.strip('"')


def main():
    args = sys.argv[1:]
    harness = "target/debug/harness"
    if "--harness" in args:
        index = args.index("--harness")
        harness = args[index + 1]
        del args[index : index + 2]
    results = args[0] if args else "results/faithfulness"
    with open(os.path.join(results, "plan.csv"), newline="") as handle:
        plan = [{key: unquote(value) for key, value in row.items()} for row in csv.DictReader(handle)]
    print("| variant | budget | task | early-stopped crossover (epochs) | raw crossover (epochs) | best AR | best DLM |")
    print("|---|---|---|---|---|---|---|")
    for name, (windows, order, truncate, pad, val_windows) in VARIANTS:
        def wanted(row):
            if (row["data.windows"], row["data.order"], row["eval.val_windows"]) != (windows, order, val_windows):
                return False
            if row["objective"] == "dlm":
                return (row["dlm.truncate_prob"], row["eval.dlm_pad"]) == (truncate, pad)
            return row["objective"] == "ar"

        jobs = [row["id"] for row in plan if wanted(row)]
        if len(jobs) != 4:
            sys.exit(f"{name}: expected 4 jobs (AR and DLM at two budgets), found {jobs}")
        slug = "".join(c if c.isalnum() else "-" for c in name.split(" (")[0]).strip("-")
        folder = f"{results}-{slug}"
        os.makedirs(os.path.join(folder, "jobs"), exist_ok=True)
        for job in jobs:
            link = os.path.join(folder, "jobs", job)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(results, "jobs", job)), link)
        # plan.csv marks the folder as a results folder for `harness analyze`.
        with open(os.path.join(folder, "plan.csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(plan[0].keys()))
            writer.writeheader()
            for row in plan:
                if row["id"] in jobs:
                    writer.writerow(row)
        subprocess.run([harness, "analyze", folder, "--no-figures"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(folder, "analysis", "crossover.csv"), newline="") as handle:
            rows = list(csv.DictReader(handle))
        for budget in ("25000", "100000"):
            for task, metric in (("val_loss", "loss"), ("cloze", "acc_norm")):
                cells = {}
                best = ("", "")
                for row in rows:
                    if (row["unique_tokens"], row["task"], row["metric"], row["axis"]) != (budget, task, metric, "epochs"):
                        continue
                    cells[row["kind"]] = describe(row)
                    best = (number(row["baseline_best"], row["baseline_best_at"]), number(row["dlm_best"], row["dlm_best_at"]))
                label = f"{int(budget) // 1000}k"
                print(f"| {name} | {label} | {task} ({metric}) | {cells.get('early_stopped', '-')} | {cells.get('raw', '-')} | {best[0]} | {best[1]} |")


def number(value, at):
    try:
        return f"{float(value):.3f} (ep {float(at):.3g})"
    except ValueError:
        return value or "-"


def describe(row):
    verdict = row["verdict"].replace("_", " ")
    if row["verdict"] != "crossed":
        return verdict
    estimate = float(row["crossing"]) if row["crossing"] else float("nan")
    interval = ""
    if row["low_5"] and row["high_95"]:
        interval = f" [{float(row['low_5']):.3g}, {float(row['high_95']):.3g}]"
    return f"{estimate:.3g}{interval}"


if __name__ == "__main__":
    main()
