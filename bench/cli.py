"""``python -m bench [--quick]``: measure Lookbook and write bench/report/BENCHMARKS.md plus its figures.

Order: models and quality (TensorFlow in this process), training time per epoch, then the
scratch catalog (own embedded PostgreSQL + Redis under var/bench) for throughput, uploads, pages
and the selectors at scale. Each part that fails is reported as failed and the run goes on; the
exit status is 1 when any part failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small subsets, 10k vectors, short load (< 10 min)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the code paths, numbers mean nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "report", help="report folder")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="scratch folder (default: <LOOKBOOK_VAR_DIR or var>/bench); removed afterwards",
    )
    parser.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("LOOKBOOK_DATASETS", ROOT.parent / "shared" / "datasets")),
        help="the shared datasets (ccp/, clothing-dataset/)",
    )
    parser.add_argument("--backbone", default=os.environ.get("ML_BACKBONE", "efficientnet_lite2"))
    parser.add_argument(
        "--trained-dir",
        type=Path,
        default=None,
        help="where trained artifacts are looked up as arcface-<lite2>/ and triplet-<lite2>/ "
        "(default: <var>/ml/artifacts, where `python -m ml train` examples write them)",
    )
    parser.add_argument("--arcface", type=Path, help="the trained ArcFace artifact (overrides --trained-dir)")
    parser.add_argument("--triplet", type=Path, help="the trained triplet artifact (overrides --trained-dir)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["quality", "training", "serving", "scale"],
        help="run only these parts (the report then says what was skipped)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch environment for inspection")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    from bench import env
    from bench.context import Context
    from bench.plan import FULL, QUICK, SMOKE
    from bench.report import Report, clear_generated, write

    user_var = Path(os.environ.get("LOOKBOOK_VAR_DIR", ROOT / "var")).resolve()  # before env.configure changes it
    weights_cache = Path(os.environ.get("ML_CACHE_DIR", user_var / "ml-cache")).resolve()
    for name in ("ccp", "clothing-dataset"):
        if not (args.datasets / name).is_dir():
            print(f"error: the shared datasets are missing: {args.datasets / name} (use --datasets)", file=sys.stderr)
            return 2
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    ctx = Context(
        root=ROOT,
        plan=plan,
        out_dir=args.out.resolve(),
        work_dir=(args.work_dir or user_var / "bench").resolve(),
        ccp=(args.datasets / "ccp").resolve(),
        clothing=(args.datasets / "clothing-dataset").resolve(),
        trained_dir=(args.trained_dir or user_var / "ml" / "artifacts").resolve(),
        weights_cache=weights_cache,
        backbone=args.backbone,
        report=Report(title="Lookbook benchmarks"),
    )
    parts = set(args.only or ["quality", "training", "serving", "scale"])
    started_at = datetime.now(UTC)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    clear_generated(ctx.out_dir)
    env.configure(ctx)
    env.reset(ctx)
    from bench import machine

    before = machine.describe(ROOT)
    ctx.report.results["machine"] = before
    ctx.log(f"{plan.name} run: {before['cores']} cores, {before['cpu_model']}; report -> {ctx.out_dir}")
    try:
        _run_parts(ctx, parts, arcface=args.arcface, triplet=args.triplet)
    finally:
        env.teardown(ctx, keep=args.keep)
    after = machine.load_average()
    seconds = time.monotonic() - ctx.started
    _header(ctx, args, before, after, started_at, seconds, parts)
    from bench import summary

    summary.write(ctx)
    ctx.report.sections.sort(key=lambda s: s.title)
    path = write(ctx.report, ctx.out_dir)
    figures = sorted(p.name for p in ctx.out_dir.glob("*.png"))
    ctx.log(f"wrote {path} and {len(figures)} figures in {seconds / 60:.1f} min")
    if ctx.report.errors:
        ctx.log("failed parts: " + ", ".join(name for name, _ in ctx.report.errors))
        return 1
    return 0


def _run_parts(ctx, parts: set[str], *, arcface, triplet) -> None:
    from bench import env

    if parts & {"quality", "serving"}:
        from bench import quality

        ctx.guard("models", lambda: quality.prepare_models(ctx, arcface=arcface, triplet=triplet))
    if "quality" in parts and ctx.models:
        ctx.guard("1. Quality / 1b. Breakdown / 3. Pictures", lambda: quality.run(ctx))
    if "training" in parts:
        from bench import training

        ctx.guard("2e. Training time per epoch", lambda: training.run(ctx))
    if parts & {"serving", "scale"}:
        if not ctx.guard("scratch services", lambda: env.setup_django(ctx)):
            return
        if "serving" in parts and ctx.models:
            from bench import serve

            ctx.guard("2a/2c/2d. Serving", lambda: serve.run(ctx))
        if "scale" in parts:
            from bench import scale

            ctx.guard("2b. Selectors at scale", lambda: scale.run(ctx))
    for part in sorted({"quality", "training", "serving", "scale"} - parts):
        ctx.report.not_produced(f"part '{part}'", "skipped by --only")


def _header(ctx, args, before: dict, after, started_at: datetime, seconds: float, parts: set[str]) -> None:
    from bench.report import fmt

    load_before = ", ".join(f"{x:.2f}" for x in before["load_average"] or [])
    load_after = ", ".join(f"{x:.2f}" for x in after or [])
    flag = {"quick": " --quick", "smoke": " --smoke"}.get(ctx.plan.name, "")
    command = {"quick": "make bench-quick", "full": "make bench"}.get(ctx.plan.name, f"python -m bench{flag}")
    v = before["versions"]
    full = f"python -m bench{flag}" + (" --only " + " ".join(sorted(parts)) if args.only else "")
    invocation = f" (`{full}`)" if full != command else ""
    ctx.report.header += [
        f"Generated by `{command}`{invocation} on {started_at:%Y-%m-%d %H:%M} UTC "
        f"in {seconds / 60:.1f} min; source {before['revision']}. Every figure and number below was produced by "
        f"that run; re-run the command to refresh them. Raw numbers: [results.json](results.json).",
        f"**Machine**: {before['cores']} cores usable ({before['cpu_count']} online), {before['cpu_model']}, "
        f"{fmt(before['memory_gib'])} GiB RAM, {before['platform']}; load average (1/5/15 min) {load_before} at the "
        f"start and {load_after} at the end. Speeds depend on the machine and on what else runs on it, so each "
        f"speed is given beside a baseline measured in the same run, as a ratio.",
        f"**Software**: Python {v.get('python')}, Django {v.get('django')}, Celery {v.get('celery')}, "
        f"TensorFlow {v.get('tensorflow')}, Keras {v.get('keras')}, NumPy {v.get('numpy')}, "
        f"gunicorn {v.get('gunicorn')}. Mode: **{ctx.plan.name}**"
        + (" (small subsets: compare quick runs only with quick runs)." if ctx.plan.name == "quick" else "."),
    ]
