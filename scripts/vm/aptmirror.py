"""The Debian mirror this machine's apt already uses (its sources files), for
debootstrap and the VM rig: the repo names no mirror of its own.

    python3 scripts/vm/aptmirror.py        # prints e.g. the URI of the main archive
"""

import glob
import os
import sys


def _uris(text, deb822):
    if deb822:
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "uris":
                yield from value.split()
    else:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                uri = [w for w in words[1:] if not w.startswith("[")][0]
                yield uri


def apt_mirror(root="/etc/apt"):
    """The first archive URI of apt's sources whose path ends in /debian
    (not -security, -updates or a third party's); None when there is none."""
    files = [os.path.join(root, "sources.list")] + sorted(
        glob.glob(os.path.join(root, "sources.list.d", "*.list"))
        + glob.glob(os.path.join(root, "sources.list.d", "*.sources")))
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for uri in _uris(text, path.endswith(".sources")):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return None


if __name__ == "__main__":
    mirror = apt_mirror()
    if mirror is None:
        sys.exit("no Debian archive in /etc/apt's sources: set FLOWTOP_VM_MIRROR")
    print(mirror)
