"""The garment parser: shapes, training on a small CCP-layout tree, the artifact with a parser, looks."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ml import artifact
from ml.config import ModelConfig
from ml.datasets.ccp import label_names
from ml.garments import GROUPS
from ml.model import Embedder
from ml.parser import ParserConfig, build_parser_head, tap_layers, tapped_backbone

CCP_NAMES = ["null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra", "bracelet"]
CCP_NAMES += ["cape", "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses", "gloves", "hair"]
CCP_NAMES += ["hat", "heels", "hoodie", "intimate", "jacket", "jeans", "jumper", "leggings", "loafers", "necklace"]
CCP_NAMES += ["panties", "pants", "pumps", "purse", "ring", "romper", "sandals", "scarf", "shirt", "shoes"]
CCP_NAMES += ["shorts", "skin", "skirt", "sneakers", "socks", "stockings", "suit", "sunglasses", "sweater"]
CCP_NAMES += ["sweatshirt", "swimwear", "t-shirt", "tie", "tights", "top", "vest", "wallet", "watch", "wedges"]
TSHIRT, PANTS, SHOES, SKIN = (CCP_NAMES.index(n) for n in ("t-shirt", "pants", "shoes", "skin"))


@pytest.fixture(scope="module")
def ccp_tree(tmp_path_factory):
    """A CCP-layout tree of 12 synthetic 'street photos' (160 x 112): a red top, blue trousers, two black shoes."""
    from scipy.io import savemat

    root = tmp_path_factory.mktemp("ccp")
    (root / "photos").mkdir()
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    names = np.empty((1, len(CCP_NAMES)), dtype=object)
    names[0, :] = CCP_NAMES
    savemat(root / "label_list.mat", {"label_list": names})
    rng = np.random.default_rng(0)
    for i in range(1, 13):
        h, w = 160, 112
        photo = rng.integers(150, 230, (h, w, 3)).astype(np.uint8)
        labels = np.zeros((h, w), dtype=np.uint8)
        x = int(rng.integers(10, 40))
        y = int(rng.integers(5, 20))
        parts = [
            (slice(y, y + 15), slice(x + 15, x + 45), SKIN, (224, 172, 140)),
            (slice(y + 15, y + 65), slice(x, x + 60), TSHIRT, (200, 30, 30)),
            (slice(y + 65, y + 120), slice(x + 5, x + 55), PANTS, (30, 40, 190)),
            (slice(y + 122, y + 132), slice(x, x + 20), SHOES, (15, 15, 15)),
            (slice(y + 122, y + 132), slice(x + 40, x + 60), SHOES, (15, 15, 15)),
        ]
        for rows, cols, label, colour in parts:
            labels[rows, cols] = label
            photo[rows, cols] = np.clip(np.array(colour) + rng.integers(-15, 15, 3), 0, 255)
        Image.fromarray(photo).save(root / "photos" / f"{i:04d}.jpg", quality=95)
        savemat(root / "annotations" / "pixel-level" / f"{i:04d}.mat", {"groundtruth": labels})
    assert label_names(root) == CCP_NAMES
    return root


@pytest.fixture(scope="module")
def small_config():
    return ModelConfig(backbone="efficientnet_lite0", dim=16, item_size=64, snapshot_size=(128, 96))


@pytest.fixture(scope="module")
def embedder(small_config, tmp_path_factory):
    return Embedder.build(small_config, cache_dir=tmp_path_factory.mktemp("weights"))


def test_config_checks_and_round_trips():
    config = ParserConfig(width=32)
    assert ParserConfig.from_dict(config.to_dict()) == config and config.classes == len(GROUPS)
    with pytest.raises(ValueError):
        ParserConfig(width=4)
    with pytest.raises(ValueError):
        ParserConfig(groups=["tops", "background"], classes=2)
    with pytest.raises(ValueError):
        ParserConfig.from_dict({"width": 32, "colour": 1})
    with pytest.raises(ValueError):
        tap_layers("resnet50")


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_taps_are_at_strides_8_16_32_and_the_head_predicts_at_stride_4(name):
    from ml.backbones import efficientnet_lite

    backbone = efficientnet_lite.build(name)
    outs = tapped_backbone(backbone, name).predict_on_batch(np.zeros((2, 128, 96, 3), np.float32))
    assert [o.shape[1:3] for o in outs] == [(16, 12), (8, 6), (4, 3), (4, 3)]
    head = build_parser_head(ParserConfig(width=16), name)
    logits = head.predict_on_batch(outs[:3])
    assert logits.shape == (2, 32, 24, len(GROUPS)) and logits.dtype == np.float32


def test_short_training_raises_train_miou(embedder, ccp_tree, tmp_path):
    from ml.training.parser import (
        ParserOptions,
        cache_parser_features,
        ccp_parse_records,
        measure_parser,
        train_parser,
    )

    records = ccp_parse_records(ccp_tree, "train")
    assert len(records) == 12
    config = ParserConfig(width=16)
    options = ParserOptions(views=2, epochs=12, batch_size=4, crop_cells=(3, 2), learning_rate=5e-3)
    cache = cache_parser_features(embedder, records, views=1, cache_dir=tmp_path)
    assert cache.labels.shape == (12, 32, 24) and cache.tap8.dtype == np.float16
    assert set(np.unique(cache.labels)) == {GROUPS.index(g) for g in ("background", "tops", "trousers", "shoes")}
    before = measure_parser(build_parser_head(config, "efficientnet_lite0"), cache, config.classes)
    head, metrics = train_parser(embedder, records, config=config, options=options, seed=0, cache_dir=tmp_path)
    assert len(metrics["loss"]) == 12 and metrics["loss"][-1] < metrics["loss"][0]
    assert metrics["train"]["miou"] > before["miou"] + 20, (before["miou"], metrics["train"]["miou"])
    assert list(tmp_path.glob("parser-*.npz")), "the taps are cached on disk"


@pytest.fixture(scope="module")
def parser_artifact(embedder, ccp_tree, tmp_path_factory):
    from ml.training.parser import ParserOptions, ccp_parse_records, train_parser

    config = ParserConfig(width=16, min_area=0.002)
    options = ParserOptions(views=2, epochs=15, batch_size=4, crop_cells=(3, 2), learning_rate=5e-3)
    head, _ = train_parser(embedder, ccp_parse_records(ccp_tree, "train"), config=config, options=options)
    base = artifact.save(embedder, tmp_path_factory.mktemp("base") / "base")
    out = tmp_path_factory.mktemp("with-parser") / "art"
    return base, artifact.with_parser(base, head, config, out, metrics={"parser": {"miou": 1.0}})


def test_artifact_with_parser_round_trips_and_verify_covers_the_parser(parser_artifact, ccp_tree, tmp_path):
    base, path = parser_artifact
    config = artifact.verify(path)
    assert config.regions == "garments" and config.max_regions == 12
    manifest = json.loads((path / "config.json").read_text())
    assert manifest["parser"]["width"] == 16 and "parser.weights.h5" in manifest["files"]
    assert artifact.checksum(path) != artifact.checksum(base)
    photos = [ccp_tree / "photos" / f"{i:04d}.jpg" for i in (1, 2, 3)]
    first, second = artifact.load(path), artifact.load(path)
    a, b = first.embed_looks(photos), second.embed_looks(photos)
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-5, atol=1e-6)
    assert [[g.box for g in gs] for gs in a.garments] == [[g.box for g in gs] for gs in b.garments]
    # the parser file is checked like the others
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    (broken / "parser.weights.h5").write_bytes(b"not h5")
    with pytest.raises(artifact.ArtifactError, match="checksum mismatch for parser.weights.h5"):
        artifact.verify(broken)
    (broken / "parser.weights.h5").unlink()
    with pytest.raises(artifact.ArtifactError, match="missing file parser.weights.h5"):
        artifact.verify(broken)


def test_looks_give_one_row_per_garment_padded_with_the_whole_photo(parser_artifact, ccp_tree):
    _, path = parser_artifact
    embedder = artifact.load(path)
    photos = [ccp_tree / "photos" / f"{i:04d}.jpg" for i in (4, 5)]
    looks = embedder.embed_looks(photos)
    assert looks.vectors.shape == (2, 12, 16 * 2) and looks.scheme == "garments"
    np.testing.assert_allclose(np.linalg.norm(looks.vectors, axis=2), 1.0, rtol=1e-5)
    whole = embedder.embed_snapshots(photos, scheme="global")[:, 0]
    for i, garments in enumerate(looks.garments):
        assert looks.counts[i] == 1 + len(garments)
        assert {g.group for g in garments} >= {"tops", "trousers"}, [g.group for g in garments]
        np.testing.assert_allclose(looks.vectors[i, 0], whole[i], rtol=1e-4, atol=1e-5)
        for row in looks.vectors[i, looks.counts[i] :]:
            np.testing.assert_array_equal(row, looks.vectors[i, 0])
        for g, garment in enumerate(garments):  # a garment's row is its masked crop embedded as an item
            from ml.garments import crop_on_white

            photo = np.asarray(Image.open(photos[i]).convert("RGB"))
            item = embedder.embed_items([Image.fromarray(crop_on_white(photo, garment))])[0]
            np.testing.assert_allclose(looks.vectors[i, 1 + g], item, rtol=1e-4, atol=1e-5)
        # what is stored of each garment: its row, and its box in fractions of this photo's size
        height, width = np.asarray(Image.open(photos[i])).shape[:2]
        assert looks.sizes[i] == (height, width)
        records = looks.garment_records(i)
        assert [r["region"] for r in records] == list(range(1, 1 + len(garments)))
        for record, garment in zip(records, garments, strict=True):
            left, top, right, bottom = garment.box
            assert record["group"] == garment.group and record["outline"]
            assert record["box"] == pytest.approx(
                [left / width, top / height, right / width, bottom / height], abs=1e-4
            )
    # the same artifact still embeds with windows
    windows = embedder.embed_looks(photos, scheme="multiscale6")
    assert windows.vectors.shape == (2, 6, 32) and windows.garments == [[], []]


def test_pooled_and_both_descriptors(parser_artifact, ccp_tree):
    import dataclasses

    _, path = parser_artifact
    embedder = artifact.load(path)
    photos = [ccp_tree / "photos" / "0006.jpg"]
    crop = embedder.embed_looks(photos)
    embedder.config = dataclasses.replace(embedder.config, garment_descriptor="both")
    both = embedder.embed_looks(photos)
    n = len(crop.garments[0])
    assert both.vectors.shape[1] == 23 and both.counts[0] == 1 + 2 * n
    assert [r["region"] for r in both.garment_records(0)] == [1 + 2 * g for g in range(n)]  # the crop rows
    np.testing.assert_allclose(both.vectors[0, 1 : 1 + 2 * n : 2], crop.vectors[0, 1 : 1 + n], rtol=1e-4, atol=1e-5)
    embedder.config = dataclasses.replace(embedder.config, garment_descriptor="pooled")
    pooled = embedder.embed_looks(photos)
    np.testing.assert_allclose(pooled.vectors[0, 1 : 1 + n], both.vectors[0, 2 : 2 + 2 * n : 2], rtol=1e-4, atol=1e-5)


def test_an_artifact_without_a_parser_still_embeds_with_windows(embedder, tmp_path):
    path = artifact.save(embedder, tmp_path / "plain")
    loaded = artifact.load(path)
    assert not loaded.has_parser and "parser" not in json.loads((path / "config.json").read_text())
    image = Image.fromarray(np.full((90, 60, 3), 128, np.uint8))
    assert loaded.embed_snapshots([image]).shape == (1, 32, 32)
    with pytest.raises(ValueError, match="parser"):
        loaded.embed_looks([image], scheme="garments")
    with pytest.raises(ValueError, match="parser"):
        Embedder(ModelConfig(regions="garments"), loaded.backbone, loaded.head_model)


def test_parser_evaluation_on_the_training_photos(parser_artifact, ccp_tree):
    from ml.datasets.ccp import load_posts
    from ml.evaluation import evaluate_parser

    _, path = parser_artifact
    posts = load_posts(ccp_tree, "train")
    report = evaluate_parser(artifact.load(path), posts)
    assert report["items_per_photo"] == 3.0  # t-shirt, pants, the pair of shoes
    assert report["miou"] > 40 and report["garment_recall_any_group"] > 50, report
    assert set(report["iou"]) == set(GROUPS)


def test_cli_parse_train_attach_evaluate_and_speed(embedder, ccp_tree, tmp_path, capsys):
    from ml.cli import main

    base = artifact.save(embedder, tmp_path / "base")
    out = tmp_path / "parsed"
    argv = ["parse-train", "--artifact", str(base), "--ccp", str(ccp_tree), "--out", str(out)]
    argv += ["--epochs", "2", "--views", "1", "--width", "16", "--batch-size", "4", "--val-split", "train"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and '"miou"' in printed
    assert artifact.verify(out).regions == "garments"
    assert artifact.metadata(out)["info"]["parser_training"]["posts"] == 12
    # the parser moves to another artifact with the same backbone (a stage-2 fine-tune would qualify)
    moved = tmp_path / "moved"
    assert main(["attach-parser", "--parser-from", str(out), "--artifact", str(base), "--out", str(moved)]) == 0
    assert artifact.load(moved).has_parser
    other = Embedder.build(ModelConfig(backbone="efficientnet_lite0", weights=None, dim=16, snapshot_size=(128, 96)))
    stranger = artifact.save(other, tmp_path / "stranger")
    with pytest.raises(SystemExit, match="differ up to the parser's taps"):
        main(["attach-parser", "--parser-from", str(out), "--artifact", str(stranger), "--out", str(tmp_path / "x")])
    capsys.readouterr()
    report = tmp_path / "report.json"
    argv = ["evaluate", "--artifact", str(out), "--ccp", str(ccp_tree), "--split", "train", "--distractors", "0"]
    argv += ["--schemes", "garments", "multiscale6", "--parser", "--json", str(report)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "garments without the whole photo" in printed and "multiscale6 (6.0 vectors/snapshot" in printed
    data = json.loads(report.read_text())
    assert set(data) == {"retrieval", "snapshots", "parser"} and "garment_recall" in data["parser"]
    argv = ["speed", "--artifact", str(out), "-n", "8", "--batch-size", "4", "--snapshots", str(ccp_tree / "photos")]
    assert main(argv + ["--n-snapshots", "8", "--schemes", "multiscale6", "garments", "--rounds", "1"]) == 0
    assert "scheme garments" in capsys.readouterr().out


def test_a_parser_on_the_final_map_too_round_trips_and_depends_on_every_layer(embedder, ccp_tree, tmp_path):
    from ml.parser import taps_digest
    from ml.training.parser import ParserOptions, ccp_parse_records, train_parser

    config = ParserConfig(width=16, final_map=True)
    options = ParserOptions(views=1, epochs=2, batch_size=4, crop_cells=(3, 2))
    head, metrics = train_parser(embedder, ccp_parse_records(ccp_tree, "train"), config=config, options=options)
    assert head.inputs[2].shape[-1] == 192 + 1280  # Lite0 stride-32 tap (stage 5) + the final map
    base = artifact.save(embedder, tmp_path / "base")
    path = artifact.with_parser(base, head, config, tmp_path / "art")
    loaded = artifact.load(path)
    assert loaded.parser_config.final_map
    looks = loaded.embed_looks([ccp_tree / "photos" / "0001.jpg"])
    assert looks.vectors.shape == (1, 12, 32)
    # the digest that guards the cache and attach-parser: the last stage counts only with the final map
    name = "efficientnet_lite0"
    before = (taps_digest(embedder.backbone, name), taps_digest(embedder.backbone, name, final_map=True))
    layer = embedder.backbone.get_layer("head_conv")
    saved = layer.get_weights()
    layer.set_weights([w + 0.01 for w in saved])
    try:
        after = (taps_digest(embedder.backbone, name), taps_digest(embedder.backbone, name, final_map=True))
    finally:
        layer.set_weights(saved)
    assert before[0] == after[0] and before[1] != after[1]
