"""Catalog fixtures: pictures in every shape the validator must accept or refuse, and broker inspection."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from tests import factories as f


@pytest.fixture
def jpeg_bytes() -> bytes:
    return f.make_image_bytes(size=(200, 300))


@pytest.fixture
def truncated_jpeg(jpeg_bytes) -> bytes:
    return jpeg_bytes[: len(jpeg_bytes) // 2]


@pytest.fixture
def bomb_png() -> bytes:
    """A small PNG of 10000x10000 pixels (100 megapixels, over the default 40 MP limit, under Pillow's own)."""
    img = Image.new("1", (10000, 10000))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def queued_messages(celery_app_purged):
    """A function returning the task messages waiting in a broker queue: [(task name, args), ...], in the
    order a worker takes them (the priority lists of the Redis transport lowest number first, each oldest first).

    The embedding queue is emptied before and after the test (``control.purge`` only knows the default queue).
    """

    def keys(channel, queue: str) -> list[str]:
        return [channel._q_for_pri(queue, step) for step in channel.priority_steps]

    def clear() -> None:
        with celery_app_purged.connection_for_write() as conn:
            conn.default_channel.client.delete(*keys(conn.default_channel, "embedding"))

    def read(queue: str = "embedding") -> list[tuple[str, list]]:
        with celery_app_purged.connection_for_write() as conn:
            channel = conn.default_channel
            raw = [entry for key in keys(channel, queue) for entry in reversed(channel.client.lrange(key, 0, -1))]
        messages = []
        for entry in raw:  # kombu LPUSHes: reversed above, oldest first
            payload = json.loads(entry)
            body = json.loads(base64.b64decode(payload["body"]))
            messages.append((payload["headers"]["task"], body[0][0]))  # body: [args, kwargs, embed]
        return messages

    clear()
    yield read
    clear()
