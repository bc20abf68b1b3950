#!/usr/bin/env python3
"""A scripted LLM stand-in: a tiny executable that answers a prompt by rules, so tests of
LLM-backed agents (delegation, hooks, prompt templates, context compaction) run a real
`cli` executor without a model or a vendor.

    python tests/support/scripted_llm.py [--rules FILE] [--state DIR] [--record FILE] PROMPT...

As an S1 `cli` executor template: `python tests/support/scripted_llm.py --rules F {text}`
(or `{prompt}`). The prompt is the positional arguments joined by spaces (stdin when there
are none and stdin is not closed). Options may also come from the environment:
SCRIPTED_LLM_RULES, SCRIPTED_LLM_STATE, SCRIPTED_LLM_RECORD.

The rules file is JSON: `{"rules": [RULE, ...], "default": RULE}` or just `[RULE, ...]`.
The first rule whose `match` (a Python regex, searched in the prompt) matches is used; with
none matching, `default` (by default: echo the prompt). A RULE's keys, applied in order:

- `match`: regex (absent: matches anything);
- `sleep`: seconds to wait before answering (a slow model, a timeout);
- `fail_times` N with `counter` NAME: the first N calls fail (exit 1), later ones go on;
  calls are counted in STATE/NAME.count under a lock, so concurrent workers share it
  (STATE defaults to the rules file's folder);
- `exit`: end with this status after printing `stderr` (a model that always fails);
- `plan`: a list of subtasks (strings or objects), printed as `{"subtasks": [...]}` (a
  planner); a string is printed as is (a planner answering bad JSON);
- `synthesise`: "concat" prints the prompt's non-empty lines joined by " | " after
  "SYNTHESIS:"; "summarise" prints "SUMMARY:" and the first word of each line;
- `answer`: text printed, with `{prompt}`, `{pid}` and `{0}`..`{9}` (the regex's
  groups) replaced; `echo` (true) prints the prompt.

With --record FILE each call appends two JSON lines, {"event": "start"|"stop", "pid",
"ppid", "t" (time.time()), "prompt"}, with O_APPEND, so a test can measure how many calls
ran at once from the calls' own records, not from sleeps.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["answer", "main"]


def _record(path: str | None, event: str, prompt: str) -> None:
    if not path:
        return
    line = json.dumps(
        {
            "event": event,
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "t": time.time(),
            "prompt": prompt,
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _count(state: Path, name: str) -> int:
    """Increment the named counter; the number of calls before this one."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / f"{name}.count", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        before = int(fh.read().strip() or 0)
        fh.seek(0)
        fh.truncate()
        fh.write(str(before + 1))
    return before


def _fill(text: str, prompt: str, groups: tuple[str, ...]) -> str:
    text = text.replace("{prompt}", prompt).replace("{pid}", str(os.getpid()))
    for i, group in enumerate(groups[:10]):
        text = text.replace("{" + str(i) + "}", group or "")
    return text


def answer(rules: Any, prompt: str, state: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) for the prompt under the rules (sleeps as told)."""
    if isinstance(rules, list):
        rules = {"rules": rules}
    chosen, groups = rules.get("default", {"echo": True}), ()
    for rule in rules.get("rules", []):
        found = re.search(rule.get("match", ""), prompt, re.S)
        if found:
            chosen, groups = rule, (found.group(0), *found.groups())
            break
    if chosen.get("sleep"):
        time.sleep(float(chosen["sleep"]))
    if "fail_times" in chosen:
        calls = _count(state, chosen.get("counter", "default"))
        if calls < int(chosen["fail_times"]):
            return 1, "", f"scripted failure {calls + 1} of {chosen['fail_times']}\n"
    if "exit" in chosen:
        return (
            int(chosen["exit"]),
            "",
            _fill(chosen.get("stderr", "scripted failure"), prompt, groups) + "\n",
        )
    if "plan" in chosen:
        plan = chosen["plan"]
        return 0, (plan if isinstance(plan, str) else json.dumps({"subtasks": plan})) + "\n", ""
    mode = chosen.get("synthesise")
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    if mode == "concat":
        return 0, "SYNTHESIS: " + " | ".join(lines) + "\n", ""
    if mode == "summarise":
        return 0, "SUMMARY: " + " ".join(line.split()[0] for line in lines) + "\n", ""
    if "answer" in chosen:
        return 0, _fill(chosen["answer"], prompt, groups) + "\n", ""
    return 0, prompt + "\n", ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a scripted LLM stand-in for tests")
    parser.add_argument("--rules", default=os.environ.get("SCRIPTED_LLM_RULES"))
    parser.add_argument("--state", default=os.environ.get("SCRIPTED_LLM_STATE"))
    parser.add_argument("--record", default=os.environ.get("SCRIPTED_LLM_RECORD"))
    parser.add_argument("prompt", nargs="*")
    args = parser.parse_args(argv)
    if args.prompt:
        prompt = " ".join(args.prompt)
    else:
        try:
            prompt = sys.stdin.read()
        except (OSError, ValueError):
            prompt = ""
    rules: Any = {}
    if args.rules:
        try:
            rules = json.loads(Path(args.rules).read_text())
        except (OSError, ValueError) as exc:
            print(f"scripted_llm: cannot read rules {args.rules}: {exc}", file=sys.stderr)
            return 2
    state = Path(args.state or (Path(args.rules).parent if args.rules else "."))
    _record(args.record, "start", prompt)
    try:
        code, out, err = answer(rules, prompt, state)
    finally:
        _record(args.record, "stop", prompt)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
