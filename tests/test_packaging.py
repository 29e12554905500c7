"""The Astro image's inputs: its Airflow is the pinned one and it ships no dev code.

No container runtime here, so the image itself is not built; these check what decides it.
"""

import ast
import re
import subprocess
from fnmatch import fnmatch
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).parents[1]
# Astro Runtime build → the Airflow it contains (Astronomer's runtime catalog). Add a row when
# the Dockerfile moves to another build.
RUNTIME_AIRFLOW = {"3.3-8": "3.3.2"}
DEV_ONLY = ("dev/", "tests/", "bench/", "scripts/", ".local/", ".venv/")


def pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    found = [re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip()) for line in lines]
    return {m.group(1).lower(): m.group(2) for m in found if m}


def shipped_files() -> list[str]:
    """Tracked files the Docker build context keeps after .dockerignore (its patterns as used
    there: a folder, a file, or `**/` at any depth)."""
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled here"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in patterns:
            if pattern.startswith("**/"):
                if any(fnmatch(part, pattern[3:]) for part in parts):
                    return True
            elif any(fnmatch(prefix, pattern) for prefix in prefixes):
                return True
        return False

    return [path for path in files if not ignored(path)]


def test_every_requirement_is_pinned_and_is_what_the_tests_run_on():
    requirements = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert len(requirements) == len(pins()), "every requirement needs an exact == pin"
    for name, pinned in pins().items():
        assert version(name) == pinned, name


def test_the_image_is_the_astro_runtime_of_the_pinned_airflow():
    (base,) = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    found = re.fullmatch(
        r"quay\.io/astronomer/astro-runtime:(\d+\.\d+-\d+)(?:-python-3\.\d+)?", base
    )
    assert found, base
    assert RUNTIME_AIRFLOW[found.group(1)] == pins()["apache-airflow"]


def test_the_image_ships_the_project_and_no_dev_code():
    shipped = shipped_files()
    assert not [path for path in shipped if path.startswith(DEV_ONLY)]
    for needed in ("dags/", "plugins/hubspot_provider/", "include/consent_sync/sql/"):
        assert any(path.startswith(needed) for path in shipped), needed
    for needed in ("requirements.txt", "packages.txt", "Dockerfile"):
        assert needed in shipped


def test_what_ships_imports_nothing_that_does_not():
    for path in shipped_files():
        if not path.endswith(".py"):
            continue
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in ("dev", "tests", "bench", "scripts"), (path, name)
