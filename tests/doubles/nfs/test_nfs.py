"""Tests of the NFS doubles' pure parts (tests/doubles/nfs/exportfs and
mount.nfs): the exports(5) parser, its translation into NFS-Ganesha's
configuration, and how mount.nfs names what the server answered.

Run: python3 -m unittest tests/doubles/nfs/test_nfs.py  (no root needed).
The server and the mounts themselves are tested against the real Ganesha in
src/lab/tests.rs and tests/e2e/nfs.rs.
"""
import importlib.machinery
import importlib.util
import os
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, file):
    loader = importlib.machinery.SourceFileLoader(name, os.path.join(HERE, file))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


exportfs = load("exportfs_double", "exportfs")
mount_nfs = load("mount_nfs_double", "mount.nfs")


class Exports(unittest.TestCase):
    def test_clients_and_default_options(self):
        table = exportfs.parse("/etc/exports", "# c\n/srv/a 10.0.0.0/24(rw,no_root_squash) *\n"
                                               "/srv/b -rw,sync 127.0.2.3\n")
        self.assertEqual(table, [
            ("/srv/a", [("10.0.0.0/24", ["rw", "no_root_squash"]), ("*", [])]),
            ("/srv/b", [("127.0.2.3", ["rw", "sync"])]),
        ])

    def test_bad_lines_fail_as_exportfs_does(self):
        for bad in ["srv/rel *(rw)", "/srv/a *(rw,bogus)", "/srv/a host(rw"]:
            with self.assertRaises(SystemExit) as e, mock.patch("sys.stderr"):
                exportfs.parse("/etc/exports", bad)
            self.assertEqual(e.exception.code, 1)


class Translation(unittest.TestCase):
    def config(self, text):
        with tempfile.TemporaryDirectory() as tmp:
            ganesha = os.path.join(tmp, "ganesha")
            os.makedirs(os.path.join(ganesha, "usr/bin"))
            os.makedirs(os.path.join(ganesha, "usr/lib/x86_64-linux-gnu/ganesha"))
            for f in ["usr/bin/ganesha.nfsd", "usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so"]:
                with open(os.path.join(ganesha, f), "w"):
                    pass
                os.chmod(os.path.join(ganesha, f), 0o755)
            with mock.patch.multiple(exportfs, GANESHA=ganesha, IDS=os.path.join(tmp, "ids.json")):
                first = exportfs.ganesha_config(exportfs.parse("/etc/exports", text), "127.0.2.1")
                # Ids stay with their paths when the table changes.
                again = exportfs.ganesha_config(
                    exportfs.parse("/etc/exports", "/srv/new *(ro)\n" + text), "127.0.2.1")
        return first, again

    def test_server_binds_its_own_address_for_nfsv4_only(self):
        conf, _ = self.config("")
        self.assertIn("Bind_addr = 127.0.2.1;", conf)
        self.assertIn("Protocols = 4;", conf)
        self.assertNotIn("EXPORT {", conf)

    def test_exports_become_exports_and_clients(self):
        conf, again = self.config(
            "/srv/a 127.0.2.0/24(rw,sync,no_subtree_check,no_root_squash) 127.0.2.9(ro,all_squash,insecure,anonuid=50000)\n")
        self.assertIn('    Path = "/srv/a";\n    Pseudo = "/srv/a";\n', conf)
        self.assertIn("    Access_Type = None;\n", conf)
        self.assertIn("Clients = 127.0.2.0/24;\n        Access_Type = RW;\n"
                      "        Squash = No_Root_Squash;", conf)
        self.assertIn("PrivilegedPort = true;", conf)
        self.assertIn("Clients = 127.0.2.9;\n        Access_Type = RO;\n"
                      "        Squash = All_Squash;", conf)
        self.assertIn("PrivilegedPort = false;\n        Anonymous_Uid = 50000;", conf)
        self.assertIn("Export_Id = 1;\n    Path = \"/srv/a\"", again)
        self.assertIn("Export_Id = 2;\n    Path = \"/srv/new\"", again)

    def test_exports_default_to_read_only_with_root_squash(self):
        conf, _ = self.config("/srv/a 127.0.2.2\n")
        self.assertIn("Access_Type = RO;\n        Squash = Root_Squash;", conf)

    def test_clients_the_lab_cannot_express_match_no_node(self):
        conf, _ = self.config("/srv/a *.example.com(rw) @group(rw) unknown-host(rw)\n")
        self.assertNotIn("CLIENT", conf)

    def test_quotes_in_paths_are_refused(self):
        with self.assertRaises(SystemExit), mock.patch("sys.stderr"):
            self.config('/srv/a"b *(rw)\n')


class MountErrors(unittest.TestCase):
    def test_hidden_exports_are_denied_when_published(self):
        with mock.patch.object(mount_nfs, "published", return_value=True):
            self.assertEqual(mount_nfs.nfs_errno(
                "mount_cb: NFS4: (path /srv/a) failed with NFS4ERR_NOENT(-2)", "s", "/srv/a"),
                "EACCES")
        with mock.patch.object(mount_nfs, "published", return_value=False):
            self.assertEqual(mount_nfs.nfs_errno(
                "failed with NFS4ERR_NOENT(-2)", "s", "/srv/a"), "ENOENT")
        self.assertEqual(mount_nfs.nfs_errno("NFS4ERR_WRONGSEC", "s", "/p"), "EACCES")
        self.assertEqual(mount_nfs.nfs_errno("nfs_service failed", "s", "/p"), "EIO")

    def test_messages_are_mount_nfs_ones(self):
        with self.assertRaises(SystemExit) as e, mock.patch("sys.stderr") as err:
            mount_nfs.report("ENOENT", "pi-master:/srv/x")
        self.assertEqual(e.exception.code, 32)
        written = "".join(c.args[0] for c in err.write.call_args_list)
        self.assertTrue(written.endswith(
            ": mounting pi-master:/srv/x failed, reason given by server: No such file or directory\n"),
            written)


if __name__ == "__main__":
    unittest.main()
