"""Tests of the k3s double (tests/doubles/k3s/k3s and install.sh).

Run: python3 -m unittest tests/doubles/k3s/test_k3s.py  (no root needed).
Each node is a temporary root ($K3S_DOUBLE_ROOT); the nodes of one test share
a network directory through a symlink, as lab nodes share a bind mount.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
K3S = os.path.join(HERE, "k3s")
INSTALL = os.path.join(HERE, "install.sh")
SERVER_URL = "https://127.0.2.1:6443"


class Node:
    """One lab node: its own root, the lab's shared network directory."""

    def __init__(self, lab, name, address):
        self.root = os.path.join(lab.tmp, name)
        self.name, self.address = name, address
        for d in ["etc/drover-lab", "usr/local/bin", "etc/systemd/system", "etc/rancher/k3s",
                  "var/lib/drover-lab"]:
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        os.symlink(lab.network, self.path("/var/lib/drover-lab/network"))
        self.write("/etc/drover-lab/node.json", json.dumps({"name": name, "address": address}))
        shutil.copy(K3S, self.path("/usr/local/bin/k3s"))
        os.symlink("k3s", self.path("/usr/local/bin/kubectl"))

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def write(self, p, text):
        with open(self.path(p), "w") as f:
            f.write(text)

    def read(self, p):
        with open(self.path(p)) as f:
            return f.read()

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("K3S_", "KUBECONFIG"))}
        env.update(K3S_DOUBLE_ROOT=self.root, **extra)
        return env

    def run(self, prog, *args, stdin=None, **env):
        return subprocess.run([self.path("/usr/local/bin/" + prog), *args], input=stdin,
                              capture_output=True, text=True, env=self.env(**env))

    def start(self, role, config, **env):
        self.write("/etc/rancher/k3s/config.yaml", config)
        return self.run("k3s", role, DROVER_LAB_ONESHOT="1", **env)

    def kubectl(self, *args, stdin=None):
        if stdin is not None and not isinstance(stdin, str):
            stdin = json.dumps(stdin)
        return self.run("kubectl", *args, stdin=stdin)


class K3sTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="k3s-double-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.network = os.path.join(self.tmp, "network")
        os.makedirs(self.network)

    def node(self, name, address):
        return Node(self, name, address)

    def ok(self, proc):
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def failed(self, proc, pattern):
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertRegex(proc.stderr, pattern)
        return proc

    def cluster(self):
        """A started server pi-master and its token file on the agents' side."""
        master = self.node("pi-master", "127.0.2.1")
        self.ok(master.start("server", "write-kubeconfig-mode: \"0600\"\nnode-label:\n"
                             "  - drover.dev/role=management\n"))
        return master, master.read("/var/lib/rancher/k3s/server/token").strip()

    def join(self, name, address, token, labels=("drover.dev/role=worker",)):
        agent = self.node(name, address)
        agent.write("/etc/rancher/k3s/token", token + "\n")
        cfg = f"server: {SERVER_URL}\ntoken-file: /etc/rancher/k3s/token\nnode-label:\n"
        cfg += "".join(f"  - {label}\n" for label in labels)
        return agent, agent.start("agent", cfg)


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


class VersionAndDaemon(K3sTestCase):
    def test_version_is_the_pinned_one_unless_overridden(self):
        n = self.node("pi-master", "127.0.2.1")
        self.assertTrue(self.ok(n.run("k3s", "--version")).stdout
                        .startswith("k3s version v1.31.4+k3s1 ("))
        out = self.ok(n.run("k3s", "--version", K3S_DOUBLE_VERSION="v1.30.0+k3s1")).stdout
        self.assertIn("v1.30.0+k3s1", out)

    def test_refuses_to_run_as_a_daemon(self):
        n = self.node("pi-master", "127.0.2.1")
        self.failed(n.run("k3s", "server"), "cannot run .* as a daemon")

    def test_first_line_says_test_double(self):
        for f in (K3S, INSTALL):
            with open(f) as fh:
                self.assertIn("TEST DOUBLE", fh.read().splitlines()[1])


