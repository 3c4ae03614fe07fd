"""A test-only stand-in for the ``ml`` package with the same contract (artifact, training, evaluation,
config), fast and deterministic, so worker tests do not wait for TensorFlow.

Two embedding modes: "color" describes an image by its mean colour (images of one test post share
a colour, so it retrieves well: a "good" trained model); "hash" gives each image a pseudo-random
vector from its pixels (a "poor" model). Both are deterministic per image, so re-embedding writes
the same vectors. ``FAKE_ML_EMBED_DELAY_S`` slows each embed call (to kill a worker mid-batch);
``FAKE_ML_TRAIN_MODE`` picks the mode a training run produces; ``FAKE_ML_TRAIN_SECONDS`` makes a
training run last that long (to see it run, or kill its worker, mid-training).
"""
