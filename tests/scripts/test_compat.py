"""Self-test of scripts/compat's pure parts: tagging skip-listed tasks in a
copy of a target, folding events into task outcomes, aligning drover's
tasks with the control's.

    python3 -m unittest -v tests/scripts/test_compat.py

No root, no lab, no network.
"""

import importlib.machinery
import importlib.util
import os
import tempfile
import textwrap
import unittest
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_loader = importlib.machinery.SourceFileLoader("compat", os.path.join(ROOT, "scripts", "compat"))
_spec = importlib.util.spec_from_loader("compat", _loader)
compat = importlib.util.module_from_spec(_spec)
_loader.exec_module(compat)

try:
    import yaml
except ImportError:  # the suite itself re-runs under its venv, which has it
    yaml = None


def host(task_id, status, ignored=False, msg=None):
    return {"event": "host_result", "task_id": task_id, "host": "testhost", "status": status,
            "ignored": ignored, "msg": msg}


def start(task_id, name):
    return {"event": "task_start", "task_id": task_id, "task": name}


@unittest.skipIf(yaml is None, "needs PyYAML")
class TagTask(unittest.TestCase):
    def tagged(self, text, name):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "main.yml"
            p.write_text(textwrap.dedent(text))
            n = compat.tag_task(p, name)
            return n, p.read_text()

    def tasks(self, text):
        return yaml.safe_load(text)

    def test_a_task_without_tags_gets_the_skip_tag_and_nothing_else_changes(self):
        n, out = self.tagged("""\
            - name: keep
              command: "true"
            # a comment
            - name: drop me
              command: "false"
            """, "drop me")
        self.assertEqual(n, 1)
        self.assertIn("# a comment", out)
        t = self.tasks(out)
        self.assertNotIn("tags", t[0])
        self.assertEqual(t[1]["tags"], ["compat_skip"])
        self.assertEqual(t[1]["command"], "false")

    def test_tasks_of_a_module_are_tagged_named_or_not(self):
        n, out = self.tagged("""\
            - copy:
                dest: /tmp/x
            - shell_no_failed:
                cmd: exit 1
              register: r
            - name: named
              shell_no_failed: exit 2
            """, "module:shell_no_failed")
        self.assertEqual(n, 2)
        t = self.tasks(out)
        self.assertNotIn("tags", t[0])
        self.assertEqual(t[1]["tags"], ["compat_skip"])
        self.assertEqual(t[1]["register"], "r")
        self.assertEqual(t[2]["tags"], ["compat_skip"])

    def test_an_unnamed_task_is_tagged_by_its_text_and_only_it(self):
        n, out = self.tagged("""\
            - assert:
                that:
                  - x is defined
            - block:
                - assert:
                    that:
                      - y is tagged_with("T")
                - name: named
                  assert:
                    that: y is tagged_with("T")
            """, 'text:tagged_with("T")')
        self.assertEqual(n, 2)
        t = self.tasks(out)
        self.assertNotIn("tags", t[0])
        self.assertNotIn("tags", t[1])
        self.assertEqual(t[1]["block"][0]["tags"], ["compat_skip"])
        self.assertEqual(t[1]["block"][1]["tags"], ["compat_skip"])
        self.assertEqual(t[1]["block"][1]["assert"], {"that": 'y is tagged_with("T")'})

    def test_existing_tags_in_all_three_spellings_keep_theirs(self):
        _, out = self.tagged("""\
            - block:
                - name: a
                  debug: msg=a
                  tags: x
                - name: a
                  debug: msg=b
                  tags: [x, y]
                - name: a
                  tags:
                    - z
                  debug: msg=c
            """, "a")
        block = self.tasks(out)[0]["block"]
        self.assertEqual(block[0]["tags"], ["compat_skip", "x"])
        self.assertEqual(block[1]["tags"], ["compat_skip", "x", "y"])
        self.assertEqual(block[2]["tags"], ["compat_skip", "z"])

    def test_a_multi_line_name_is_tagged_after_its_value(self):
        _, out = self.tagged("""\
            - name: >-
                long
                name
              debug: msg=x
            """, "long name")
        self.assertEqual(self.tasks(out)[0]["tags"], ["compat_skip"])

    def test_star_tags_every_top_level_task_named_or_not(self):
        n, out = self.tagged("""\
            - name: a
              debug: msg=a
            - command: "true"
              register: r
            """, "*")
        self.assertEqual(n, 2)
        t = self.tasks(out)
        self.assertEqual([x["tags"] for x in t], [["compat_skip"], ["compat_skip"]])
        self.assertEqual(t[1]["command"], "true")

    def test_a_name_that_is_not_there_tags_nothing(self):
        n, _ = self.tagged("- name: a\n  debug: msg=a\n", "b")
        self.assertEqual(n, 0)


