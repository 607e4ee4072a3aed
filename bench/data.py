#!/usr/bin/env python3
"""Data at scale (issue 26): prepare throughput, a job's start-up and memory, 8 ranks,
and the per-step batch cost, against corpus size. `just bench-data` runs it.

Synthetic English-like jsonl corpora (Zipf-distributed words, documents of 50-2,000
words) are generated on the fly at each size, so no download is needed. For each size:

- `trainer prepare` (GPT-2 tokenizer, every core): wall time, MB of text per second,
  against the tokenizer's own MB/s on the same text (`trainer bench-data --tokenize`);
- a job's start-up: `trainer run --max-steps 1` of a nano model on the prepared store
  (wall time to the end of its first step, and its peak RSS);
- the data path alone (`trainer bench-data --job`): opening the store and split,
  locating the budget, and reading one step's batch;
- 8 CPU ranks of one job (`train.devices: 8`): peak RSS of each rank, summed.

Then the measured slopes are extrapolated to 100B tokens. Standard library only.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

WORDS = (
    "the of and to a in is was that for it with as his on be at by i this had not are "
    "but from or have an they which one you were her all she there would their we him "
    "been has when who will more no if out so said what up its about into than them can "
    "only other new some could time these two may then do first any my now such like our "
    "over man me even most made after also did many before must through back years where "
    "much your way well down should because each just those people how too little state "
    "good very make world still own see men work long get here between both life being "
    "under never day same another know while last might us great old year off come since "
    "against go came right used take three whale ship captain congress nation harbour "
    "storm voyage island morning history government union sea law president people"
).split()


def generate(folder: Path, megabytes: float, seed: int) -> int:
    """Jsonl files of about 64 MB each holding `megabytes` of text; returns text bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(WORDS))]
    target = int(megabytes * 1e6)
    written = 0
    part = 0
    while written < target:
        with open(folder / f"part-{part:05d}.jsonl", "w") as out:
            in_file = 0
            while in_file < 64_000_000 and written < target:
                words = rng.choices(WORDS, weights, k=rng.randint(50, 2000))
                text = " ".join(words) + "."
                out.write(json.dumps({"text": text}) + "\n")
                in_file += len(text)
                written += len(text)
        part += 1
    return written


def write_job(folder: Path, corpus: Path, unique_tokens: str, devices: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train = "{ epochs: 1, batch_size: 8, lr: 1e-3, checkpoint_minutes: 0"
    train += f", devices: {devices} }}" if devices > 1 else " }"
    (folder / "job.yaml").write_text(
        "objective: ar\nseed: 0\nmodel: { preset: nano }\n"
        f"data: {{ corpus: {corpus}, tokenizer: gpt2, seq_len: 256, "
        f"unique_tokens: {unique_tokens}, val_tokens: 1M }}\n"
        f"train: {train}\n"
        "eval: { at: log2, tasks: [val_loss], val_loss_tokens: 4k }\n"
    )
    return folder


def run(command, env, timeout=3600):
    """Run a command; returns (wall seconds, peak RSS in MB of the process itself)."""
    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=timeout)
    wall = time.monotonic() - start
    # ru_maxrss of the children reaped so far is a running maximum; read this child's
    # own peak from its status lines instead (printed by bench-data) where it matters.
    if process.returncode not in (0, 3):
        sys.stderr.write(err.decode(errors="replace"))
        raise SystemExit(f"{' '.join(map(str, command))} failed ({process.returncode})")
    return wall, out.decode(), err.decode()


