"""Mutation testing of the modules that decide facts and verdicts (cosmic-ray).

    python tests/mutation/mutate.py                  # 45 seeded mutants per module
    python tests/mutation/mutate.py --all            # every mutant (hours)
    python tests/mutation/mutate.py --slice          # CI: a few mutants per module
    python tests/mutation/mutate.py --module probes/s7/parse.py --all

``make mutation`` and ``make mutation-slice`` run it. Each module of ``modules.yaml`` is
mutated in a scratch copy of the working tree (never in place): cosmic-ray applies one
mutant at a time and runs that module's tests; a mutant no test notices *survives*.
``equivalent.yaml`` lists survivors that cannot change behaviour, each with the reason;
they count neither as killed nor as survived. The run prints killed/total per module and
every survivor, and exits 1 when a module (or, with ``--slice``, the slice as a whole)
kills less than ``--min`` percent.

The scratch copy imports its own code: its ``otaudit/`` gets symlinks to the top-level
folders (the layout ``setup.py`` maps with package-dir) and goes first on PYTHONPATH, ahead
of the editable install's finder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PACKAGE_FOLDERS = ("collector", "probes", "server", "simulators", "baselines")
# The mutations of the method: flipped comparisons, constants +-1, and/or swapped,
# conditions negated, booleans flipped, loops skipped, + and - swapped, break/continue.
OPERATORS = (
    "core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Eq|NotEq|Lt|LtE|Gt|GtE)",
    "core/NumberReplacer", "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd", "core/AddNot",
    "core/ReplaceTrueWithFalse", "core/ReplaceFalseWithTrue", "core/ZeroIterationForLoop",
    "core/ReplaceBinaryOperator_(Add_Sub|Sub_Add)", "core/ReplaceBreakWithContinue",
    "core/ReplaceContinueWithBreak", "core/ReplaceUnaryOperator_Delete_Not",
)


@dataclass
class Outcome:
    module: str
    killed: int = 0
    survived: list[dict] = field(default_factory=list)
    equivalent: list[dict] = field(default_factory=list)
    other: int = 0  # incompetent: the mutant did not run (e.g. it broke the import)
    seconds: float = 0.0

    @property
    def judged(self) -> int:
        return self.killed + len(self.survived)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.judged if self.judged else 100.0


def scratch_copy(target: Path) -> Path:
    """The working tree (tracked and new files, as they are now) with the package links."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO, capture_output=True,
                           check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / name.decode()
        if source.is_file():
            dest = target / name.decode()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
    for folder in PACKAGE_FOLDERS:
        (target / "otaudit" / folder).symlink_to(Path("..") / folder)
    return target


def run_module(copy: Path, module: str, tests: list[str], *, sample: int | None, seed: int,
               timeout: float, equivalent: list[dict]) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix="otaudit-mut-"))
    config, session = work / "cr.toml", work / "session.sqlite"
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", *tests]
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(' '.join(command))}\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n")
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1",
           "OTAUDIT_SHARED": os.environ.get("OTAUDIT_SHARED", str(REPO.parent / "shared"))}
    started = time.monotonic()
    subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=copy, env=env,
                   check=True, capture_output=True)
    _keep(session, sample, seed, f"{module}:{seed}")
    subprocess.run(["cosmic-ray", "exec", str(config), str(session)], cwd=copy, env=env,
                   check=True, capture_output=True)
    outcome = Outcome(module, seconds=time.monotonic() - started)
    for spec, result in _results(session):
        verdict = (result["test_outcome"] or "").lower()
        if verdict == "killed":
            outcome.killed += 1
        elif verdict == "survived":
            survivor = {**spec, "diff": result["diff"]}
            reason = _equivalent(survivor, equivalent)
            if reason:
                outcome.equivalent.append({**survivor, "reason": reason})
            else:
                outcome.survived.append(survivor)
        else:
            outcome.other += 1
    shutil.rmtree(work, ignore_errors=True)
    return outcome


def _keep(session: Path, sample: int | None, seed: int, salt: str) -> None:
    """Keep the chosen operators, then a seeded sample of ``sample`` mutants.

    The sample is drawn from the mutants in source order (operator, occurrence), not by
    job id: cosmic-ray's job ids are random, so a sample over them changed every run.
    """
    import re

    db = sqlite3.connect(session)
    rows = db.execute("SELECT job_id, operator_name FROM mutation_specs "
                      "ORDER BY operator_name, occurrence").fetchall()
    allowed = [job for job, op in rows if any(re.fullmatch(p, op) for p in OPERATORS)]
    if sample is not None and len(allowed) > sample:
        allowed = random.Random(salt).sample(allowed, sample)
    keep = set(allowed)
    drop = [(job,) for job, _ in rows if job not in keep]
    db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
    db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    db.commit()
    db.close()


