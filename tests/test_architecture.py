"""ARCHITECTURE.md's rule, checked from the source: no module imports a
module of a higher layer (lazy imports inside functions count too), and
every module of the package is listed there in one layer."""

import ast
import os
import re

from tests.nsutil import REPO

DOC = os.path.join(REPO, "ARCHITECTURE.md")

# (importer, imported): imports that point up, each with why; none left.
# The test fails when one is no longer needed, so the list only shrinks.
EXCEPTIONS = {}


def layers():
    """module name -> layer number, from ARCHITECTURE.md's module list."""
    out = {}
    layer = None
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"### (\d+) ", line)
            if m:
                layer = int(m.group(1))
                continue
            m = re.match(r"- `(flowtop/[\w/]+\.py)`", line)
            if m and layer is not None:
                name = module_name(m.group(1))
                assert name not in out, "%s is listed twice" % m.group(1)
                out[name] = layer
    return out


def module_name(path):
    name = path[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def sources():
    """module name -> path of every .py file of the package."""
    out = {}
    for root, _dirs, files in os.walk(os.path.join(REPO, "flowtop")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                out[module_name(os.path.relpath(path, REPO))] = path
    return out


def imports(name, path, known):
    """The flowtop modules ``name`` imports, anywhere in its source."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "flowtop")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = base + "." + node.module if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] != "flowtop":
                continue
            for a in node.names:       # ``from . import x``: x is a module if one exists
                sub = base + "." + a.name
                found.add(sub if sub in known else base)
    found.discard(name)
    return found


def upward_imports():
    order = layers()
    known = sources()
    out = {}
    for name, path in sorted(known.items()):
        for dep in imports(name, path, known):
            if dep in order and name in order and order[dep] > order[name]:
                out[(name, dep)] = (order[name], order[dep])
    return out


def test_every_module_is_listed_in_one_layer_of_architecture_md():
    order = layers()
    known = sources()
    assert sorted(set(known) - set(order)) == [], "add these to ARCHITECTURE.md's module list"
    assert sorted(set(order) - set(known)) == [], "ARCHITECTURE.md lists modules that do not exist"


def test_no_module_imports_a_higher_layer():
    found = upward_imports()
    unexpected = {k: v for k, v in found.items() if k not in EXCEPTIONS}
    assert unexpected == {}, "imports that point up (importer, imported): (layers)"


def test_every_listed_exception_is_still_needed():
    found = upward_imports()
    assert sorted(set(EXCEPTIONS) - set(found)) == [], "remove these from EXCEPTIONS"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("from ..text import sanitize\n"
                    "def f():\n    from ..views import screen\n    import flowtop.live\n")
    known = {"flowtop.text", "flowtop.views", "flowtop.views.screen", "flowtop.live"}
    assert imports("flowtop.enrich.mod", str(path), known) == {
        "flowtop.text", "flowtop.views.screen", "flowtop.live"}


# --- sizes: modules cut by job, functions short enough to read ---------------------------
MAX_MODULE_LINES = 420
MAX_FUNCTION_LINES = 60
# What may be longer, with why.  The tests fail when one is no longer needed.
LONG_MODULES = {
    "flowtop/netlink/uapi.py":
        "the kernel's constants under their kernel names, one C enum or header after "
        "another: the one place kernel numbers live (ARCHITECTURE.md)",
}
LONG_FUNCTIONS = {
    ("flowtop/cli.py", "define"):
        "argparse: one add_argument per option, in the order --help shows them",
}


def sizes():
    """(module lines {path: n}, function lines {(path, name): n}) over flowtop/."""
    modules, functions = {}, {}
    for name, path in sorted(sources().items()):
        rel = os.path.relpath(path, REPO)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        modules[rel] = text.count("\n")
        for node in ast.walk(ast.parse(text, path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                key = (rel, node.name)
                functions[key] = max(n, functions.get(key, 0))
    return modules, functions


def test_no_module_is_longer_than_420_lines_but_the_listed_ones():
    modules, _ = sizes()
    long = {p: n for p, n in modules.items() if n > MAX_MODULE_LINES}
    assert sorted(set(long) - set(LONG_MODULES)) == [], long
    assert sorted(set(LONG_MODULES) - set(long)) == [], "remove these from LONG_MODULES"


def test_no_function_is_longer_than_60_lines_but_the_listed_ones():
    _, functions = sizes()
    long = {k: n for k, n in functions.items() if n > MAX_FUNCTION_LINES}
    assert sorted(set(long) - set(LONG_FUNCTIONS)) == [], long
    assert sorted(set(LONG_FUNCTIONS) - set(long)) == [], "remove these from LONG_FUNCTIONS"
