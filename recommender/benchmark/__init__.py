"""The selector benchmark behind ``manage.py bench_recommender``.

``scratch`` fills and removes the synthetic catalog it runs on; ``measure`` times the
selectors against an exact scan of it and formats the report. The command only parses
options, orders the steps and prints.
"""
