"""The real browser the UI tests drive: system chromium and chromium-driver through selenium."""
import importlib
import os
import shutil

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"


def require_browser(*modules: str) -> None:
    """Skip the calling test module unless selenium, ``modules`` and a system chromium with its driver
    are installed; in CI, fail instead: CI must run the browser tests."""
    missing = None
    for name in ("selenium", *modules):
        try:
            importlib.import_module(name)
        except ImportError:
            missing = f"{name} is not installed (pip install -e '.[test]')"
            break
    if missing is None and not (shutil.which("chromium") and os.path.exists(CHROMEDRIVER)):
        missing = "chromium / chromium-driver are not installed (scripts/setup.sh installs them as root)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {missing}", pytrace=False)
        pytest.skip(missing, allow_module_level=True)
