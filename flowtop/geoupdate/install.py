"""Installing a download for ``flowtop -u``: unpack (gzip, MaxMind's
tar.gz), check that it is a MaxMind DB, and only then move it over the old
file with ``os.replace``: a failed or corrupt download leaves the old one."""

import os
import re

from .conf import _TMP_PREFIX, DEST_DIRS, MAGIC, UpdateError
from .fetch import _copy


def _head(path, n=512):
    with open(path, "rb") as f:
        return f.read(n)


def _gunzip(src, dst):
    try:
        import gzip
    except ImportError:
        raise UpdateError("this Python has no gzip module: cannot unpack the download")
    try:
        with gzip.open(src, "rb") as g, open(dst, "wb") as out:
            _copy(g, out)
    except UpdateError:
        raise
    except Exception as exc:            # OSError, EOFError, zlib.error
        raise UpdateError("corrupt download: not a valid gzip file (%s)" % (exc or "truncated"))


def _untar(src, dst):
    try:
        import tarfile
    except ImportError:
        raise UpdateError("this Python has no tarfile module: cannot unpack MaxMind's tar.gz")
    try:
        with tarfile.open(src, "r:*") as tf:
            for member in tf:
                if member.isfile() and member.name.endswith(".mmdb"):
                    f = tf.extractfile(member)
                    with open(dst, "wb") as out:
                        _copy(f, out)
                    return
    except UpdateError:
        raise
    except Exception as exc:
        raise UpdateError("corrupt download: not a valid tar file (%s)" % exc)
    raise UpdateError("the tar file holds no .mmdb database")


def check_mmdb(path):
    """The database_type of the MaxMind DB at ``path`` ('' if unknown);
    raises UpdateError when it is not one.  With maxminddb the file is
    opened, its search tree checked against its size and a few addresses
    looked up; without it, the metadata marker must be near the end."""
    size = os.path.getsize(path)
    try:
        import maxminddb
    except ImportError:
        maxminddb = None
    if maxminddb is None:
        with open(path, "rb") as f:
            f.seek(max(0, size - 128 * 1024))
            tail = f.read()
        if MAGIC not in tail:
            raise UpdateError("not a MaxMind DB file (no metadata marker)")
        return _meta_type(tail[tail.rfind(MAGIC) + len(MAGIC):])
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except Exception:                   # its text names our temp file: say it plainly
        raise UpdateError("not a MaxMind DB file")
    try:
        meta = reader.metadata()
        tree = meta.node_count * meta.record_size * 2 // 8
        if meta.node_count <= 0 or tree + 16 > size:
            raise UpdateError("not a valid MaxMind DB file (search tree larger than the file)")
        probes = ("1.1.1.1", "8.8.8.8", "81.2.69.160")
        if meta.ip_version == 6:
            probes += ("2001:4860:4860::8888", "2a00:1450::1")
        for addr in probes:
            reader.get(addr)
        return str(meta.database_type or "")
    except UpdateError:
        raise
    except Exception as exc:
        raise UpdateError("corrupt MaxMind DB file (%s)"
                          % str(exc).replace(path, "download").split("\n")[0][:120])
    finally:
        reader.close()


def _meta_type(meta):
    """database_type from raw metadata bytes, without maxminddb: the key
    string, then a short UTF-8 string (type 2, size < 29)."""
    i = meta.find(b"database_type")
    if i < 0 or i + 14 > len(meta):
        return ""
    ctrl = meta[i + 13]
    size = ctrl & 0x1F
    if ctrl >> 5 != 2 or size >= 29:
        return ""
    return meta[i + 14:i + 14 + size].decode("utf-8", "replace")


# -- installing ------------------------------------------------------------------------

def pick_dest(dest_dirs=DEST_DIRS):
    """The first of ``dest_dirs`` that is (or can be made) a writable
    directory, or None."""
    for d in dest_dirs:
        if not os.path.isdir(d):
            try:
                os.makedirs(d, 0o755)
            except OSError:
                continue
        if os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def _tmp(dest):
    import tempfile
    fd, path = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=dest)
    os.close(fd)
    return path


def install(download, dest, name):
    """Unpack ``download`` (gzip, tar or plain), check it, and move it onto
    ``dest/name`` atomically.  Returns (final path, database_type, size).
    The temp files live in ``dest`` and are removed whatever happens; each
    stage's input is removed once unpacked (a router's /var is RAM)."""
    temps = []
    try:
        current = download
        head = _head(current)
        if head[:2] == b"\x1f\x8b":
            temps.append(_tmp(dest))
            _gunzip(current, temps[-1])
            _unlink(current)
            current = temps[-1]
            head = _head(current)
        if len(head) >= 262 and head[257:262] == b"ustar":
            temps.append(_tmp(dest))
            _untar(current, temps[-1])
            _unlink(current)
            current = temps[-1]
        dbtype = check_mmdb(current)
        with open(current, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(current, 0o644)
        final = os.path.join(dest, name)
        os.replace(current, final)
        if current in temps:
            temps.remove(current)
        _fsync_dir(dest)
        return final, dbtype, os.path.getsize(final)
    finally:
        for t in temps:
            _unlink(t)


def _fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _prune(dest, file_template, keep, say):
    """Remove other months of a dated file name (after a successful update)."""
    pattern = re.escape(file_template)
    for token, rx in (("{YYYY-MM}", r"\d{4}-\d{2}"), ("{YYYY}", r"\d{4}"), ("{MM}", r"\d{2}")):
        pattern = pattern.replace(re.escape(token), rx)
    rx = re.compile("^" + pattern + "$")
    try:
        names = os.listdir(dest)
    except OSError:
        return
    for name in names:
        if name != keep and rx.match(name):
            path = os.path.join(dest, name)
            if os.path.isfile(path):
                try:
                    os.unlink(path)
                    say("removed the older %s" % path)
                except OSError:
                    pass


def _mb(n):
    return "%.1f MB" % (n / 1e6) if n >= 100000 else "%d bytes" % n
