"""Settings for the test suite: a throw-away data dir and a fast password hasher."""

import os
import tempfile

os.environ.setdefault("MEMBERHUB_DATA_DIR", tempfile.mkdtemp(prefix="memberhub-test-"))

from memberhub.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HUEY["immediate"] = True  # noqa: F405
