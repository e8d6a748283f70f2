"""Tests of the helm double: the rules of helm 3 it must keep (run by scripts/test)."""

import json
import os
import subprocess
import tempfile
import unittest

HELM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helm")


class HelmDouble(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        net = os.path.join(self.tmp.name, "net")
        os.makedirs(net)
        with open(os.path.join(net, "index.json"), "w") as f:
            json.dump({"https://airflow.apache.org": {"airflow": {"1.14.0": "2.8.4",
                                                                  "1.15.0": "2.9.3"}}}, f)
        self.env = dict(os.environ, HOME=self.tmp.name, HELM_DOUBLE_NETWORK=net,
                        HELM_DOUBLE_STATE=os.path.join(self.tmp.name, "state.json"))

    def tearDown(self):
        self.tmp.cleanup()

    def helm(self, *args, stdin=""):
        return subprocess.run([HELM, *args], input=stdin, capture_output=True, text=True,
                              env=self.env)

    def ok(self, proc):
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def failed(self, proc, text):
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn(text, proc.stderr)

    def test_first_line_says_it_is_a_double(self):
        with open(HELM) as f:
            f.readline()
            self.assertIn("TEST DOUBLE", f.readline())

    def test_repo_add_remove_and_list(self):
        self.failed(self.helm("repo", "list", "-o", "json"), "no repositories to show")
        self.failed(self.helm("repo", "add", "x", "https://nowhere.example"),
                    "is not a valid chart repository or cannot be reached")
        self.ok(self.helm("repo", "add", "apache-airflow", "https://airflow.apache.org"))
        again = self.ok(self.helm("repo", "add", "apache-airflow", "https://airflow.apache.org"))
        self.assertIn("already exists with the same configuration, skipping", again.stdout)
        self.failed(self.helm("repo", "add", "apache-airflow", "https://other.example"),
                    "repository name (apache-airflow) already exists")
        repos = json.loads(self.ok(self.helm("repo", "list", "-o", "json")).stdout)
        self.assertEqual(repos, [{"name": "apache-airflow", "url": "https://airflow.apache.org"}])
        self.ok(self.helm("repo", "remove", "apache-airflow"))
        self.failed(self.helm("repo", "remove", "apache-airflow"),
                    'no repo named "apache-airflow" found')

    def test_release_names_follow_helm(self):
        self.ok(self.helm("repo", "add", "a", "https://airflow.apache.org"))
        for bad in ("Airflow", "air_flow", "x-", "a" * 54):
            self.failed(self.helm("upgrade", "--install", bad, "a/airflow"),
                        "invalid release name")
        self.ok(self.helm("upgrade", "--install", "a" * 53, "a/airflow"))

    def test_upgrade_install_list_values_and_uninstall(self):
        h = self.helm
        self.failed(h("upgrade", "--install", "airflow", "a/airflow"), "repo a not found")
        self.ok(h("repo", "add", "a", "https://airflow.apache.org"))
        self.failed(h("upgrade", "--install", "airflow", "a/nope"), 'chart "nope" matching')
        self.failed(h("upgrade", "--install", "airflow", "a/airflow", "--version", "9.9.9"),
                    'chart "airflow" matching 9.9.9 not found in a index')
        self.failed(h("upgrade", "--install", "airflow", "a/airflow", "-n", "airflow"),
                    'namespaces "airflow" not found')
        self.failed(h("upgrade", "airflow", "a/airflow"), '"airflow" has no deployed releases')
        values = os.path.join(self.tmp.name, "v.json")
        with open(values, "w") as f:
            json.dump({"executor": "KubernetesExecutor", "web": {"replicas": 1}}, f)
        self.ok(h("upgrade", "--install", "airflow", "a/airflow", "-n", "airflow",
                  "--create-namespace", "--version", "1.14.0", "-f", values, "-f", "-",
                  stdin='{"web": {"port": 8080}}'))
        rels = json.loads(self.ok(h("list", "-o", "json", "-n", "airflow")).stdout)
        self.assertEqual(len(rels), 1)
        self.assertEqual({k: rels[0][k] for k in ("name", "namespace", "revision", "status",
                                                   "chart", "app_version")},
                         {"name": "airflow", "namespace": "airflow", "revision": "1",
                          "status": "deployed", "chart": "airflow-1.14.0",
                          "app_version": "2.8.4"})
        self.assertEqual(json.loads(self.ok(h("list", "-o", "json")).stdout), [])
        self.assertEqual(len(json.loads(self.ok(h("list", "-A", "-o", "json")).stdout)), 1)
        got = json.loads(self.ok(h("get", "values", "airflow", "-n", "airflow", "-o",
                                   "json")).stdout)
        self.assertEqual(got, {"executor": "KubernetesExecutor",
                               "web": {"replicas": 1, "port": 8080}})
        self.assertIn("name: airflow\nversion: 1.15.0", self.ok(h("show", "chart", "a/airflow")).stdout)
        self.assertIn("version: 1.14.0", self.ok(h("show", "chart", "a/airflow", "--version",
                                                   "1.14.0")).stdout)
        self.failed(h("install", "airflow", "a/airflow", "-n", "airflow"),
                    "cannot re-use a name that is still in use")
        self.ok(h("upgrade", "--install", "airflow", "a/airflow", "-n", "airflow"))
        rels = json.loads(self.ok(h("list", "-o", "json", "-n", "airflow")).stdout)
        self.assertEqual((rels[0]["revision"], rels[0]["chart"]), ("2", "airflow-1.15.0"))
        self.ok(h("uninstall", "airflow", "-n", "airflow"))
        self.failed(h("uninstall", "airflow", "-n", "airflow"),
                    "Release not loaded: airflow: release: not found")

    def test_local_chart_directories(self):
        chart = os.path.join(self.tmp.name, "mychart")
        os.makedirs(chart)
        with open(os.path.join(chart, "Chart.yaml"), "w") as f:
            f.write("apiVersion: v2\nname: mychart\nversion: 0.1.0\nappVersion: \"1.0\"\n")
        self.ok(self.helm("upgrade", "--install", "mine", chart))
        rels = json.loads(self.ok(self.helm("list", "-o", "json")).stdout)
        self.assertEqual(rels[0]["chart"], "mychart-0.1.0")
        self.failed(self.helm("upgrade", "--install", "x", "/no/such/chart"), "not found")


if __name__ == "__main__":
    unittest.main()
