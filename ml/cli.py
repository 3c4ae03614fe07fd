"""``python -m ml {pretrained,shipped,ship,train,finetune,parse-train,attach-parser,evaluate,speed}``: the
command line (paths in, tables out)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_CACHE = "var/ml/cache"


class _Progress:
    """Prints 'fraction message' lines to stderr, at most every ``every`` seconds."""

    def __init__(self, every: float = 5.0):
        self.every, self.last = every, 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.time()
        if now - self.last >= self.every or fraction >= 1.0:
            self.last = now
            print(f"[{time.strftime('%H:%M:%S')}] {100 * fraction:5.1f}% {message}", file=sys.stderr, flush=True)


def _shipped_default() -> Path:
    from ml.shipped import DEFAULT

    return DEFAULT


def ccp_records(ccp_root: str, split: str, crops_dir: str, *, limit: int | None = None):
    """Training records (path, post_id, kind, garment group id or None) for a CCP split; item crops written once."""
    from ml.datasets import ccp
    from ml.garments import CCP_LABEL_GROUPS, GROUPS

    out_dir = Path(crops_dir) / split
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for post in ccp.load_posts(ccp_root, split, limit=limit):
        records.append((str(post.snapshot_path), post.post_id, "snapshot"))
        paths = [out_dir / f"{post.post_id:04d}_{item.label_id:02d}.png" for item in post.items]
        if not all(p.exists() for p in paths):
            for path, img in zip(paths, ccp.item_images(post), strict=True):
                img.save(path)
        groups = [GROUPS.index(CCP_LABEL_GROUPS.get(item.label, GROUPS[0])) for item in post.items]
        records += [(str(p), post.post_id, "item", g if g else None) for p, g in zip(paths, groups, strict=True)]
    return records


def cmd_pretrained(args) -> int:
    from ml import artifact

    path = artifact.create_pretrained(args.out, backbone=args.backbone, cache_dir=args.cache_dir)
    print(f"wrote {path} (checksum {artifact.checksum(path)})")
    return 0


def cmd_shipped(args) -> int:
    from ml import artifact, shipped

    path = shipped.unpack(args.out, source=args.source, cache_dir=args.cache_dir)
    print(f"wrote {path} from the shipped model {args.source} (checksum {artifact.checksum(path)})")
    return 0


def cmd_ship(args) -> int:
    from ml import shipped

    recipe = json.loads(Path(args.recipe).read_text()) if args.recipe else {}
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    manifest = shipped.pack(
        args.artifact,
        args.out,
        name=args.name,
        cache_dir=args.cache_dir,
        half=args.half,
        recipe=recipe,
        metrics=metrics,
    )
    line = f"wrote {args.out}: {manifest['size_bytes'] / 2**20:.1f} MiB ({manifest['dtype']}), "
    line += f"{len(manifest['arrays']['backbone'])} changed backbone variables"
    if args.half:
        line += f", probe cosine vs float32 {manifest['half_cosine_min']:.6f}"
    print(line)
    return 0


def cmd_train(args) -> int:
    from ml.config import ModelConfig
    from ml.training import train

    config = ModelConfig(
        backbone=args.backbone,
        weights=args.weights,
        loss=args.loss,
        dim=args.dim,
        arcface_scale=args.arcface_scale,
        arcface_margin=args.arcface_margin,
        aux_weight=args.aux_weight,
        category_weight=args.category_weight,
        regions=args.regions,
    )
    if args.item_size:
        config.item_size = args.item_size
    if args.snapshot_size:
        config.snapshot_size = tuple(args.snapshot_size)
    options = _options(args, args.stage2_epochs, args.stage2_lr, epochs=args.epochs, learning_rate=args.lr)
    records, val = _records(args)
    metrics = train(
        records,
        config,
        args.out,
        val_records=val,
        progress=_Progress(),
        seed=args.seed,
        options=options,
        cache_dir=args.cache_dir,
        backbone_cache_dir=args.cache_dir,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _options(args, stage2_epochs: int, stage2_lr: float, **stage1):
    """``TrainOptions`` from the flags both training commands share, plus stage 1's for ``train``."""
    from ml.training import TrainOptions

    return TrainOptions(
        item_views=args.item_views,
        snapshot_views=args.snapshot_views,
        stage2_epochs=stage2_epochs,
        finetune_stages=args.finetune_stages,
        backbone_learning_rate=args.backbone_lr,
        stage2_learning_rate=stage2_lr,
        mixed_precision=args.mixed_precision,
        **stage1,
    )


