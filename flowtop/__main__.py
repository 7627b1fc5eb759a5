"""``python3 -m flowtop`` and the zipapp entry point."""

from flowtop.cli import run

if __name__ == "__main__":
    run()