class Install(K3sTestCase):
    def setUp(self):
        super().setUp()
        self.n = self.node("pi-master", "127.0.2.1")
        bindir = os.path.join(self.tmp, "fakebin")
        os.makedirs(bindir)
        self.calls = os.path.join(self.tmp, "systemctl.calls")
        with open(os.path.join(bindir, "systemctl"), "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> {self.calls}\n')
        os.chmod(os.path.join(bindir, "systemctl"), 0o755)
        self.path = bindir + ":" + os.environ["PATH"]

    def install(self, **env):
        return subprocess.run(["sh", INSTALL], capture_output=True, text=True,
                              env=self.n.env(PATH=self.path, INSTALL_K3S_SKIP_DOWNLOAD="true",
                                             INSTALL_K3S_VERSION="v1.31.4+k3s1", **env))

    def systemctl_calls(self):
        with open(self.calls) as f:
            calls = f.read().splitlines()
        os.remove(self.calls)
        return calls

    def test_server_install_writes_unit_links_and_starts_once(self):
        self.ok(self.install(INSTALL_K3S_EXEC="server --disable traefik"))
        unit = self.n.read("/etc/systemd/system/k3s.service")
        self.assertIn("ExecStart=/usr/local/bin/k3s server --disable traefik\n", unit)
        self.assertIn("EnvironmentFile=-/etc/systemd/system/k3s.service.env", unit)
        self.assertEqual(mode(self.n.path("/etc/systemd/system/k3s.service.env")), 0o600)
        for cmd in ("kubectl", "crictl", "ctr"):
            self.assertEqual(os.readlink(self.n.path("/usr/local/bin/" + cmd)), "k3s")
        self.assertTrue(os.access(self.n.path("/usr/local/bin/k3s-uninstall.sh"), os.X_OK))
        self.assertEqual(self.systemctl_calls(),
                         ["enable k3s.service", "daemon-reload", "restart k3s.service"])
        again = self.ok(self.install(INSTALL_K3S_EXEC="server --disable traefik"))
        self.assertIn("No change detected so skipping service start", again.stdout)
        self.assertNotIn("restart k3s.service", self.systemctl_calls())

    def test_agent_install_puts_k3s_vars_in_the_env_file(self):
        self.ok(self.install(INSTALL_K3S_EXEC="agent", K3S_URL=SERVER_URL,
                             K3S_TOKEN_FILE="/etc/rancher/k3s/token"))
        env = self.n.read("/etc/systemd/system/k3s-agent.service.env")
        self.assertIn(f"K3S_URL={SERVER_URL}\n", env)
        self.assertIn("K3S_TOKEN_FILE=/etc/rancher/k3s/token\n", env)
        self.assertIn("ExecStart=/usr/local/bin/k3s agent\n",
                      self.n.read("/etc/systemd/system/k3s-agent.service"))
        self.assertIn("restart k3s-agent.service", self.systemctl_calls())

    def test_agent_without_token_and_missing_binary_fail(self):
        self.failed(self.install(K3S_URL=SERVER_URL), "K3S_TOKEN, K3S_TOKEN_FILE")
        os.remove(self.n.path("/usr/local/bin/k3s"))
        self.failed(self.install(), "Executable k3s binary not found")

    def test_uninstall_removes_what_install_wrote(self):
        self.ok(self.install(INSTALL_K3S_EXEC="server"))
        subprocess.run(["sh", self.n.path("/usr/local/bin/k3s-uninstall.sh")],
                       capture_output=True, env=self.n.env(PATH=self.path), check=True)
        for p in ("/etc/systemd/system/k3s.service", "/usr/local/bin/k3s",
                  "/usr/local/bin/kubectl", "/usr/local/bin/k3s-uninstall.sh"):
            self.assertFalse(os.path.lexists(self.n.path(p)), p)


class ServerAndAgents(K3sTestCase):
    def test_kubelet_refuses_node_role_labels_at_registration(self):
        master, token = self.cluster()
        _, proc = self.join("pi-worker-01", "127.0.2.2", token,
                            labels=("node-role.kubernetes.io/airflow=scheduler-1",))
        self.failed(proc, r"unknown 'kubernetes.io' or 'k8s.io' labels specified with "
                          r"--node-labels: \[node-role.kubernetes.io/airflow\]")
        _, proc = self.join("pi-worker-02", "127.0.2.3", token,
                            labels=("node.kubernetes.io/pool=a", "drover.dev/airflow-role=x"))
        self.ok(proc)

    def test_server_start_writes_token_kubeconfig_and_registers_node(self):
        master, token = self.cluster()
        self.assertRegex(token, r"^K10[0-9a-f]{64}::server:[0-9a-f]{32}$")
        self.assertEqual(mode(master.path("/var/lib/rancher/k3s/server/token")), 0o600)
        self.assertEqual(mode(master.path("/etc/rancher/k3s/k3s.yaml")), 0o600)
        self.assertEqual(mode(master.path("/etc/rancher/node/password")), 0o600)
        node = json.loads(self.ok(master.kubectl("get", "node", "pi-master", "-o", "json")).stdout)
        labels = node["metadata"]["labels"]
        self.assertEqual(labels["drover.dev/role"], "management")
        self.assertEqual(labels["node-role.kubernetes.io/control-plane"], "true")
        self.assertEqual(node["status"]["nodeInfo"]["kubeletVersion"], "v1.31.4+k3s1")
        self.ok(master.kubectl("-n", "kube-system", "get", "secret",
                               "pi-master.node-password.k3s", "-o", "json"))
        # a restart keeps the token and the kubeconfig
        kubeconfig = master.read("/etc/rancher/k3s/k3s.yaml")
        self.assertIn("server: https://127.0.0.1:6443", kubeconfig)
        self.ok(master.start("server", ""))
        self.assertEqual(master.read("/var/lib/rancher/k3s/server/token").strip(), token)
        self.assertEqual(master.read("/etc/rancher/k3s/k3s.yaml"), kubeconfig)

    def test_agent_needs_a_running_server_and_the_right_token(self):
        _, err = self.join("pi-worker-01", "127.0.2.2", "K10" + "0" * 64 + "::server:x")
        self.failed(err, "connection refused")
        master, token = self.cluster()
        _, wrong = self.join("pi-worker-02", "127.0.2.3", token[:-4] + "beef")
        self.failed(wrong, "401 Unauthorized")
        _, wrong_ca = self.join("pi-worker-03", "127.0.2.4", "K10" + "0" * 64 + token[67:])
        self.failed(wrong_ca, "CA hash does not match")
        _, good = self.join("pi-worker-04", "127.0.2.5", token)
        self.ok(good)
        _, short = self.join("pi-worker-05", "127.0.2.6", token.split("::server:")[1])
        self.ok(short)
        nodes = json.loads(self.ok(master.kubectl("get", "nodes", "-o", "json")).stdout)
        self.assertEqual(sorted(n["metadata"]["name"] for n in nodes["items"]),
                         ["pi-master", "pi-worker-04", "pi-worker-05"])
        worker = [n for n in nodes["items"] if n["metadata"]["name"] == "pi-worker-04"][0]
        self.assertEqual(worker["metadata"]["labels"]["drover.dev/role"], "worker")
        self.failed(master.kubectl("get", "node", "pi-worker-02"),
                    r'Error from server \(NotFound\): nodes "pi-worker-02" not found')

    def test_agents_joining_at_once_all_register(self):
        master, token = self.cluster()
        procs = []
        for i in range(1, 8):
            agent = self.node(f"pi-worker-0{i}", f"127.0.2.{i + 1}")
            agent.write("/etc/rancher/k3s/config.yaml", f"server: {SERVER_URL}\ntoken: {token}\n")
            procs.append(subprocess.Popen([agent.path("/usr/local/bin/k3s"), "agent"],
                                          env=agent.env(DROVER_LAB_ONESHOT="1"),
                                          stderr=subprocess.DEVNULL))
        self.assertEqual([p.wait() for p in procs], [0] * 7)
        # `k3s kubectl` is kubectl too; short flags may be glued to their value
        names = self.ok(master.run("k3s", "kubectl", "get", "nodes", "-oname")).stdout.split()
        self.assertEqual(len(names), 8)
        self.assertEqual(names[0], "node/pi-master")

    def test_node_labels_apply_only_when_the_node_is_created(self):
        master, token = self.cluster()
        agent, proc = self.join("pi-worker-01", "127.0.2.2", token, ["a=1"])
        self.ok(proc)
        cfg = agent.read("/etc/rancher/k3s/config.yaml").replace("a=1", "a=2")
        self.ok(agent.start("agent", cfg))
        node = json.loads(master.kubectl("get", "node", "pi-worker-01", "-o", "json").stdout)
        self.assertEqual(node["metadata"]["labels"]["a"], "1")

    def test_reinstalled_agent_is_rejected_until_node_and_secret_are_deleted(self):
        master, token = self.cluster()
        agent, proc = self.join("pi-worker-01", "127.0.2.2", token)
        self.ok(proc)
        os.remove(agent.path("/etc/rancher/node/password"))  # the OS was reinstalled
        cfg = agent.read("/etc/rancher/k3s/config.yaml")
        self.failed(agent.start("agent", cfg), "Node password rejected, duplicate hostname or "
                    "contents of '/etc/rancher/node/password' may not match server node-passwd")
        self.assertEqual(self.ok(master.kubectl("delete", "node", "pi-worker-01")).stdout,
                         'node "pi-worker-01" deleted\n')
        self.failed(agent.start("agent", cfg), "Node password rejected")
        self.ok(master.kubectl("-n", "kube-system", "delete", "secret",
                               "pi-worker-01.node-password.k3s"))
        self.ok(agent.start("agent", cfg))
        self.failed(master.kubectl("delete", "node", "nope"), 'nodes "nope" not found')
        self.ok(master.kubectl("delete", "node", "nope", "--ignore-not-found"))

    def test_kubeconfig_unreadable_fails_like_kubectl(self):
        if os.geteuid() == 0:
            self.skipTest("root reads any file")
        master, _ = self.cluster()
        os.chmod(master.path("/etc/rancher/k3s/k3s.yaml"), 0)
        self.failed(master.kubectl("get", "nodes"),
                    r'error: error loading config file "/etc/rancher/k3s/k3s.yaml": '
                    r"open /etc/rancher/k3s/k3s.yaml: permission denied")
        agent = self.node("pi-worker-01", "127.0.2.2")
        self.failed(agent.kubectl("get", "nodes"), "localhost:8080 was refused")


def obj(kind, name, ns=None, api="v1", **rest):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": md, **rest}


def deployment(name, ns, pod_spec, annotations=None, kind="Deployment"):
    d = obj(kind, name, ns, "batch/v1" if kind == "Job" else "apps/v1",
            spec={"template": {"spec": {"containers": [{"name": "c", "image": "x"}],
                                        **pod_spec}}})
    if kind != "Job":
        d["spec"]["replicas"] = 2
    if annotations:
        d["metadata"]["annotations"] = annotations
    return d


class Apply(K3sTestCase):
    def setUp(self):
        super().setUp()
        self.master, _ = self.cluster()

    def apply(self, *objs):
        return self.master.kubectl("apply", "-f", "-",
                                   stdin={"apiVersion": "v1", "kind": "List", "items": list(objs)})

    def live(self, o):
        proc = self.ok(self.master.kubectl("get", "-f", "-", "-o", "json", "--ignore-not-found",
                                           stdin=o))
        return json.loads(proc.stdout) if proc.stdout else None

    def test_missing_namespace_is_rejected(self):
        self.failed(self.apply(obj("ConfigMap", "c", "airflow")),
                    r'Error from server \(NotFound\): error when creating "STDIN": '
                    r'namespaces "airflow" not found')

    def test_dangling_references_are_rejected_unless_optional(self):
        vol = lambda **v: {"volumes": [{"name": "v", **v}]}
        env = lambda **ref: {"containers": [{"name": "c", "env": [
            {"name": "E", "valueFrom": ref}]}]}
        cases = [
            (vol(configMap={"name": "cm"}), 'configmaps "cm" not found'),
            (vol(secret={"secretName": "s"}), 'secrets "s" not found'),
            (vol(persistentVolumeClaim={"claimName": "pvc"}),
             'persistentvolumeclaims "pvc" not found'),
            ({"serviceAccountName": "airflow"}, 'serviceaccounts "airflow" not found'),
            ({"initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s2"}}]}]},
             'secrets "s2" not found'),
            (env(configMapKeyRef={"name": "cm2", "key": "k"}), 'configmaps "cm2" not found'),
        ]
        for spec, message in cases:
            self.failed(self.apply(deployment("web", "default", spec)), message)
        self.ok(self.apply(deployment("web", "default", {
            **vol(configMap={"name": "cm", "optional": True}), "serviceAccountName": "default"})))
        self.failed(self.apply(obj("PersistentVolumeClaim", "data", "default",
                                   spec={"volumeName": "pv1"})), 'persistentvolumes "pv1"')
        self.failed(self.apply(obj("RoleBinding", "rb", "default", "rbac.authorization.k8s.io/v1",
                                   roleRef={"kind": "Role", "name": "r"})),
                    r'roles.rbac.authorization.k8s.io "r" not found')

    def test_apply_in_order_succeeds_and_is_logged(self):
        objs = [obj("Namespace", "airflow"), obj("ConfigMap", "cfg", "airflow", data={"a": "1"}),
                obj("ServiceAccount", "airflow", "airflow"),
                deployment("web", "airflow", {"serviceAccountName": "airflow", "volumes": [
                    {"name": "c", "configMap": {"name": "cfg"}}]})]
        out = self.ok(self.apply(*objs)).stdout
        self.assertEqual(out, "namespace/airflow created\nconfigmap/cfg created\n"
                              "serviceaccount/airflow created\ndeployment.apps/web created\n")
        objs[1]["data"]["a"] = "2"
        self.assertEqual(self.ok(self.apply(*objs)).stdout.splitlines()[1],
                         "configmap/cfg configured")
        self.assertIn("deployment.apps/web unchanged", self.ok(self.apply(*objs)).stdout)
        objs[3]["spec"]["replicas"] = 3
        self.ok(self.apply(objs[3]))
        live = self.live(objs[3])
        self.assertEqual(live["metadata"]["generation"], 2)
        self.assertEqual(live["status"]["observedGeneration"], 2)
        self.assertEqual(live["status"]["readyReplicas"], 3)
        with open(os.path.join(self.network, "k3s/127.0.2.1/apply.log")) as f:
            log = f.read().splitlines()
        self.assertEqual(log[:4], ["1 created Namespace - airflow",
                                   "2 created ConfigMap airflow cfg",
                                   "3 created ServiceAccount airflow airflow",
                                   "4 created Deployment airflow web"])
        self.assertEqual(log[-1], "13 configured Deployment airflow web")

    def test_deployment_with_node_selector_waits_for_a_labelled_node(self):
        d = deployment("sched", "default", {"nodeSelector": {"drover.dev/scheduler": "1"}})
        self.ok(self.apply(d))
        status = self.live(d)["status"]
        self.assertEqual(status["readyReplicas"], 0)
        self.assertEqual(status["conditions"][0]["status"], "False")
        self.assertIn("drover.dev/scheduler=1", status["conditions"][0]["message"])
        self.ok(self.master.kubectl("label", "node", "pi-master", "drover.dev/scheduler=1"))
        self.assertEqual(self.live(d)["status"]["readyReplicas"], 2)
        affinity = deployment("aff", "default", {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}})
        self.ok(self.apply(affinity))
        self.assertEqual(self.live(affinity)["status"]["readyReplicas"], 0)

    def test_job_completes_only_after_its_statefulset_is_ready(self):
        sts = deployment("postgres", "default", {"nodeSelector": {"db": "yes"}},
                         kind="StatefulSet")
        job = deployment("migrate", "default", {},
                         {"drover.dev/depends-on": "StatefulSet/postgres"}, kind="Job")
        self.ok(self.apply(job))
        self.assertNotIn("conditions", self.live(job)["status"])
        self.ok(self.apply(sts))
        self.assertNotIn("conditions", self.live(job)["status"])
        self.ok(self.master.kubectl("label", "node", "pi-master", "db=yes"))
        self.assertEqual(self.live(sts)["status"]["readyReplicas"], 2)
        self.assertEqual(self.live(job)["status"]["conditions"],
                         [{"type": "Complete", "status": "True"}])

    def test_label_needs_overwrite_to_change_a_value(self):
        k = self.master.kubectl
        self.assertEqual(self.ok(k("label", "node", "pi-master", "x=1")).stdout,
                         "node/pi-master labeled\n")
        self.failed(k("label", "node", "pi-master", "x=2"),
                    r"error: 'x' already has a value \(1\), and --overwrite is false")
        self.assertEqual(self.ok(k("label", "node", "pi-master", "x=1")).stdout,
                         "node/pi-master not labeled\n")
        self.ok(k("label", "--overwrite", "node", "pi-master", "x=2"))
        self.ok(k("label", "node", "pi-master", "x-"))
        node = json.loads(k("get", "node", "pi-master", "-o", "json").stdout)
        self.assertNotIn("x", node["metadata"]["labels"])

    def test_get_from_stdin_with_none_one_or_many_found(self):
        a, b = obj("ConfigMap", "a", "default"), obj("ConfigMap", "b", "default")
        both = {"apiVersion": "v1", "kind": "List", "items": [a, b]}
        self.assertIsNone(self.live(both))
        self.ok(self.apply(a))
        one = self.live(both)
        self.assertEqual((one["kind"], one["metadata"]["name"]), ("ConfigMap", "a"))
        self.assertTrue(one["metadata"]["uid"] and one["metadata"]["resourceVersion"])
        self.assertIn("creationTimestamp", one["metadata"])
        self.ok(self.apply(b))
        many = self.live(both)
        self.assertEqual(many["kind"], "List")
        self.assertEqual([i["metadata"]["name"] for i in many["items"]], ["a", "b"])
        self.failed(self.master.kubectl("get", "-f", "-", "-o", "json",
                                        stdin=obj("ConfigMap", "zz", "default")),
                    'configmaps "zz" not found')

    def test_get_all_namespaces_lists_every_namespace(self):
        self.ok(self.master.kubectl("apply", "-f", "-", stdin=obj("Namespace", "other")))
        a, b = obj("ConfigMap", "a", "default"), obj("ConfigMap", "b", "other")
        self.ok(self.apply(a))
        self.ok(self.apply(b))
        names = lambda *args: [i["metadata"]["name"] for i in json.loads(
            self.ok(self.master.kubectl("get", "configmaps", *args, "-o", "json")).stdout)["items"]]
        self.assertEqual(names(), ["a"])
        self.assertEqual(names("-A"), ["a", "b"])
        self.assertEqual(names("--all-namespaces"), ["a", "b"])

    def test_non_json_input_is_refused(self):
        self.failed(self.master.kubectl("apply", "-f", "-", stdin="kind: ConfigMap\n"),
                    "accepts JSON only")


if __name__ == "__main__":
    unittest.main()
