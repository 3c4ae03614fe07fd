"""Embedding rows carry their owner's style ids, maintained by the database.

A one-style filter (the shop's most common one) can then be answered by a per-style partial
HNSW index (``recommender.indexes``) whose graph holds only that style's rows, instead of a
walk of the whole graph that discards nine rows in ten for a 10% style. The column is derived
data, so PostgreSQL keeps it, whatever writes the rows (ORM, COPY, bulk inserts, admin):

- BEFORE INSERT OR UPDATE on an embedding row: ``style_ids`` is recomputed from the style link
  table (whatever the writer put there);
- AFTER INSERT/UPDATE/DELETE of a style link: the owner's embedding rows are touched, which
  recomputes them through the first trigger.

TRUNCATE of a style link table is not followed (nothing in Lookbook does it).
"""

import django.contrib.postgres.fields
from django.db import migrations, models

# (embedding table, owner column, style link table)
TABLES = (
    ("catalog_itemembedding", "item_id", "catalog_item_styles"),
    ("catalog_snapshotembedding", "snapshot_id", "catalog_snapshot_styles"),
)


def _forward(table: str, owner: str, links: str) -> list[str]:
    return [
        f"""
        CREATE FUNCTION {table}_style_ids_fill() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.style_ids := COALESCE(
                (SELECT array_agg(l.style_id ORDER BY l.style_id) FROM {links} l WHERE l.{owner} = NEW.{owner}),
                '{{}}'
            );
            RETURN NEW;
        END $$;
        """,
        f"""
        CREATE TRIGGER {table}_style_ids_fill BEFORE INSERT OR UPDATE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_style_ids_fill();
        """,
        f"""
        CREATE FUNCTION {links}_embeddings_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Any UPDATE of the owner's embedding rows recomputes their style ids (trigger above).
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                UPDATE {table} SET style_ids = '{{}}' WHERE {owner} = OLD.{owner};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                UPDATE {table} SET style_ids = '{{}}' WHERE {owner} = NEW.{owner};
            END IF;
            RETURN NULL;
        END $$;
        """,
        f"""
        CREATE TRIGGER {links}_embeddings_sync AFTER INSERT OR UPDATE OR DELETE ON {links}
        FOR EACH ROW EXECUTE FUNCTION {links}_embeddings_sync();
        """,
        f"ALTER TABLE {table} ALTER COLUMN style_ids SET DEFAULT '{{}}'",
        # Existing rows: an UPDATE fires the fill trigger.
        f"UPDATE {table} e SET style_ids = '{{}}' WHERE EXISTS (SELECT 1 FROM {links} l WHERE l.{owner} = e.{owner})",
    ]


def _backward(table: str, owner: str, links: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {links}_embeddings_sync ON {links}",
        f"DROP FUNCTION IF EXISTS {links}_embeddings_sync()",
        f"DROP TRIGGER IF EXISTS {table}_style_ids_fill ON {table}",
        f"DROP FUNCTION IF EXISTS {table}_style_ids_fill()",
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_vectors_stored_inline"),
    ]

    operations = [
        migrations.AddField(
            model_name="itemembedding",
            name="style_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(), blank=True, default=list, editable=False, size=None
            ),
        ),
        migrations.AddField(
            model_name="snapshotembedding",
            name="style_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(), blank=True, default=list, editable=False, size=None
            ),
        ),
        *[migrations.RunSQL(sql=_forward(*names), reverse_sql=_backward(*names)) for names in TABLES],
    ]
