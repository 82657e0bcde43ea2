"""Settings for the test suite: the settings every process reads, in the development/test setting.

The suite never serves real users, so the public development keys are allowed when no key is
configured (a fresh checkout testing against an external DATABASE_URL has no key files). Processes the
tests start (manage.py, runstack) inherit the variable unless a test sets its own environment.
"""

import os

os.environ.setdefault("MET_ALLOW_INSECURE_SECRET", "true")

from config.settings import *  # noqa: F403
