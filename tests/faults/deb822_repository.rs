//! `deb822_repository` on a lab node: the .sources file Ansible writes,
//! a signed_by URL downloaded on the node into /etc/apt/keyrings, inline
//! key text, a key file already on the host, `state: absent`; a second
//! run and `--check` change nothing.

use crate::harness::Env;
use crate::new_modules::converges;
use crate::uri::Server;

const KEY: &str =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGLabKey\n-----END PGP PUBLIC KEY BLOCK-----\n";

#[test]
#[ignore = "needs root: run scripts/test"]
fn deb822_repository_writes_sources_and_keys_and_converges() {
    let env = Env::new(1);
    let www = env.path("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("key.asc"), KEY).expect("key");
    let address = env.lab.nodes()[0].address.to_string();
    let server = Server::start(&address, &www, &env.path("port"));
    let pb = env.write(
        "pb.yml",
        &format!(
            r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - deb822_repository:
        name: Lab Docker
        types: [deb]
        uris: http://download.example/linux/debian
        suites: bookworm
        components: [stable]
        architectures: arm64
        signed_by: "http://{address}:{port}/key.asc"
      register: docker
    - deb822_repository:
        name: debian_extra
        uris: [http://deb.example/debian]
        suites: [bookworm-backports]
        components: [main, contrib]
        signed_by: /usr/share/keyrings/debian-archive-keyring.gpg
        enabled: false
    - deb822_repository:
        name: inline
        uris: http://inline.example/debian
        suites: bookworm
        components: main
        signed_by: "{key}"
    - deb822_repository:
        name: never-there
        state: absent
    - assert:
        that:
          - docker.dest == '/etc/apt/sources.list.d/lab-docker.sources'
          - docker.key_filename == '/etc/apt/keyrings/lab-docker.asc'
          - "'Signed-By: /etc/apt/keyrings/lab-docker.asc' in docker.repo"
      when: not ansible_check_mode
"#,
            port = server.port,
            key = KEY.replace('\n', "\\n"),
        ),
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/etc/apt/sources.list.d/lab-docker.sources")
            .as_deref(),
        Some(
            "Architectures: arm64\nComponents: stable\nX-Repolib-Name: Lab Docker\n\
             Signed-By: /etc/apt/keyrings/lab-docker.asc\nSuites: bookworm\nTypes: deb\n\
             URIs: http://download.example/linux/debian\n"
        ),
        "{}",
        first.all()
    );
    assert_eq!(
        env.node_file(node, "/etc/apt/keyrings/lab-docker.asc")
            .as_deref(),
        Some(KEY)
    );
    assert_eq!(
        env.node_file(node, "/etc/apt/sources.list.d/debian-extra.sources")
            .as_deref(),
        Some(
            "Components: main contrib\nEnabled: no\nX-Repolib-Name: debian_extra\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\nSuites: bookworm-backports\n\
             Types: deb\nURIs: http://deb.example/debian\n"
        )
    );
    let inline = env
        .node_file(node, "/etc/apt/sources.list.d/inline.sources")
        .expect("inline");
    assert!(
        inline.contains(
            "Signed-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    mQINBGLabKey\n"
        ),
        "{inline}"
    );
    // Absent removes the file and the downloaded key.
    let gone = env.write(
        "gone.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - deb822_repository:\n        name: Lab Docker\n        state: absent\n",
    );
    let run = env.apply(&gone, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("changed"), 1, "{}", run.all());
    assert!(env
        .node_file(node, "/etc/apt/sources.list.d/lab-docker.sources")
        .is_none());
    assert!(env
        .node_file(node, "/etc/apt/keyrings/lab-docker.asc")
        .is_none());
    drop(server);
}
