"""Exit status 77 (skip) for tests/package only when dpkg-buildpackage is
missing: without it there is no package to test.  Anything else that is
wrong (the package not installed, a file missing from it) fails."""

import shutil
import sys


def pytest_sessionfinish(session, exitstatus):
    # the module skips as a whole: pytest says 5 (nothing collected)
    if shutil.which("dpkg-buildpackage") is None and exitstatus in (0, 5):
        sys.stderr.write("\npackage tests skipped: dpkg-buildpackage is "
                         "not installed (apt-get install dpkg-dev)\n")
        session.exitstatus = 77
