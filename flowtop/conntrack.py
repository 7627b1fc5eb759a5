"""The library API's first name: ``from flowtop import conntrack`` (as
appliances and the README wrote it) is ``flowtop.api``, the same module."""

import sys

from . import api

sys.modules[__name__] = api
