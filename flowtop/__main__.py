"""``python3 -m flowtop`` and the zipapp entry point."""

if __name__ == "__main__":
    # Ctrl-C quiet from the first line on: before the imports (cli.run repeats it
    # for the zipapp and the console script, which import flowtop.entry first).
    import os
    import _signal as signal  # not signal.py (see sysctl)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
    from flowtop.entry import run
    run()
