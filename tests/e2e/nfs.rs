//! The nfs_server and nfs_client roles against a three-node lab whose NFS
//! server is the real NFS-Ganesha (see tests/doubles/README.md): the
//! shares mount and carry files both ways, and an export that is missing,
//! a client the export does not name and a stopped server fail the
//! nfs_client role with mount.nfs's own errors, as on the Raspberry Pis.

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::harness::{Env, Run};

/// A play of one of the repository's roles (by path, so the playbook can
/// live in the test's scratch directory).
fn play(hosts: &str, role: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("roles")
        .join(role);
    format!(
        "- hosts: {hosts}\n  become: true\n  roles:\n    - {}\n",
        root.display()
    )
}

fn failed(run: &Run, host: &str) -> u64 {
    run.recap()[host]["failed"].as_u64().unwrap_or(0)
}

/// Mount points of a node, from its sshd's mount namespace.
fn mounts(env: &Env, node: &str) -> String {
    // The node's init: its mount namespace is the node's.
    let pid = env.lab.init_pid(node).ok().flatten().expect("running");
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo")
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn nfs_roles_mount_real_exports_and_fail_as_on_the_pis() {
    let env = Env::new(3);
    let master = env.lab.node("pi-master").expect("pi-master").address;
    let server = env.write("server.yml", &play("nfs_server", "nfs_server"));
    let client = env.write("client.yml", &play("nfs_clients", "nfs_client"));

    let run = env.apply(&server, &[]);
    assert_eq!(run.code, 0, "nfs_server role:\n{}", run.all());
    // A real NFS server listens on the server node's address only.
    assert!(TcpStream::connect_timeout(&(master, 2049).into(), Duration::from_secs(5)).is_ok());
    let log = env
        .node_file("pi-master", "/var/log/drover-lab/ganesha.log")
        .expect("ganesha's log");
    assert!(log.contains("NFS SERVER INITIALIZED"), "{log}");
    let run = env.apply(&client, &[]);
    assert_eq!(run.code, 0, "nfs_client role:\n{}", run.all());
    for node in ["pi-worker-01", "pi-worker-02"] {
        for share in ["dags", "logs"] {
            assert!(
                mounts(&env, node).contains(&format!(" /mnt/airflow/{share} ")),
                "{node}: /mnt/airflow/{share} not mounted"
            );
        }
    }
    // What the server writes, a client reads, and the other way round.
    let check = env.write(
        "check.yml",
        "- hosts: nfs_server\n  become: true\n  tasks:\n\
         \x20   - ansible.builtin.copy:\n\
         \x20       dest: /srv/nfs/airflow/dags/dag.py\n\
         \x20       content: from the server\n\
         - hosts: pi-worker-01\n  become: true\n  tasks:\n\
         \x20   - ansible.builtin.command: cat /mnt/airflow/dags/dag.py\n\
         \x20     register: dag\n\
         \x20   - ansible.builtin.assert:\n\
         \x20       that: dag.stdout == 'from the server'\n\
         \x20   - ansible.builtin.copy:\n\
         \x20       dest: /mnt/airflow/logs/task.log\n\
         \x20       content: from a client\n\
         - hosts: nfs_server\n  become: true\n  tasks:\n\
         \x20   - ansible.builtin.command: cat /srv/nfs/airflow/logs/task.log\n\
         \x20     register: log\n\
         \x20   - ansible.builtin.assert:\n\
         \x20       that: log.stdout == 'from a client'\n",
    );
    let run = env.apply(&check, &[]);
    assert_eq!(run.code, 0, "files through the share:\n{}", run.all());
    assert_eq!(run.total("failed"), 0, "{}", run.all());

    // An export the server does not have.
    let run = env.apply(
        &client,
        &[
            "-e",
            r#"{"nfs_client_mounts": [{"src": "/srv/nfs/airflow/plugins", "path": "/mnt/airflow/plugins"}]}"#,
        ],
    );
    assert_ne!(run.code, 0, "{}", run.all());
    assert_eq!(failed(&run, "pi-worker-01"), 1, "{}", run.all());
    assert!(
        run.all().contains(&format!(
            "mount.nfs: mounting {master}:/srv/nfs/airflow/plugins failed, \
             reason given by server: No such file or directory"
        )),
        "{}",
        run.all()
    );

    // Exports for pi-worker-02 only: pi-worker-01 is refused.
    let worker2 = env.lab.node("pi-worker-02").expect("pi-worker-02").address;
    let run = env.apply(&server, &["-e", &format!("nfs_allowed_network={worker2}")]);
    assert_eq!(run.code, 0, "re-export:\n{}", run.all());
    let second =
        r#"{"nfs_client_mounts": [{"src": "/srv/nfs/airflow/dags", "path": "/mnt/second"}]}"#;
    let run = env.apply(&client, &["-e", second]);
    assert_eq!(failed(&run, "pi-worker-01"), 1, "{}", run.all());
    assert_eq!(failed(&run, "pi-worker-02"), 0, "{}", run.all());
    assert!(
        run.all().contains(&format!(
            "mount.nfs: access denied by server while mounting {master}:/srv/nfs/airflow/dags"
        )),
        "{}",
        run.all()
    );
    assert!(mounts(&env, "pi-worker-02").contains(" /mnt/second "));

    // The server stopped: mount.nfs retries for retry= minutes, then gives up.
    let stop = env.write(
        "stop.yml",
        "- hosts: nfs_server\n  become: true\n  tasks:\n\
         \x20   - ansible.builtin.systemd:\n\
         \x20       name: nfs-kernel-server\n\
         \x20       state: stopped\n",
    );
    let run = env.apply(&stop, &[]);
    assert_eq!(run.code, 0, "stop the server:\n{}", run.all());
    assert!(TcpStream::connect_timeout(&(master, 2049).into(), Duration::from_secs(5)).is_err());
    let run = env.apply(
        &client,
        &[
            "-e",
            r#"{"nfs_client_options": "nfsvers=4.1,hard,retry=0", "nfs_client_mounts": [{"src": "/srv/nfs/airflow/dags", "path": "/mnt/third"}]}"#,
        ],
    );
    for node in ["pi-worker-01", "pi-worker-02"] {
        assert_eq!(failed(&run, node), 1, "{node}: {}", run.all());
    }
    assert!(
        run.all().contains("mount.nfs: Connection timed out"),
        "{}",
        run.all()
    );
}