def _results(session: Path) -> list[tuple[dict, dict]]:
    db = sqlite3.connect(session)
    rows = db.execute(
        "SELECT s.module_path, s.operator_name, s.occurrence, s.start_pos_row, "
        "s.definition_name, r.test_outcome, r.diff FROM mutation_specs s JOIN work_results r "
        "USING (job_id) ORDER BY s.start_pos_row, s.operator_name, s.occurrence").fetchall()
    db.close()
    return [({"module": m, "operator": op, "occurrence": occ, "line": line,
              "definition": definition},
             {"test_outcome": outcome, "diff": diff}) for m, op, occ, line, definition,
            outcome, diff in rows]


def _equivalent(survivor: dict, known: list[dict]) -> str | None:
    """The reason, when an entry of equivalent.yaml names this mutant (module, definition,
    operator and the changed source line: robust against lines moving)."""
    changed = _changed_line(survivor["diff"])
    mutated = _bare(_changed_line(survivor["diff"], "+"))
    for entry in known:
        if (entry["module"] == survivor["module"] and entry["operator"] == survivor["operator"]
                and entry.get("definition", survivor["definition"]) == survivor["definition"]
                and entry["source"].strip() == changed
                and _bare(entry.get("mutant", mutated)) == mutated):
            return entry["reason"]
    return None


def _bare(line: str) -> str:
    """The line without whitespace: NumberReplacer writes ``[ -1]`` for ``[0]``."""
    return "".join(line.split())


def _changed_line(diff: str, sign: str = "-") -> str:
    """The first line the diff removes (``-``) or adds (``+``), stripped."""
    return next((line[1:].strip() for line in diff.splitlines()
                 if line.startswith(sign) and not line.startswith(sign * 3)), "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", help="only these modules")
    parser.add_argument("--all", action="store_true", help="every mutant, no sample")
    parser.add_argument("--sample", type=int, default=45, help="mutants per module")
    parser.add_argument("--slice", action="store_true",
                        help="CI: --sample 2 per module, judged together")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min", type=float, default=90.0, help="percent killed to pass")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    modules = yaml.safe_load((HERE / "modules.yaml").read_text())["modules"]
    equivalent = yaml.safe_load((HERE / "equivalent.yaml").read_text())["equivalent"] or []
    if args.module:
        unknown = set(args.module) - set(modules)
        if unknown:
            parser.error(f"not in modules.yaml: {', '.join(sorted(unknown))}")
        modules = {m: t for m, t in modules.items() if m in args.module}
    sample = None if args.all else (2 if args.slice else args.sample)
    if shutil.which("cosmic-ray") is None and not Path(sys.executable).with_name(
            "cosmic-ray").exists():
        print("cosmic-ray is not installed: pip install -c constraints.txt -e '.[mutation]'",
              file=sys.stderr)
        return 2
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="otaudit-mutation-") as tmp:
        copy = scratch_copy(Path(tmp) / "tree")
        for module, tests in modules.items():
            outcome = run_module(copy, module, tests, sample=sample, seed=args.seed,
                                 timeout=args.timeout, equivalent=equivalent)
            outcomes.append(outcome)
            print(f"{module:<40} {outcome.killed:>4}/{outcome.judged:<4} killed "
                  f"{outcome.score:5.1f} %  ({len(outcome.equivalent)} equivalent, "
                  f"{outcome.other} not run; {outcome.seconds:.0f} s)", flush=True)
    for outcome in outcomes:
        for s in outcome.survived:
            print(f"  survived {s['module']}:{s['line']} {s['definition']} {s['operator']}: "
                  f"{_changed_line(s['diff'])!r}")
    killed = sum(o.killed for o in outcomes)
    judged = sum(o.judged for o in outcomes)
    total = 100.0 * killed / judged if judged else 100.0
    print(f"all modules: {killed}/{judged} killed ({total:.1f} %)")
    # the slice is judged as a whole: a few mutants per module say little about one module
    failed = total < args.min if args.slice else any(o.score < args.min for o in outcomes)
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ | {"score": o.score} for o in outcomes],
                                        indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
