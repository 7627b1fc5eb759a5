"""The command's first step (the zipapp, ``python3 -m flowtop``, the console
script): ``--version`` alone answers here, before the option parser and its
modules are imported - 1.9 of a mipsel router's 2.4 s for ``--version``
(argparse, its help formatter's textwrap and shutil, signal, the parser);
anything else goes on to ``cli.run``."""

import sys

from . import __version__


def run():
    if sys.argv[1:] in (["--version"], ["-v"]):
        # what argparse's version action prints
        sys.stdout.write("flowtop %s\n" % __version__)
        return
    from .runtime import start_paused, started
    start_paused()          # the garbage collector, until the run begins (main)
    try:
        from .cli import run as cli_run
        cli_run()
    finally:
        started()           # (a parse error, --help: on again all the same)
