"""Files shipped inside the package (``conf/*.conf``).

Read as ``pkgutil.get_data`` reads them -- through the package's loader, so
the one-file .pyz works too -- without importing pkgutil: its import pulls in
``typing`` (0.8 MiB of RSS together, a twentieth of a small router's budget).
"""

import os


def get_data(resource):
    """Bytes of ``resource`` ("conf/tcp.conf"), or None when the loader
    cannot read files.  OSError when it is missing."""
    import flowtop
    reader = getattr(flowtop.__spec__.loader, "get_data", None)
    if reader is None:
        return None
    base = os.path.dirname(flowtop.__file__)
    return reader(os.path.join(base, *resource.split("/")))