def _records(args):
    """The CCP train records (``--limit``) and the ``--val-split`` records (None without one)."""
    records = ccp_records(args.ccp, "train", args.crops_dir, limit=args.limit)
    val = ccp_records(args.ccp, args.val_split, args.crops_dir) if args.val_split else None
    return records, val


def cmd_finetune(args) -> int:
    from ml.training import finetune

    options = _options(args, args.epochs, args.lr)
    records, val = _records(args)
    metrics = finetune(
        records,
        args.source,
        args.out,
        val_records=val,
        progress=_Progress(),
        seed=args.seed,
        options=options,
        cache_dir=args.cache_dir,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _print_table(rows: list[tuple[str, dict]]) -> None:
    keys = ["s2i_map21_seed", "s2i_ap21", "s2i_r6", "i2s_r1", "i2s_r6", "i2s_mrr", "cat_p6", "cat_p6_random"]
    keys = [k for k in keys if any(k in r for _, r in rows)]
    print("| variant | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" if k in row else "-" for k in keys) + " |")


def cmd_evaluate(args) -> int:
    import dataclasses

    import numpy as np

    from ml import artifact
    from ml.config import GARMENTS
    from ml.datasets import ccp, clothing
    from ml.evaluation import (
        embed_posts,
        evaluate_parser,
        garment_rows_of_kind,
        garment_rows_only,
        score_embeddings,
    )
    from ml.regions import subset_rows

    started = time.time()
    embedder = artifact.load(args.artifact)
    if args.garment_descriptor:
        embedder.config = dataclasses.replace(embedder.config, garment_descriptor=args.garment_descriptor)
    posts = ccp.load_posts(args.ccp, args.split, limit=args.limit)
    distractors = [t.path for t in ccp.tagged_photos(args.ccp)][: args.distractors] if args.distractors else []
    gallery = clothing.load_gallery(args.gallery) if args.gallery else None
    schemes = args.schemes or [embedder.config.regions]
    if GARMENTS in schemes and not embedder.has_parser:
        raise SystemExit("--schemes garments: this artifact has no garment parser")
    emb = embed_posts(embedder, posts, [], gallery, progress=_Progress(), snapshots=False)  # per scheme below
    seconds = time.time() - started
    snapshots = [p.snapshot_path for p in posts] + list(distractors)
    variants, timing = [], {}
    for scheme in schemes:
        t0 = time.time()
        looks = embedder.embed_looks(snapshots, progress=_Progress(), scheme=scheme)
        ms = 1000 * (time.time() - t0) / len(snapshots)
        vectors_per = float(np.mean(looks.counts))
        timing[scheme] = {"ms_per_snapshot": round(ms, 1), "vectors_per_snapshot": round(vectors_per, 2)}
        n = len(posts)

        def split(vectors, n=n):
            rest = vectors[n:] if len(vectors) > n else None
            return dataclasses.replace(emb, snapshots=vectors[:n], distractors=rest)

        label = f"{scheme} ({vectors_per:.1f} vectors/snapshot, {ms:.0f} ms/snapshot)"
        variants.append((label, split(looks.vectors), {}))
        if scheme == GARMENTS:
            variants.append((f"{scheme} without the whole photo", split(garment_rows_only(looks)), {}))
            if embedder.config.garment_descriptor == "both":  # each kind of garment row alone, same pass
                for kind in ("crop", "pooled"):
                    variants.append((f"{scheme}, {kind} rows only", split(garment_rows_of_kind(looks, kind)), {}))
        else:
            for smaller in args.region_schemes or []:
                try:
                    rows = subset_rows(smaller, scheme)
                except ValueError as exc:
                    raise SystemExit(f"--region-schemes: {exc}") from None
                variants.append((f"{smaller} ({len(rows)} rows)", split(looks.vectors), {"regions": rows}))
        if args.sweep:
            e = split(looks.vectors)
            variants += [
                (f"{scheme}: global only", e, {"regions": 1}),
                (f"{scheme} + AQE k=2", e, {"aqe": 2}),
                (f"{scheme} + DBA k=2", e, {"dba": 2}),
                (f"{scheme} + AQE + DBA", e, {"aqe": 2, "dba": 2}),
            ]
    if args.save_embeddings:
        first = variants[0][1]
        np.savez(
            args.save_embeddings,
            snapshots=first.snapshots,
            items=first.items,
            item_post=first.item_post,
            distractors=first.distractors if first.distractors is not None else np.zeros(0),
        )
    rows = [(name, score_embeddings(e, **kw)) for name, e, kw in variants]
    print(
        f"artifact {args.artifact} ({artifact.checksum(args.artifact)[:12]}), split {args.split}: "
        f"{len(posts)} posts, {len(emb.items)} items, {len(distractors)} distractors, "
        f"{0 if gallery is None else len(gallery)} gallery; dim {embedder.dim}; items and gallery took {seconds:.0f}s"
    )
    _print_table(rows)
    report = {"retrieval": dict(rows), "snapshots": timing}
    if args.parser:
        if not embedder.has_parser:
            raise SystemExit("--parser: this artifact has no garment parser")
        parsed = evaluate_parser(embedder, posts, progress=_Progress())
        report["parser"] = parsed
        print(
            f"parser on {args.split}: pixel accuracy {parsed['pixel_accuracy']:.1f}, mIoU {parsed['miou']:.1f}; "
            f"garment recall @IoU0.5 {parsed['garment_recall']:.1f} "
            f"(any group {parsed['garment_recall_any_group']:.1f}), "
            f"precision {parsed['garment_precision']:.1f}; {parsed['garments_per_photo']:.2f} garments per photo "
            f"for {parsed['items_per_photo']:.2f} items"
        )
        print("per-group IoU: " + ", ".join(f"{g} {v}" for g, v in parsed["iou"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def cmd_attach_parser(args) -> int:
    from ml import artifact
    from ml.parser import taps_digest

    donor, target = artifact.load(args.parser_from), artifact.load(args.artifact)
    if not donor.has_parser:
        raise SystemExit(f"--parser-from: {args.parser_from} has no garment parser")
    if donor.config.backbone != target.config.backbone or donor.config.snapshot_size != target.config.snapshot_size:
        raise SystemExit("--parser-from: the two artifacts differ in backbone or snapshot size")
    name = target.config.backbone
    final_map = donor.parser_config.final_map
    donor_digest = taps_digest(donor.backbone, name, final_map=final_map)
    if donor_digest != taps_digest(target.backbone, name, final_map=final_map):
        raise SystemExit("--parser-from: the backbones differ up to the parser's taps; train a parser for this one")
    info = {"parser_training": artifact.metadata(args.parser_from).get("info", {}).get("parser_training")}
    metrics = {"parser": artifact.metadata(args.parser_from).get("metrics", {}).get("parser")}
    path = artifact.with_parser(
        args.artifact, donor.parser, donor.parser_config, args.out, regions=args.regions, metrics=metrics, info=info
    )
    print(f"wrote {path} (checksum {artifact.checksum(path)})")
    return 0


def cmd_parse_train(args) -> int:
    from ml import artifact
    from ml.parser import ParserConfig
    from ml.training.parser import ParserOptions, ccp_parse_records, train_parser

    embedder = artifact.load(args.artifact)
    config = ParserConfig(width=args.width, final_map=args.final_map)
    options = ParserOptions(
        views=args.views,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        mixed_precision=args.mixed_precision,
    )
    records = ccp_parse_records(args.ccp, "train", limit=args.limit)
    val = ccp_parse_records(args.ccp, args.val_split) if args.val_split else None
    head, metrics = train_parser(
        embedder,
        records,
        config=config,
        options=options,
        val_records=val,
        seed=args.seed,
        cache_dir=args.cache_dir,
        progress=_Progress(),
    )
    info = {
        "parser_training": {
            "split": "train",
            "posts": len(records),
            "seed": args.seed,
            "options": {k: getattr(options, k) for k in ("views", "epochs", "batch_size", "learning_rate")},
        }
    }
    path = artifact.with_parser(
        args.artifact,
        head,
        config,
        args.out,
        regions=args.regions,
        metrics={"parser": {k: v for k, v in metrics.items() if k != "loss"}},
        info=info,
    )
    print(json.dumps({k: v for k, v in metrics.items() if k != "loss"}, indent=2))
    print(f"wrote {path} (checksum {artifact.checksum(path)})")
    return 0


def cmd_speed(args) -> int:
    import dataclasses
    import tempfile

    import numpy as np
    from PIL import Image

    from ml import artifact

    runtimes = args.runtimes or ["keras"]
    embedders = {}
    for runtime in runtimes:
        embedders[runtime] = artifact.load(args.artifact)
        if runtime == "onnx":
            onnx_dir = Path(args.onnx_dir or tempfile.mkdtemp(prefix="ml-onnx-"))
            embedders[runtime].use_onnx(onnx_dir / artifact.checksum(args.artifact)[:16])
    c = embedders[runtimes[0]].config
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (533, 400, 3), dtype=np.uint8)) for _ in range(args.n)]
    for runtime, embedder in embedders.items():
        embedder.embed_items(images[: args.batch_size], batch_size=args.batch_size)  # warm-up (tracing, export)
        started = time.time()
        embedder.embed_items(images, batch_size=args.batch_size)
        items = args.n / (time.time() - started)
        print(f"{c.backbone} ({runtime}): items at {c.item_size}px, batch {args.batch_size}: {items:.1f} images/s")
    if args.snapshots:  # real photos (a parser finds nothing in noise), decoded once, schemes interleaved
        paths = sorted(Path(args.snapshots).glob("*.jpg"))[: args.n_snapshots]
        if not paths:
            raise SystemExit(f"--snapshots: no .jpg in {args.snapshots}")
        photos = [Image.open(p).convert("RGB") for p in paths]
    else:
        photos = images[: max(8, args.n // 4)]
    schemes = []  # (label, runtime, scheme, garment descriptor)
    for scheme in args.schemes or [c.regions]:
        kinds = (args.garment_descriptors or [c.garment_descriptor]) if scheme == "garments" else [None]
        for kind in kinds:
            label = f"{scheme} ({kind})" if kind else scheme
            for runtime in runtimes:
                schemes.append((label if len(runtimes) == 1 else f"{label}, {runtime}", runtime, scheme, kind))

    def run(runtime, scheme, kind, images):
        embedder = embedders[runtime]
        embedder.config = dataclasses.replace(c, garment_descriptor=kind or c.garment_descriptor)
        return embedder.embed_looks(images, batch_size=8, scheme=scheme)

    for _, runtime, scheme, kind in schemes:
        run(runtime, scheme, kind, photos[:8])  # warm-up
    seconds: dict[str, list[float]] = {label: [] for label, *_ in schemes}
    rows: dict[str, float] = {}
    for _ in range(args.rounds):
        for label, runtime, scheme, kind in schemes:
            started = time.time()
            looks = run(runtime, scheme, kind, photos)
            seconds[label].append(time.time() - started)
            rows[label] = float(np.mean(looks.counts))
    labels = [label for label, *_ in schemes]
    base = float(np.median(seconds[labels[0]]))
    for label in labels:
        ms = 1000 * float(np.median(seconds[label])) / len(photos)
        print(
            f"snapshots at {c.snapshot_size[0]}x{c.snapshot_size[1]}px, scheme {label}: {ms:.0f} ms/snapshot "
            f"(median of {args.rounds} rounds over {len(photos)} photos; {rows[label]:.1f} vectors/snapshot; "
            f"{float(np.median(seconds[label])) / base:.2f}x {labels[0]})"
        )
    return 0


def _common_training_args(p) -> None:
    p.add_argument("--finetune-stages", type=int, default=1, help="stage 2: how many last backbone stages train")
    p.add_argument("--backbone-lr", type=float, default=1e-4, help="stage 2: backbone learning rate")
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "on", "off"], help="auto: on with a GPU")
    p.add_argument("--val-split", default=None, help="CCP split for early stopping (default: none)")
    p.add_argument("--limit", type=int, help="use only the first N training posts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="converted weights and feature-map cache")
    p.add_argument("--crops-dir", default="var/ml/ccp-crops", help="where item crops are written once")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrained", help="write the off-the-shelf (ImageNet, SPoC, untrained) artifact")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument(
        "--backbone", default="efficientnet_lite2", choices=["efficientnet_lite0", "efficientnet_lite2", "resnet50"]
    )
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="where converted ImageNet weights are cached")
    p.set_defaults(func=cmd_pretrained)

    p = sub.add_parser("train", help="train the CGD head on CCP-Posts train (frozen backbone, cached maps)")
    p.add_argument("--ccp", required=True, help="CCP dataset root")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument(
        "--backbone", default="efficientnet_lite2", choices=["efficientnet_lite0", "efficientnet_lite2", "resnet50"]
    )
    p.add_argument("--weights", default="imagenet", help="'imagenet' or a local weights file")
    p.add_argument("--loss", default="arcface", choices=["arcface", "triplet"])
    p.add_argument("--dim", type=int, default=512, help="projection size per branch")
    p.add_argument("--arcface-scale", type=float, default=16.0)
    p.add_argument("--arcface-margin", type=float, default=0.2)
    p.add_argument("--aux-weight", type=float, default=0.0, help="weight of the auxiliary classification loss")
    p.add_argument(
        "--category-weight", type=float, default=0.0, help="weight of the items' garment-group classification loss"
    )
    p.add_argument("--regions", default="multiscale32")
    p.add_argument("--item-size", type=int)
    p.add_argument("--snapshot-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--item-views", type=int, default=4)
    p.add_argument("--snapshot-views", type=int, default=3)
    p.add_argument("--stage2-epochs", type=int, default=0, help="then fine-tune the backbone's end (0: stage 1 only)")
    p.add_argument("--stage2-lr", type=float, default=1e-4, help="head learning rate in stage 2")
    _common_training_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "finetune", help="stage 2 from an artifact: fine-tune the last backbone stage(s) with the head (cached inputs)"
    )
    p.add_argument("--from", dest="source", required=True, help="the (stage-1) artifact to start from")
    p.add_argument("--ccp", required=True, help="CCP dataset root")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-4, help="head learning rate")
    p.add_argument("--item-views", type=int, default=4)
    p.add_argument("--snapshot-views", type=int, default=3)
    _common_training_args(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("evaluate", help="CCP-Posts protocol: both directions + gallery categories")
    p.add_argument("--artifact", required=True)
    p.add_argument("--ccp", required=True)
    p.add_argument("--gallery", help="clothing-dataset root (category agreement)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--distractors", type=int, default=600, help="tag-only distractor snapshots (0: none)")
    p.add_argument("--limit", type=int)
    p.add_argument("--sweep", action="store_true", help="also score global-only, AQE and DBA variants")
    p.add_argument("--json", help="write the metrics as JSON here")
    p.add_argument("--save-embeddings", help="write the descriptors (.npz) here")
    p.add_argument(
        "--region-schemes",
        nargs="+",
        metavar="SCHEME",
        help="also score with these smaller window schemes (subsets of each window scheme embedded, e.g. "
        "multiscale16 multiscale10 multiscale6 global), from the same embeddings",
    )
    p.add_argument(
        "--schemes",
        nargs="+",
        metavar="SCHEME",
        help="embed the snapshots under each of these schemes from the one artifact: 'garments' (needs a parser: "
        "whole photo + garments, also scored without the whole photo) and/or window schemes such as multiscale32 "
        "(default: the artifact's own)",
    )
    p.add_argument("--parser", action="store_true", help="also measure the garment parser on the split")
    p.add_argument(
        "--garment-descriptor",
        choices=["crop", "pooled", "both"],
        help="override the artifact's garment descriptor ('both' also scores each kind alone from the same pass)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "parse-train", help="train the garment parser on CCP train's pixel labels; writes the artifact plus the parser"
    )
    p.add_argument("--artifact", required=True, help="the descriptor artifact whose backbone the parser shares")
    p.add_argument("--ccp", required=True, help="CCP dataset root")
    p.add_argument("--out", required=True, help="artifact directory to write (the source's model + the parser)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--views", type=int, default=3, help="cached views per photo (plain, flip + jitter, rescaled)")
    p.add_argument("--width", type=int, default=64, help="decoder channels")
    p.add_argument(
        "--final-map",
        action="store_true",
        help="also feed the backbone's final map (train per artifact: stage 2 changes it)",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--regions", default="garments", help="the scheme the written artifact serves")
    p.add_argument("--val-split", default="val", help="CCP split measured after training (never selected on)")
    p.add_argument("--limit", type=int, help="use only the first N training photos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "on", "off"], help="auto: on with a GPU")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="converted weights and parser feature cache")
    p.set_defaults(func=cmd_parse_train)

    p = sub.add_parser("shipped", help="rebuild the model shipped in the repository as an artifact")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--source", default=str(_shipped_default()), help="a shipped model directory")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="where converted ImageNet weights are cached")
    p.set_defaults(func=cmd_shipped)

    p = sub.add_parser("ship", help="write a trained artifact's trained parts as a shipped model (ml.shipped)")
    p.add_argument("--artifact", required=True, help="the trained artifact (from the ImageNet backbone)")
    p.add_argument("--out", required=True, help="shipped model directory to write")
    p.add_argument("--name", required=True)
    p.add_argument("--half", action="store_true", help="store float16 (reports its agreement with float32)")
    p.add_argument("--recipe", help="a JSON file: the commands, split and seed that made the artifact")
    p.add_argument("--metrics", help="a JSON file of its figures (default: the artifact's own metrics)")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="where converted ImageNet weights are cached")
    p.set_defaults(func=cmd_ship)

    p = sub.add_parser(
        "attach-parser",
        help="copy an artifact, adding the parser of another whose backbone is the same up to the parser's taps "
        "(e.g. after stage-2 fine-tuning, which changes only the last stage)",
    )
    p.add_argument("--parser-from", required=True, help="an artifact with a trained parser")
    p.add_argument("--artifact", required=True, help="the descriptor artifact to add it to")
    p.add_argument("--out", required=True)
    p.add_argument("--regions", default="garments", help="the scheme the written artifact serves")
    p.set_defaults(func=cmd_attach_parser)

    p = sub.add_parser("speed", help="measure embedding throughput of an artifact on this machine")
    p.add_argument("--artifact", required=True)
    p.add_argument("-n", type=int, default=128, help="number of item images")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--snapshots", help="a folder of real photos (.jpg) to embed as snapshots (default: noise)")
    p.add_argument("--n-snapshots", type=int, default=48)
    p.add_argument("--schemes", nargs="+", metavar="SCHEME", help="snapshot schemes to time side by side")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--garment-descriptors", nargs="+", choices=["crop", "pooled", "both"], help="time 'garments' with each"
    )
    p.add_argument("--runtimes", nargs="+", choices=["keras", "onnx"], help="time each side by side (default: keras)")
    p.add_argument("--onnx-dir", help="where the onnx runtime's exports go (default: a new temporary directory)")
    p.set_defaults(func=cmd_speed)

    args = parser.parse_args(argv)
    return args.func(args)
