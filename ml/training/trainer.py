"""One training stage as a ``keras.Model``: the traced step (losses, regions in the loop) in ``train_step``."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ml.losses import arcface_loss, batch_hard_triplet_loss, smoothed_cross_entropy
from ml.ops import l2_normalize
from ml.training.descriptors import imprinted_class_weights


class StageTrainer(keras.Model):
    """``describe = head(trunk(maps))`` (``trunk`` None in stage 1) with the ArcFace class weights, the
    optional auxiliary classifier and one optimizer per learning-rate group (head; trunk)."""

    def __init__(self, embedder, stage, cache, masks: np.ndarray, *, seed: int, mixed: bool):
        super().__init__(name=f"{stage.name}_trainer")
        config = self.config = embedder.config
        self.head, self.trunk = embedder.head, stage.trunk
        self.classes = np.unique(np.concatenate([cache.item_classes, cache.snapshot_classes]))
        n_classes, dim = len(self.classes), embedder.dim
        if stage.imprint and config.loss == "arcface":
            initial = imprinted_class_weights(self.describe, cache, masks, self.classes)
        else:
            initial = keras.initializers.GlorotUniform(seed=seed)((n_classes, dim))
        self.class_weights = keras.Variable(initial, name="arcface_w", dtype="float32")
        aux = None
        if config.aux_weight > 0:
            aux = keras.layers.Dense(n_classes, name="aux_classifier", dtype="float32")
            aux.build((None, config.dim or dim // len(config.pooling)))
        self.aux = aux
        category = None
        if config.category_weight > 0:
            from ml.garments import GROUPS

            category = keras.layers.Dense(len(GROUPS), name="category_classifier", dtype="float32")
            category.build((None, dim))
        self.category = category
        self.groups = self._variable_groups(stage)
        self.stage_optimizers = []
        for learning_rate, variables in self.groups:
            optimizer = keras.optimizers.Adam(learning_rate)
            if mixed:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(variables)  # before tracing: the loss scale must be a variable, not the initial constant
            self.stage_optimizers.append(optimizer)
        # Which sample kinds exist is decided once, in Python: inside the traced step, batch sizes are unknown.
        self.has_items, self.has_snapshots = len(cache.item_classes) > 0, len(cache.snapshot_classes) > 0
        self.n_regions = masks.shape[0]
        self.masks = tf.constant(masks)
        self.built = True

    def _variable_groups(self, stage) -> list[tuple[float, list]]:
        head_vars = list(self.head.trainable_variables) + (list(self.aux.trainable_variables) if self.aux else [])
        head_vars += list(self.category.trainable_variables) if self.category else []
        if self.config.loss == "arcface":
            head_vars.append(self.class_weights)
        groups = [(stage.head_learning_rate, head_vars)]
        if self.trunk is not None:
            trunk_vars = [
                w
                for layer in self.trunk.layers
                if not isinstance(layer, keras.layers.BatchNormalization)
                for w in layer.trainable_weights
            ]
            groups.append((stage.trunk_learning_rate, trunk_vars))
        return groups

    def describe(self, maps, masks=None, return_branches=False):
        if self.trunk is not None:
            maps = self.trunk(maps, training=False)  # BatchNorm in inference mode: frozen statistics
        return self.head(maps, masks=masks, return_branches=return_branches)

    def call(self, maps, masks=None):
        return self.describe(maps, masks=masks)

    def train_step(self, data):
        xi, yi, xs, ys, ci = data if len(data) == 5 else (*data, None)
        yi, ys = tf.cast(yi, tf.int32), tf.cast(ys, tf.int32)
        with tf.GradientTape(persistent=len(self.groups) > 1) as tape:
            loss = self._loss(xi, yi, xs, ys, ci)
            scaled = [optimizer.scale_loss(loss) for optimizer in self.stage_optimizers]  # identity unless scaling
        for optimizer, (_, variables), scaled_loss in zip(self.stage_optimizers, self.groups, scaled, strict=True):
            grads = tape.gradient(scaled_loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {"loss": loss}

    def _loss(self, xi, yi, xs, ys, ci=None):
        config = self.config
        embs, firsts, labels = [], [], []
        if self.has_items:
            ei, fi = self.describe(xi, return_branches=True)  # (bi, d), (bi, d_branch)
            embs.append(ei)
            firsts.append(fi)
            labels.append(yi)
        if self.has_snapshots:
            es, fs = self.describe(xs, masks=self.masks, return_branches=True)  # (bs, regions, d)
            embs.append(es[:, 0])
            firsts.append(fs[:, 0])
            labels.append(ys)
            if self.n_regions > 1:  # the region the class is most likely worn in, chosen without gradient
                best = self._best_region(es, ys, ei if self.has_items else None, yi)
                embs.append(tf.gather(es, best, axis=1, batch_dims=1))
                firsts.append(tf.gather(fs, best, axis=1, batch_dims=1))
                labels.append(ys)
        emb = tf.concat(embs, 0)  # float32 (the head casts before normalising)
        lab = tf.concat(labels, 0)
        if config.loss == "arcface":
            loss = arcface_loss(emb, self.class_weights, lab, scale=config.arcface_scale, margin=config.arcface_margin)
        else:
            loss = batch_hard_triplet_loss(emb, lab, margin=config.triplet_margin)
        if self.aux is not None:
            logits = self.aux(l2_normalize(tf.cast(tf.concat(firsts, 0), tf.float32)))
            loss += config.aux_weight * smoothed_cross_entropy(
                logits, lab, label_smoothing=config.label_smoothing, temperature=config.temperature
            )
        if self.category is not None and self.has_items and ci is not None:
            known = tf.greater_equal(tf.cast(ci, tf.int32), 0)
            logits = self.category(tf.boolean_mask(ei, known))
            category_loss = smoothed_cross_entropy(
                logits,
                tf.boolean_mask(tf.cast(ci, tf.int32), known),
                label_smoothing=config.label_smoothing,
                temperature=config.temperature,
            )
            # no item with a category in this batch: no term (the mean of nothing would be NaN)
            loss += config.category_weight * tf.where(tf.reduce_any(known), category_loss, 0.0)
        return loss

    def _best_region(self, es, ys, ei, yi):
        """Per snapshot, the non-global region closest to its class (ArcFace weight, else its batch items)."""
        if self.config.loss == "arcface":
            anchor = tf.gather(l2_normalize(self.class_weights), ys)  # (bs, d)
        elif ei is not None:
            same = tf.cast(tf.equal(ys[:, None], yi[None, :]), es.dtype)  # (bs, bi)
            anchor = tf.matmul(same, ei)  # sum of the class's item descriptors in the batch
        else:
            anchor = es[:, 0]
        sims = tf.einsum("brd,bd->br", tf.stop_gradient(es), tf.stop_gradient(anchor))
        return tf.argmax(sims[:, 1:], axis=1, output_type=tf.int32) + 1  # best non-global region