class Outcomes(unittest.TestCase):
    def test_loop_items_fold_and_role_prefixes_drop(self):
        events = [
            start(1, "r : loop"), host(1, "ok"), host(1, "changed"),
            start(2, "ansible.builtin.debug"), host(2, "skipped"),
            start(3, "r : bad"), host(3, "failed", ignored=True, msg="rc 1"),
            start(4, "include"),  # no result: left out
            start(5, "boom"), host(5, "ok"), host(5, "failed", msg="boom"),
        ]
        self.assertEqual(compat.outcomes(events), [
            ["loop", "changed", None], ["debug", "skipped", None],
            ["bad", "ignored", "rc 1"], ["boom", "failed", "boom"]])


class Compare(unittest.TestCase):
    control = [["a", "ok", None], ["b", "ignored", None], ["c", "changed", None]]

    def test_same_kind_of_outcome_passes(self):
        drover = [["a", "changed", None], ["b", "failed", "x"], ["c", "skipped", None]]
        self.assertEqual(compat.compare(self.control, drover, 0, ""), (3, 3, None))

    def test_first_failure_names_the_task_and_drover_message(self):
        drover = [["a", "failed", "nope"], ["b", "failed", None]]
        run, ok, first = compat.compare(self.control, drover, 2, "")
        self.assertEqual((run, ok), (2, 1))
        self.assertEqual(first["task"], "a")
        self.assertIn("nope", first["msg"])

    def test_a_load_error_is_the_first_failure_of_a_target_that_ran_nothing(self):
        run, ok, first = compat.compare(self.control, [], 1, "play.yml:3:5: unknown module")
        self.assertEqual((run, ok), (0, 0))
        self.assertIn("unknown module", first["msg"])

    def test_crash_exit_codes(self):
        self.assertTrue(compat.crashed(101))
        self.assertTrue(compat.crashed(-11))
        self.assertFalse(compat.crashed(2))
        self.assertFalse(compat.crashed("timeout"))


class Names(unittest.TestCase):
    def test_a_temporary_directory_in_a_name_does_not_tell_runs_apart(self):
        a = compat.norm_name("Create /tmp/ansible.nilpodiu.test/exclude directory")
        b = compat.norm_name("Create /tmp/ansible.Ab3_x9Zq.test/exclude directory")
        self.assertEqual(a, b)
        self.assertEqual(compat.norm_name("role : ansible.builtin.copy"), "copy")


class Filters(unittest.TestCase):
    def test_play_has_one_ignored_debug_per_expression(self):
        play = compat.filter_play(["'a' | upper", "x.y"])
        self.assertEqual(play.count("- debug:"), 2)
        self.assertEqual(play.count("ignore_errors: true"), 2)
        self.assertIn('msg: "{{ (\'a\' | upper) | to_json }}"', play)

    def test_outcomes_are_rendered_json_or_none_for_a_failure(self):
        ansible = [{"event": "task_start", "task_id": 1, "task": "debug"},
                   {"event": "host_result", "status": "ok", "msg": '"A"'},
                   {"event": "host_result", "status": "failed", "msg": "boom"}]
        drover = [{"event": "host_result", "status": "ok", "failed": False,
                   "result": {"msg": '"A"'}, "msg": None},
                  {"event": "host_result", "status": "failed", "failed": True,
                   "result": {"msg": "boom"}, "msg": "boom"}]
        self.assertEqual(compat.filter_outcomes(ansible), ['"A"', None])
        self.assertEqual(compat.filter_outcomes(drover), ['"A"', None])


class Targets(unittest.TestCase):
    def lists(self, text):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "targets.txt"
            p.write_text(textwrap.dedent(text))
            return compat.read_targets(p), compat.read_marks(p)

    def test_marks_say_where_a_target_runs_and_are_not_what_it_covers(self):
        covers, marks = self.lists("""\
            # comment
            copy      copy
            iptables  iptables @netns  # firewall
            """)
        self.assertEqual(covers, {"copy": ["copy"], "iptables": ["iptables"]})
        self.assertEqual(marks, {"copy": set(), "iptables": {"@netns"}})

    def test_an_unknown_mark_is_a_harness_error(self):
        with self.assertRaises(compat.HarnessError):
            self.lists("iptables iptables @netsn\n")

    def test_the_repository_list_parses(self):
        marks = compat.read_marks()
        self.assertIn("@netns", marks["iptables"])


if __name__ == "__main__":
    unittest.main()
