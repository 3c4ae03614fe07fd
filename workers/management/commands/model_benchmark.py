import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers.ml_runtime import ml_module, open_image


class Command(BaseCommand):
    help = (
        "Embedding throughput of one worker process (images/s, batched as the workers batch): "
        "decode + embed, for items and snapshots, with the active version or a fresh pretrained model."
    )

    def add_arguments(self, parser):
        parser.add_argument("--datasets", default=str(settings.BASE_DIR.parent / "shared" / "datasets"))
        parser.add_argument("--backbone", default=settings.ML_BACKBONE)
        parser.add_argument("--artifact", default="", help="An artifact folder (default: build the pretrained one).")
        parser.add_argument("--items", type=int, default=64)
        parser.add_argument("--snapshots", type=int, default=32)
        parser.add_argument("--batch", type=int, default=settings.ML_EMBED_BATCH_SIZE)

    def handle(self, *args, datasets, backbone, artifact, items, snapshots, batch, **options):
        root = Path(datasets)
        item_paths = sorted((root / "clothing-dataset" / "images").glob("*.jpg"))[:items]
        snapshot_paths = sorted((root / "ccp" / "photos").glob("*.jpg"))[:snapshots]
        if len(item_paths) < items or len(snapshot_paths) < snapshots:
            raise CommandError(f"not enough images under {root} (clothing-dataset/images, ccp/photos)")
        module = ml_module("artifact")
        started = time.monotonic()
        if artifact:
            path = Path(artifact)
        else:
            path = Path(settings.ML_CACHE_DIR) / f"benchmark-pretrained-{backbone}"
            if not path.exists():
                module.create_pretrained(path, backbone=backbone, cache_dir=settings.ML_CACHE_DIR)
        embedder = module.load(path)
        self.stdout.write(
            f"model {path.name}: dim {embedder.dim}, {embedder.max_regions} regions, "
            f"loaded in {time.monotonic() - started:.1f}s; batch {batch}"
        )
        # Warm-up at the full batch shape (graph tracing is not part of the steady state).
        embedder.embed_items([open_image(item_paths[0])] * batch)
        embedder.embed_snapshots([open_image(snapshot_paths[0])] * min(batch, 8))
        for kind, paths in (("items", item_paths), ("snapshots", snapshot_paths)):
            started = time.monotonic()
            for start in range(0, len(paths), batch):
                images = [open_image(p) for p in paths[start : start + batch]]
                if kind == "items":
                    embedder.embed_items(images)
                else:
                    embedder.embed_snapshots(images)
            seconds = time.monotonic() - started
            self.stdout.write(
                self.style.SUCCESS(f"{kind}: {len(paths)} in {seconds:.1f}s = {len(paths) / seconds:.2f} images/s")
            )
