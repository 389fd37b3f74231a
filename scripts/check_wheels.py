"""Do coachd's requirements resolve to binary wheels for every supported Python on x86_64 Linux?

Asks the package index (`pip install --dry-run --only-binary=:all:` for each target), so it is a
make target (`make check-wheels`), not a test: tests never touch the network. PyAudio is left
out: it has no Linux wheel and builds from source against portaudio19-dev.

pip evaluates the markers of dependencies' own requirements for the interpreter running it
(pypa/pip#11664); coachd's requirements are evaluated here for each target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# The oldest glibc among the distributions coachd supports is above 2.28 (Debian 10 has 2.28);
# pip does not expand a manylinux tag to the older ones, so every one is listed.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
BUILT_FROM_SOURCE = {"pyaudio"}
REPO = Path(__file__).resolve().parent.parent


def requirements(python: str, extras: tuple[str, ...]) -> list[str]:
    """coachd's requirements (with `extras`) that apply to `python` on x86_64 Linux."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    environment = default_environment()
    environment.update(
        python_version=python,
        python_full_version=f"{python}.0",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine="x86_64",
        implementation_name="cpython",
    )
    kept = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.name.lower() in BUILT_FROM_SOURCE:
            continue
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            kept.append(str(requirement))
    return kept


def resolve(python: str, wanted: list[str]) -> list[dict[str, str]]:
    """The wheels pip would install for `wanted` on CPython `python`; raises when none fits."""
    abi = "cp" + python.replace(".", "")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--report", str(report), "--only-binary=:all:",
            "--python-version", python, "--implementation", "cp", "--abi", abi,
        ]  # fmt: skip
        for platform in PLATFORMS:
            command += ["--platform", platform]
        done = subprocess.run(command + wanted, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            raise RuntimeError("; ".join(errors) or done.stderr.strip()[-500:])
        installs = json.loads(report.read_text())["install"]
    return [
        {
            "name": item["metadata"]["name"],
            "version": item["metadata"]["version"],
            "wheel": item["download_info"]["url"].rsplit("/", 1)[-1],
        }
        for item in installs
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", choices=PYTHONS, help="default: all")
    parser.add_argument("--verbose", action="store_true", help="list every wheel")
    args = parser.parse_args()
    failures = 0
    for python in args.python or PYTHONS:
        for label, extras in (("coachd", ()), ("coachd[stock,dev]", ("stock", "dev"))):
            wanted = requirements(python, extras)
            try:
                wheels = resolve(python, wanted)
            except RuntimeError as exc:
                failures += 1
                print(f"FAIL  {python:<5} {label:<18} {exc}", flush=True)
                continue
            sources = [w["wheel"] for w in wheels if not w["wheel"].endswith(".whl")]
            if sources:
                failures += 1
                print(f"FAIL  {python:<5} {label:<18} not wheels: {', '.join(sources)}")
                continue
            key = {"numpy", "opencv-contrib-python", "ai-edge-litert", "mediapipe"}
            shown = ", ".join(
                f"{w['name']} {w['version']}" for w in wheels if w["name"].lower() in key
            )
            print(f"ok    {python:<5} {label:<18} {len(wheels)} wheels: {shown}", flush=True)
            if args.verbose:
                for w in wheels:
                    print(f"        {w['wheel']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
