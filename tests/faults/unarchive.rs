//! `unarchive` on a lab node: a local tar.gz and zip travel to the node,
//! unpack with the node's tar and unzip, converge (a second run changes
//! nothing, `--check` changes nothing) and honour `creates`, `mode` and
//! `list_files`; a file changed on the node is unpacked again.

use std::process::Command;

use crate::harness::Env;
use crate::new_modules::converges;

/// Build `files/t.tgz` and `files/t.zip` holding `a.txt` and `sub/b.txt`.
fn archives(env: &Env) {
    env.write("src/a.txt", "alpha\n");
    env.write("src/sub/b.txt", "beta\n");
    std::fs::create_dir_all(env.path("files")).expect("files dir");
    let src = env.path("src");
    let tar = Command::new("tar")
        .args(["czf", "../files/t.tgz", "a.txt", "sub"])
        .current_dir(&src)
        .status()
        .expect("tar runs");
    assert!(tar.success());
    let zip = Command::new("zip")
        .args(["-qr", "../files/t.zip", "a.txt", "sub"])
        .current_dir(&src)
        .status()
        .expect("zip runs");
    assert!(zip.success());
}

/// How many of unarchive's temporary directories are left in the node's /tmp.
fn temporaries_left(env: &Env, node: &str) -> usize {
    std::fs::read_dir(env.node_path(node, "/tmp"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("drover-unarchive")
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn unarchive_tar_and_zip_from_the_control_machine_converge() {
    let env = Env::new(1);
    archives(&env);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  become: true
  gather_facts: false
  tasks:
    - file: path=/srv/t state=directory
    - file: path=/srv/z state=directory
    - unarchive: src=t.tgz dest=/srv/t list_files=true
      register: t
    # In check mode a tar archive is skipped, as Ansible's is.
    - assert:
        that:
          - t.handler == 'TgzArchive'
          - "'sub/b.txt' in t.files"
      when: not ansible_check_mode
    - unarchive: src=t.zip dest=/srv/z mode=0640
    - unarchive: src=t.tgz dest=/srv/elsewhere creates=/srv/t/a.txt
"#,
    );
    converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/srv/t/sub/b.txt").as_deref(),
        Some("beta\n")
    );
    assert_eq!(
        env.node_file(node, "/srv/z/a.txt").as_deref(),
        Some("alpha\n")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.node_path(node, "/srv/z/a.txt"))
        .expect("unzipped")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);

    // A file changed on the node is unpacked again, from either archive.
    std::fs::write(env.node_path(node, "/srv/t/a.txt"), "changed\n").expect("edit");
    std::fs::write(env.node_path(node, "/srv/z/sub/b.txt"), "changed\n").expect("edit");
    let again = env.apply(&pb, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.total("changed"), 2, "{}", again.all());
    assert_eq!(
        env.node_file(node, "/srv/t/a.txt").as_deref(),
        Some("alpha\n")
    );
    assert_eq!(
        env.node_file(node, "/srv/z/sub/b.txt").as_deref(),
        Some("beta\n")
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn unarchive_refuses_a_missing_dest_and_a_file_that_is_no_archive() {
    let env = Env::new(1);
    env.write("files/plain.txt", "not an archive\n");
    archives(&env);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  become: true
  gather_facts: false
  tasks:
    - unarchive: src=t.tgz dest=/srv/missing
      ignore_errors: true
      register: nodest
    - file: path=/srv/p state=directory
    - unarchive: src=plain.txt dest=/srv/p
      ignore_errors: true
      register: plain
    - assert:
        that:
          - nodest is failed
          - "nodest.msg == \"dest '/srv/missing' must be an existing dir\""
          - plain is failed
          - "'Failed to find handler for' in plain.msg"
"#,
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // The temporary copies are gone.
    let node = &env.node_names()[0];
    let tmp = temporaries_left(&env, node);
    assert_eq!(tmp, 0, "temporary archives left on the node");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn unarchive_downloads_a_url_on_the_node_then_converges() {
    let env = Env::new(1);
    archives(&env);
    let www = env.path("files");
    let address = env.lab.nodes()[0].address.to_string();
    let server = crate::uri::Server::start(&address, &www, &env.path("port"));
    let base = format!("http://{address}:{}", server.port);
    let pb = env.write(
        "pb.yml",
        &format!(
            r#"- hosts: all
  become: true
  gather_facts: false
  tasks:
    - file: path=/srv/u state=directory
    - file: path=/srv/z state=directory
    - unarchive:
        src: "{base}/t.tgz?x=1"
        dest: /srv/u
        remote_src: true
      register: u
    - assert:
        that:
          - u.handler == 'TgzArchive'
      when: not ansible_check_mode
    - unarchive:
        src: "{base}/t.zip"
        dest: /srv/z
        remote_src: true
    - unarchive:
        src: "{base}/missing.tgz"
        dest: /srv/u
        remote_src: true
      register: missing
      ignore_errors: true
    - unarchive:
        src: "{base}/t.tgz"
        dest: /srv/u
      register: local_url
      ignore_errors: true
    - assert:
        that:
          - missing is failed
          - missing.msg.startswith('Failure downloading {base}/missing.tgz, ')
          - "'404' in missing.msg"
          - local_url is failed
          - "'is only supported when remote_src is True' in local_url.msg"
"#
        ),
    );
    let first = converges(&env, &pb);
    assert_eq!(first.total("changed"), 4, "{}", first.all());
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/srv/u/sub/b.txt").as_deref(),
        Some("beta\n")
    );
    // The downloads are removed, and the URL was on no command line
    // (curl read it from stdin).
    let left = temporaries_left(&env, node);
    assert_eq!(left, 0, "temporary downloads left on the node");
    drop(server);
}
