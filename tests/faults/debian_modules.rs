//! Modules Debian and Raspberry Pi OS roles use (issue 11, second pass):
//! each runs on a lab node, converges (a second run changes nothing) and a
//! `--check` run afterwards changes nothing, on the node or in the report.

use crate::harness::Env;
use crate::new_modules::converges;

#[test]
#[ignore = "needs root: run scripts/test"]
fn setup_and_service_facts_set_facts_as_ansible_does() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file:
        path: /etc/ansible/facts.d
        state: directory
    - copy:
        dest: /etc/ansible/facts.d/app.fact
        content: '{"release": "1.4"}'
    - copy:
        dest: /etc/systemd/system/lab-facts.service
        content: |
          [Unit]
          Description=facts test
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
    - systemd:
        name: lab-facts
        state: started
        enabled: true
        daemon_reload: true
    - setup:
        filter: ["ansible_host*", "ansible_distribution", "ansible_local"]
      register: s
    - assert:
        that:
          - ansible_facts.hostname == ansible_hostname
          - ansible_facts.local.app.release == '1.4'
          - ansible_local.app.release == '1.4'
          - ansible_kernel is not defined
          - s is not changed
    - setup:
        gather_subset: ["!all", "network"]
    - assert:
        that: ansible_facts.all_ipv4_addresses is defined
    - service_facts:
    - assert:
        that:
          - ansible_facts.services['lab-facts.service'].state == 'running'
          - ansible_facts.services['lab-facts.service'].status == 'enabled'
          - ansible_facts.services['lab-facts.service'].source == 'systemd'
          - services['lab-facts.service'].name == 'lab-facts.service'
"#,
    );
    converges(&env, &pb);
}

