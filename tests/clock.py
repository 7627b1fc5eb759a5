"""The test clock: time that moves only when the test moves it."""


class Clock:
    """Call it for the time (``now``, also spelled ``t``); ``wall`` is an
    epoch clock moving with it (``advance`` moves both)."""

    def __init__(self, now=1000.0, wall=1_700_000_000.0):
        self.now = now
        self.wall = wall

    def __call__(self):
        return self.now

    @property
    def t(self):
        return self.now

    @t.setter
    def t(self, value):
        self.now = value

    def advance(self, dt):
        self.now += dt
        self.wall += dt
        return self.now
