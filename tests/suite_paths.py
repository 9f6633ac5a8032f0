"""Where the suite's files are, for tests in any folder of tests/ and the processes they start."""
from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""tests/: the shared helpers (fakes.py, ray_fakes.py, ...) that subprocesses import by bare name via PYTHONPATH."""
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