/// A .deb of package `lab-deb` at `version`, built with dpkg-deb in the
/// test's directory; returns its file name there.
fn build_deb(env: &Env, version: &str) -> String {
    let root = env.path(&format!("deb-{version}"));
    env.write(
        &format!("deb-{version}/DEBIAN/control"),
        &format!(
            "Package: lab-deb\nVersion: {version}\nArchitecture: all\nMaintainer: lab <lab@example.invalid>\nDescription: drover lab package\n"
        ),
    );
    env.write(
        &format!("deb-{version}/usr/share/lab-deb/version"),
        &format!("{version}\n"),
    );
    let name = format!("lab-deb_{version}_all.deb");
    let out = std::process::Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(env.path(&name))
        .output()
        .expect("dpkg-deb runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn apt_deb_installs_a_file_once_and_fails_a_download_like_ansible() {
    let env = Env::new(1);
    let node = env.node_names()[0].clone();
    let v1 = build_deb(&env, "1.0-1");
    let prep = env.write(
        "prep.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - copy:\n        src: {v1}\n        dest: /srv/{v1}\n"
        ),
    );
    let r = env.apply(&prep, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let pb = env.write(
        "pb.yml",
        &format!(
            r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - apt:
        deb: /srv/{v1}
    - name: a URL that cannot be reached fails as in Ansible
      apt:
        deb: http://127.0.0.1:9/loki_3.3.2_arm64.deb
      register: dl
      ignore_errors: true
    - assert:
        that:
          - dl is failed
          - dl.msg.startswith('Failure downloading http://127.0.0.1:9/loki_3.3.2_arm64.deb')
"#
        ),
    );
    // Check mode first: the install is reported, nothing is installed.
    let check = env.apply(&pb, &["--check"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert_eq!(check.total("changed"), 1, "{}", check.all());
    assert_eq!(env.node_file(&node, "/usr/share/lab-deb/version"), None);
    converges(&env, &pb);
    assert_eq!(
        env.node_file(&node, "/usr/share/lab-deb/version")
            .as_deref(),
        Some("1.0-1\n")
    );
    // A new version of the file replaces the installed one.
    let v2 = build_deb(&env, "1.1-1");
    let up = env.write(
        "up.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - copy:\n        src: {v2}\n        dest: /srv/{v2}\n    - apt:\n        deb: /srv/{v2}\n"
        ),
    );
    let r = env.apply(&up, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.total("changed"), 2, "{}", r.all());
    assert_eq!(
        env.node_file(&node, "/usr/share/lab-deb/version")
            .as_deref(),
        Some("1.1-1\n")
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn cron_edits_crontabs_and_cron_files_as_ansible_writes_them() {
    let env = Env::new(1);
    let node = env.node_names()[0].clone();
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - cron:
        name: PATH
        env: true
        job: /usr/local/bin:/usr/bin:/bin
    - cron:
        name: nightly backup
        minute: "0"
        hour: "3"
        job: /usr/local/bin/backup >/dev/null 2>&1
      register: c
    - cron:
        name: at boot
        special_time: reboot
        job: /usr/local/bin/boot-mark
        disabled: true
    - cron:
        name: gone
        state: absent
    - cron:
        name: rotate
        cron_file: lab-rotate
        user: root
        weekday: "1"
        job: /usr/sbin/logrotate /etc/logrotate.conf
    - assert:
        that:
          - "'nightly backup' in c.jobs"
          - "'PATH' in c.envs"
"#,
    );
    converges(&env, &pb);
    let out = std::process::Command::new("crontab")
        .args(["-l"])
        .output()
        .expect("crontab");
    let host_crontab = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !host_crontab.contains("nightly backup"),
        "the lab node's crontab is its own"
    );
    let spool = env
        .node_file(&node, "/var/spool/cron/crontabs/root")
        .expect("root's crontab on the node");
    assert!(
        spool.contains(
            "PATH=\"/usr/local/bin:/usr/bin:/bin\"\n#Ansible: nightly backup\n0 3 * * * /usr/local/bin/backup >/dev/null 2>&1\n#Ansible: at boot\n#@reboot /usr/local/bin/boot-mark\n"
        ),
        "{spool}"
    );
    assert_eq!(
        env.node_file(&node, "/etc/cron.d/lab-rotate").as_deref(),
        Some("#Ansible: rotate\n* * * * 1 root /usr/sbin/logrotate /etc/logrotate.conf\n")
    );
    // Removing the last job of a cron_file removes the file.
    let rm = env.write(
        "rm.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - cron:\n        name: rotate\n        cron_file: lab-rotate\n        state: absent\n",
    );
    let r = env.apply(&rm, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.total("changed"), 1, "{}", r.all());
    assert_eq!(env.node_file(&node, "/etc/cron.d/lab-rotate"), None);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn timezone_sets_the_zone_through_timedatectl() {
    let env = Env::new(1);
    let node = env.node_names()[0].clone();
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - community.general.timezone:
        name: Europe/Paris
    - name: an unknown zone is refused
      timezone:
        name: Mars/Olympus_Mons
      register: bad
      ignore_errors: true
    - assert:
        that: bad is failed and 'is not available' in bad.msg
"#,
    );
    converges(&env, &pb);
    // The lab's nodes run systemd: timedated made the link (relative, as it
    // writes them). Without systemd the module writes the Debian files: see
    // its unit tests.
    let link = std::fs::read_link(env.node_path(&node, "/etc/localtime")).expect("a link");
    assert!(
        link.ends_with("usr/share/zoneinfo/Europe/Paris"),
        "{}",
        link.display()
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn modprobe_writes_the_boot_files_as_ansible_does() {
    // The lab's kernel loads no modules (no /proc/modules): the module is
    // left unloaded (state absent, a no-op) and only the files change.
    let env = Env::new(1);
    let node = env.node_names()[0].clone();
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - community.general.modprobe:
        name: overlay
        state: absent
        persistent: present
        params: redirect_dir=on
"#,
    );
    converges(&env, &pb);
    assert_eq!(
        env.node_file(&node, "/etc/modules-load.d/overlay.conf")
            .as_deref(),
        Some("overlay\n")
    );
    assert_eq!(
        env.node_file(&node, "/etc/modprobe.d/overlay.conf")
            .as_deref(),
        Some("options overlay redirect_dir=on\n")
    );
}
