"""Summarize `go test -json` from stdin for run.sh.

Prints one line per test (PASS/FAIL/SKIP, with the skip reason), the whole
output of every failed test, and a closing "N passed, N failed, N skipped"
line; writes the full -v style log to argv[1]. Exits 1 if a test or a package
failed (or none ran).
"""
import json
import sys

log = open(sys.argv[1], "w")
outputs, results, pkg_fail = {}, [], []
for line in sys.stdin:
    try:
        ev = json.loads(line)
    except ValueError:
        log.write(line)
        print(line, end="")
        continue
    test, action = ev.get("Test"), ev.get("Action")
    if action == "output":
        log.write(ev["Output"])
        if test:
            outputs.setdefault(test, []).append(ev["Output"])
        elif ev["Output"].startswith(("FAIL", "panic", "# ")) or "build failed" in ev["Output"]:
            print(ev["Output"], end="")
    elif action in ("pass", "fail", "skip") and test:
        results.append((test, action, ev.get("Elapsed", 0)))
        out = outputs.get(test, [])
        if action == "fail" and "/" not in test:
            print(f"--- FAIL {test} ({ev.get('Elapsed', 0):.1f}s)")
            print("".join(o for o in out if not o.startswith(("=== ", "harness: "))), end="")
        elif action == "skip":
            reason = next((o.strip() for o in out if "_test.go" in o or "harness" in o and ":" in o), "")
            print(f"--- SKIP {test}: {reason}")
        else:
            print(f"--- {action.upper()} {test} ({ev.get('Elapsed', 0):.1f}s)")
    elif action == "fail" and not test:
        pkg_fail.append(ev.get("Package"))
top = [r for r in results if "/" not in r[0]]
n = {a: sum(1 for r in top if r[1] == a) for a in ("pass", "fail", "skip")}
print(f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped")
if pkg_fail:
    print("failed packages: " + ", ".join(pkg_fail))
sys.exit(1 if n["fail"] or pkg_fail or not top else 0)
