"""The ``adclick`` command line: the one entry point for people and for DAGs.

It sits above every other package (it imports the layers; nothing imports it). Packages that own
a subcommand register it here (``ingestion/commands.py``, ``traffic/commands.py``).
"""
