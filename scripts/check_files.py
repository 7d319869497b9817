"""File hygiene for every tracked file: what linters of one language never look at.

Trailing whitespace, a missing or doubled final newline, a leftover merge-conflict
marker, an oversized file and YAML or TOML that does not parse. It only reports, never
rewrites: ``make lint`` and the pre-commit hook run this same script, so a commit and
CI fail on the same lines. Standard library plus PyYAML (already in the dev group), so
it runs offline wherever the venv does.

Usage: ``python scripts/check_files.py [FILE ...]`` (no files: every file git tracks).
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

# Generous for text, small enough that a committed dump, archive or binary fails.
MAX_BYTES = 512 * 1024
CONFLICT_MARKERS = (b"<<<<<<<", b">>>>>>>")
YAML_SUFFIXES = {".yml", ".yaml"}


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607  (git from PATH, as a developer runs it)
        capture_output=True,
        check=True,
    ).stdout
    return [Path(name) for name in listed.decode().split("\0") if name]


def syntax_problem(path: Path, text: str) -> str | None:
    """Why a YAML or TOML file does not parse, or None."""
    try:
        if path.suffix in YAML_SUFFIXES:
            # Kubernetes manifests hold several documents in one file.
            list(yaml.safe_load_all(text))
        elif path.suffix == ".toml":
            tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        return f"does not parse: {' '.join(str(error).split())}"
    return None


def text_problems(path: Path, content: bytes) -> list[str]:
    problems = []
    lines = content.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if line.rstrip(b"\r") != line.rstrip(b"\r").rstrip():
            problems.append(f"{path}:{number}: trailing whitespace")
        if line.startswith(CONFLICT_MARKERS):
            problems.append(f"{path}:{number}: merge-conflict marker")
    if not content.endswith(b"\n"):
        problems.append(f"{path}: no newline at the end of the file")
    elif content.endswith(b"\n\n"):
        problems.append(f"{path}: blank lines at the end of the file")
    try:
        text = content.decode()
    except UnicodeDecodeError:
        return [*problems, f"{path}: not UTF-8"]
    syntax = syntax_problem(path, text)
    return problems if syntax is None else [*problems, f"{path}: {syntax}"]


def file_problems(path: Path) -> list[str]:
    # Symlinks are checked where they point; a deleted-but-tracked file has nothing left.
    if path.is_symlink() or not path.is_file():
        return []
    size = path.stat().st_size
    if size > MAX_BYTES:
        return [f"{path}: {size} bytes, over the {MAX_BYTES}-byte limit for a committed file"]
    content = path.read_bytes()
    if not content or b"\0" in content:  # empty, or binary: no lines to judge
        return []
    return text_problems(path, content)


def main(arguments: list[str]) -> int:
    paths = [Path(argument) for argument in arguments] or tracked_files()
    problems = [problem for path in paths for problem in file_problems(path)]
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
