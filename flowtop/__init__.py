"""flowtop: a top-like viewer of the Linux conntrack table, in pure Python."""

__version__ = "0.1.0"
