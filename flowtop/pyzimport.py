"""The .pyz's importer: every flowtop module's bytecode in one stored member.

``scripts/build_pyz.py --python X.Y`` writes, as the archive's first member
(``CODE``, not compressed), the target Python's magic number, an index
``{module: (offset, size, is package)}`` and each module's marshalled code; the
modules' sources go in one more member (``SOURCES``: ``{module: (source, is
package)}``, marshalled), not a member each.  The archive's ``__main__`` calls
``install``: a meta-path finder then reads a module's code with one ``pread`` and
one ``marshal.loads``.  zipimport (pure Python since 3.8) spent ~0.8 M
instructions a module (a local header parsed, the member inflated: 27
instructions a byte, more than the unmarshalling), 17 ms each on a mipsel
router; and it parses the whole central directory at start, ~44 k instructions
a member (121 members: 4.2 M of a 58 M ``--version``).  With another Python's
magic number, or a module missing from the code, the module is compiled from
``SOURCES``; an archive without ``CODE`` is left to zipimport.
"""

import marshal
import os
import sys
from _imp import _fix_co_filename

CODE = b"flowtop.code"
SOURCES = "flowtop.src"
_PACKAGE = __name__.partition(".")[0]      # flowtop
_HEAD = 4096                    # the shebang line and the member's local header fit


def _magic():
    try:
        from _frozen_importlib_external import MAGIC_NUMBER    # no importlib.util
    except ImportError:                                         # pragma: no cover
        from importlib.util import MAGIC_NUMBER
    return MAGIC_NUMBER


def code_start(head):
    """Offset of ``CODE``'s data in an archive whose first bytes are ``head``,
    or None: not the first member, or compressed."""
    at = head.find(b"\n") + 1 if head.startswith(b"#!") else 0
    local = head[at:at + 30]
    if len(local) < 30 or local[:4] != b"PK\x03\x04" or local[8:10] != b"\0\0":
        return None
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    if head[at + 30:at + 30 + name_len] != CODE:
        return None
    return at + 30 + name_len + extra_len


def install(zip_loader):
    """Put a ``CodeImporter`` for ``zip_loader``'s archive (a zipimporter) before
    sys.meta_path's path finder; False (and nothing changed) when its archive
    holds no ``CODE`` (a sources-only zipapp: zipimport serves it)."""
    archive = getattr(zip_loader, "archive", None)
    if archive is None:
        return False
    try:
        fd = os.open(archive, os.O_RDONLY)
        try:
            head = os.pread(fd, _HEAD, 0)
            start = code_start(head)
            if start is None:
                return False
            index, base = {}, 0         # another Python's bytecode: all from SOURCES
            if os.pread(fd, 4, start) == _magic():
                size = int.from_bytes(os.pread(fd, 4, start + 4), "little")
                index, base = marshal.loads(os.pread(fd, size, start + 8)), start + 8 + size
        finally:
            os.close(fd)
    except (OSError, ValueError, EOFError, TypeError):
        return False
    importer = CodeImporter(archive, zip_loader, index, base)
    # first: only flowtop's modules are in its index (a dict miss for any other), and
    # asking the builtin and frozen finders first was 14 k instructions a module
    sys.meta_path.insert(0, importer)
    return importer


class CodeImporter:
    """Finder and loader of the modules in ``index`` (their code) or in the
    archive's ``SOURCES``; data files (``resources.get_data``) through the
    archive's zipimporter."""

    def __init__(self, archive, zip_loader, index, base):
        self.archive, self.zip, self.index, self.base = archive, zip_loader, index, base
        self.spec_type = type(__spec__)
        self._sources = None        # SOURCES, read when a module's code is not in index

    def sources(self):
        """{module: (source bytes, is package)}, read once ({} if unreadable)."""
        if self._sources is None:
            try:
                self._sources = marshal.loads(self.zip.get_data(SOURCES))
            except (OSError, ValueError, EOFError, TypeError):
                self._sources = {}
        return self._sources

    def _package(self, name):
        """Whether ``name`` is a package; None: not in this archive."""
        entry = self.index.get(name)
        if entry is not None:
            return entry[2]
        if name.partition(".")[0] != _PACKAGE:      # any other module: SOURCES not read
            return None
        entry = self.sources().get(name)
        return None if entry is None else entry[1]

    def find_spec(self, name, path=None, target=None):
        package = self._package(name)
        if package is None:
            return None
        # no has_location: importlib would make each a __cached__ path (cache_from_source,
        # ~37 k instructions a module: 2.3 M of a 14-flow --once); exec_module sets __file__
        spec = self.spec_type(name, self, origin=self.get_filename(name), is_package=package)
        if package:
            spec.submodule_search_locations = [os.path.dirname(spec.origin)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        spec = module.__spec__
        module.__file__ = spec.origin
        exec(self.get_code(spec.name, spec.origin), module.__dict__)

    def get_filename(self, name):
        rel = name.replace(".", os.sep) + (os.sep + "__init__.py" if self._package(name)
                                           else ".py")
        return os.path.join(self.archive, rel)

    def is_package(self, name):
        return self._package(name)

    def get_code(self, name, filename=None):
        filename = filename or self.get_filename(name)
        entry = self.index.get(name)
        if entry is None:
            return compile(self.sources()[name][0], filename, "exec", dont_inherit=True)
        offset, size, _ = entry
        fd = os.open(self.archive, os.O_RDONLY)
        try:
            data = os.pread(fd, size, self.base + offset)
        finally:
            os.close(fd)
        code = marshal.loads(data)
        # tracebacks name the archive's .py
        _fix_co_filename(code, filename)
        return code

    def get_source(self, name):
        entry = self.sources().get(name)
        return None if entry is None else entry[0].decode("utf-8")

    def get_data(self, path):
        return self.zip.get_data(path)
