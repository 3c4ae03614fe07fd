from django.apps import AppConfig

# Pillow allocates a decoded picture in blocks (16 MB by default). Blocks that size come from a thread's
# malloc arena once glibc has raised its mmap threshold, and stay there when freed: a threaded web process
# kept ~150 MB per thread that had decoded a 40-megapixel upload. Blocks above glibc's largest threshold
# (32 MB) are always mapped on their own and go back to the OS when freed (docs/reliability.md).
PILLOW_BLOCK_SIZE = 64 * 2**20


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from PIL import Image

        Image.core.set_block_size(max(PILLOW_BLOCK_SIZE, Image.core.get_block_size()))
