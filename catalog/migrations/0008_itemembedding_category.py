"""Item embedding rows carry their item's category id, maintained by the database.

Shop the look searches each garment among its kind (its group's categories). With the category on
the vector row, every garment group gets a partial HNSW index of its own (``recommender.indexes``):
a garment's walk starts among its kind instead of post-filtering a walk of the whole graph, which
sometimes never reached the garment's product line (docs/bench.md, "Lost walks"). The column is
derived data, so PostgreSQL keeps it, whatever writes the rows (ORM, COPY, bulk inserts, admin):

- BEFORE INSERT OR UPDATE on an item embedding row: ``category_id`` is read from the item;
- AFTER UPDATE OF category_id on an item (a move, or SET NULL when its category is deleted): the
  item's embedding rows get the new value.
"""

from django.db import migrations, models

FORWARD = [
    """
    CREATE FUNCTION catalog_itemembedding_category_fill() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.category_id := (SELECT i.category_id FROM catalog_item i WHERE i.id = NEW.item_id);
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER catalog_itemembedding_category_fill BEFORE INSERT OR UPDATE ON catalog_itemembedding
    FOR EACH ROW EXECUTE FUNCTION catalog_itemembedding_category_fill();
    """,
    """
    CREATE FUNCTION catalog_item_embeddings_category_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- any UPDATE of the rows re-reads the item's category (trigger above)
        UPDATE catalog_itemembedding SET category_id = NULL WHERE item_id = NEW.id;
        RETURN NULL;
    END $$;
    """,
    """
    CREATE TRIGGER catalog_item_embeddings_category_sync AFTER UPDATE OF category_id ON catalog_item
    FOR EACH ROW WHEN (OLD.category_id IS DISTINCT FROM NEW.category_id)
    EXECUTE FUNCTION catalog_item_embeddings_category_sync();
    """,
    # Existing rows: an UPDATE fires the fill trigger.
    "UPDATE catalog_itemembedding SET category_id = NULL",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS catalog_item_embeddings_category_sync ON catalog_item",
    "DROP FUNCTION IF EXISTS catalog_item_embeddings_category_sync()",
    "DROP TRIGGER IF EXISTS catalog_itemembedding_category_fill ON catalog_itemembedding",
    "DROP FUNCTION IF EXISTS catalog_itemembedding_category_fill()",
]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0007_canonical_categories"),
    ]

    operations = [
        migrations.AddField(
            model_name="itemembedding",
            name="category_id",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="itemembedding",
            index=models.Index(fields=["model_version", "category_id"], name="catalog_ite_model_v_cat_idx"),
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD),
    ]