def run_peak(command, env):
    """Run a command; returns (wall seconds, its peak RSS in MB from wait4's rusage)."""
    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        sys.stderr.write(process.stderr.read().decode(errors="replace"))
        raise SystemExit(f"{' '.join(map(str, command))} failed ({code})")
    process.returncode = code
    return wall, usage.ru_maxrss / 1024


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def descendants(pid: int):
    children = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children.extend(int(child) for child in text)
    except OSError:
        return []
    found = list(children)
    for child in children:
        found.extend(descendants(child))
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_sampled(command, env):
    """Run a command, sampling the RSS of it and its descendants every 50 ms: returns
    (wall seconds, peak of the summed RSS, peak RSS of any one process, processes)."""
    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {}
    stderr = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()))
    reader.start()
    summed = 0.0
    while process.poll() is None:
        pids = [process.pid] + descendants(process.pid)
        sizes = {pid: rss_mb(pid) for pid in pids}
        for pid, size in sizes.items():
            peaks[pid] = max(peaks.get(pid, 0.0), size)
        summed = max(summed, sum(sizes.values()))
        time.sleep(0.05)
    reader.join()
    wall = time.monotonic() - start
    if process.returncode not in (0, 3):
        sys.stderr.write(b"".join(stderr).decode(errors="replace"))
        raise SystemExit(f"{' '.join(map(str, command))} failed ({process.returncode})")
    return wall, summed, max(peaks.values(), default=0.0), len(peaks)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gb", default="0.3,1,3", help="corpus text sizes in GB")
    parser.add_argument("--trainer", default="target/debug/trainer")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp folder, removed)")
    parser.add_argument("--ranks", type=int, default=8, help="CPU ranks of the multi-rank row (0: skip)")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--repeat", type=int, default=3, help="job start-up runs per size (median)")
    args = parser.parse_args()
    trainer = str(Path(args.trainer).resolve())
    work = Path(args.work) if args.work else Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-data-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CROSSOVER_CACHE=str(work / "cache"))
    rows = []
    try:
        for size in [float(text) for text in args.sizes_gb.split(",")]:
            corpus = work / f"corpus-{size}gb"
            clock = time.monotonic()
            text_bytes = generate(corpus, size * 1000, seed=int(size * 1000))
            generated = time.monotonic() - clock
            job = write_job(work / f"job-{size}gb", corpus, "2M")
            _, out, _ = run([trainer, "bench-data", "--tokenize", str(corpus / "part-00000.jsonl"), "--megabytes", "32"], env)
            limit = json.loads(out.strip().splitlines()[-1])["tokenizer_mb_s"]
            prepare_s, _, err = run([trainer, "prepare", "--quiet", str(job)], env, timeout=6 * 3600)
            # Start-up to the end of step 1, from scratch each time (a resumed run would
            # load a checkpoint instead): the median of --repeat runs.
            starts = []
            for repeat in range(args.repeat):
                fresh = write_job(work / f"job-{size}gb-run{repeat}", corpus, "2M")
                starts.append(run_peak([trainer, "run", "--quiet", "--threads", "2", "--max-steps", "1", str(fresh)], env))
            start_s = median([wall for wall, _ in starts])
            start_rss = median([rss for _, rss in starts])
            _, out, _ = run([trainer, "bench-data", "--job", str(job), "--steps", "200"], env)
            cost = json.loads(out.strip().splitlines()[-1])
            tokens = cost["store_tokens"]
            row = {
                "text_gb": text_bytes / 1e9,
                "tokens": tokens,
                "generate_s": generated,
                "prepare_s": prepare_s,
                "prepare_mb_s": text_bytes / 1e6 / prepare_s,
                "tokenizer_mb_s": limit,
                "start_s": start_s,
                "start_rss_mb": start_rss,
                **cost,
            }
            if args.ranks > 1:
                ranks_job = write_job(work / f"ranks-{size}gb", corpus, "2M", devices=args.ranks)
                wall, summed, single, processes = run_sampled(
                    [trainer, "run", "--quiet", "--threads", "1", "--max-steps", "1", str(ranks_job)], env
                )
                row.update(ranks=args.ranks, ranks_start_s=wall, ranks_rss_sum_mb=summed, ranks_rss_max_mb=single, processes=processes)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        # A resumed job's start-up (issue 27: every resubmission after a time limit
        # pays it): the `small` preset on the smallest corpus, from process start to
        # the first training step, as the trainer's start line reports it.
        corpus = work / f"corpus-{[float(t) for t in args.sizes_gb.split(',')][0]}gb"
        job = write_job(work / "resume", corpus, "2M")
        text = (job / "job.yaml").read_text().replace("preset: nano", "preset: small")
        (job / "job.yaml").write_text(text)
        ready = []
        for steps in range(1, 2 + args.repeat):
            _, _, err = run([trainer, "run", "--threads", "2", "--max-steps", str(steps), str(job)], env)
            line = next(line for line in err.splitlines() if "ready " in line)
            ready.append(float(line.split("ready ")[1].split(" s")[0]))
        checkpoint = max((job / "checkpoints").iterdir())
        resume = {
            "fresh_s": ready[0],
            "resumed_s": median(ready[1:]),
            "checkpoint_mb": sum(f.stat().st_size for f in checkpoint.iterdir()) / 1e6,
        }
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    cores = os.cpu_count() or 1
    print(f"\n## Data at scale ({cores} cores; synthetic jsonl, GPT-2 tokenizer, nano model)\n")
    print("| text | tokens | prepare | MB/s | MB/s per core | tokenizer limit MB/s | limit / prepare | job start (1 step, median) | job peak RSS | store open | budget | batch (8x257) | peak RSS (bench-data) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['text_gb']:.2f} GB | {row['tokens'] / 1e6:.0f}M | {row['prepare_s']:.0f} s | {row['prepare_mb_s']:.1f} | "
            f"{row['prepare_mb_s'] / cores:.1f} | {row['tokenizer_mb_s']:.1f} | {row['tokenizer_mb_s'] / row['prepare_mb_s']:.2f}x | "
            f"{row['start_s']:.2f} s | {row['start_rss_mb']:.0f} MB | {row['open_s'] * 1e3:.0f} ms | {row['budget_s'] * 1e3:.1f} ms | "
            f"{row['batch_ms']:.3f} ms | {row['peak_rss_mb']:.0f} MB |"
        )
    if any("ranks" in row for row in rows):
        print(f"\n| text | ranks | start (1 step) | RSS summed over ranks | RSS of the largest rank |")
        print("|---|---|---|---|---|")
        for row in rows:
            if "ranks" in row:
                print(f"| {row['text_gb']:.2f} GB | {row['ranks']} | {row['ranks_start_s']:.1f} s | {row['ranks_rss_sum_mb']:.0f} MB | {row['ranks_rss_max_mb']:.0f} MB |")
    print(
        f"\nResumed job start-up (`small` preset, {resume['checkpoint_mb']:.0f} MB checkpoint): "
        f"{resume['resumed_s']:.2f} s from process start to the first step (median of {args.repeat}), "
        f"against {resume['fresh_s']:.2f} s for a fresh start"
    )
    if len(rows) >= 2:
        xs = [row["tokens"] for row in rows]

        def fit(key):
            """Least-squares slope (per token) and the value it gives at 100B tokens."""
            ys = [row[key] for row in rows]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            return slope, my + slope * (100e9 - mx), min(ys), max(ys)

        last = rows[-1]
        hours = last["prepare_s"] / last["tokens"] * 100e9 / 3600
        print(f"\nExtrapolated to 100B tokens (least-squares line through the {len(rows)} sizes):")
        print(f"- prepare: {hours:.1f} h on {cores} cores at the largest size's rate; "
              f"{hours * cores / 64:.1f} h on 64 cores if it scales with cores as tokenization does")
        for key, name, unit, scale in [
            ("start_s", "job start-up to the end of step 1", "s", 1.0),
            ("start_rss_mb", "job peak RSS (model included)", "MB", 1.0),
            ("peak_rss_mb", "data path peak RSS (bench-data, no model)", "MB", 1.0),
            ("open_s", "store and split open", "ms", 1e3),
            ("batch_ms", "one step's batch", "ms", 1.0),
        ]:
            slope, at, low, high = fit(key)
            print(f"- {name}: measured {low * scale:.3g}-{high * scale:.3g} {unit}; slope "
                  f"{slope * 1e9 * scale:+.3g} {unit} per 1B tokens; line at 100B: {at * scale:.3g} {unit}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
