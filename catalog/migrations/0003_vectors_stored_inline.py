"""Keep descriptor vectors inside their heap rows instead of in the TOAST table.

A 1024-d float32 vector is ~4 kB, over PostgreSQL's 2 kB toasting threshold, so with the
default EXTENDED storage every vector went out of line: each read (the final distance of an
HNSW candidate, every row of an exact scan) cost a TOAST index lookup and two chunk fetches.
MAIN storage keeps a vector in its row as long as the row fits a page (about 2,000
dimensions of float32) and only moves larger ones out of line. Rows written before this
migration stay where they are until rewritten (a re-index writes new rows).
"""

from django.db import migrations

TABLES = ("catalog_itemembedding", "catalog_snapshotembedding")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_image_facts_and_constraints")]

    operations = [
        migrations.RunSQL(
            sql=[f"ALTER TABLE {table} ALTER COLUMN vector SET STORAGE MAIN" for table in TABLES],
            reverse_sql=[f"ALTER TABLE {table} ALTER COLUMN vector SET STORAGE EXTENDED" for table in TABLES],
        )
    ]
