"""The sort columns' names, a leaf module: ``cli`` needs them to parse argv, and
importing ``views.rows`` for them pulled the whole model into ``--version``
(3.3 s of a mipsel router's start-up against 0.35 s for ``python3 -c pass``)."""

SORTS = ("state", "rate", "bytes", "packets", "age", "proto", "dst", "port")
