"""The command line's parts: shared argument handling (``common``), the commands on one
net (``commands``) and those on a study (``study``). :mod:`pieces.cli` builds the parser."""
