"""``python -m engine.dbpath transform|ddl|import``: the ``launchdeck db`` commands on their own."""

from engine.dbpath.cli import app

app(prog_name="launchdeck db")
