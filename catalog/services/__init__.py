"""Catalog services: functions that change state (posts, images, embeddings). Import submodules explicitly."""
