"""Per task, changed or ok (or failed) in each step of scenario.sh's
output, from drover's JSON events or Ansible's json callback; with
--commands, also the `commands` the task reported:
    python3 summary.py [--commands] OUT"""
import json
import pathlib
import sys

STEPS = ["check-fresh", "apply", "again", "check-converged", "check-delete",
         "delete", "delete-again", "check-reset", "reset", "reset-again"]


def drover(text):
    names, rows = {}, []
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "task_start":
            names[e.get("task_id")] = e.get("task")
        elif e.get("event") == "host_result":
            result = e.get("result") or {}
            rows.append((names.get(e.get("task_id")), e.get("status"),
                         result.get("commands")))
    return rows


def ansible(text):
    text = text[text.find("{"):]
    rows = []
    for play in json.loads(text)["plays"]:
        for t in play["tasks"]:
            for r in t["hosts"].values():
                status = ("failed" if r.get("failed") else
                          "skipped" if r.get("skipped") else
                          "changed" if r.get("changed") else "ok")
                rows.append((t["task"]["name"], status, r.get("commands")))
    return rows


def main(args):
    commands = "--commands" in args
    out = [a for a in args if a != "--commands"][0]
    out = pathlib.Path(out)
    for step in STEPS:
        f = out / f"{step}.json"
        if not f.exists():
            continue
        text = f.read_text()
        try:
            rows = drover(text) if '"event"' in text else ansible(text)
        except (ValueError, KeyError) as e:
            rows = [("(unreadable output)", str(e), None)]
        for name, status, cmds in rows:
            line = f"{step}\t{name}\t{status}"
            if commands:
                line += "\t" + " ; ".join(cmds or [])
            print(line)


main(sys.argv[1:])
