//! `uri` against a small HTTP server (tests/http/server.py) on the lab's
//! address: requests run from the node with curl, results are Ansible's,
//! a written `dest` converges (If-Modified-Since, then 304), `--check`
//! runs no request, and credentials never reach the output.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::harness::Env;
use crate::new_modules::converges;

const PW: &str = "Lab-pa55-w0rd";
const TOKEN: &str = "T0ken-abc123";

/// The server, stopped by PID when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(address: &str, dir: &Path, portfile: &Path) -> Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http/server.py");
        let mut server = Server {
            child: Command::new("python3")
                .arg(script)
                .arg(address)
                .arg(dir)
                .arg(portfile)
                .arg(format!("labuser:{PW}"))
                .spawn()
                .expect("python3 starts"),
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = std::fs::read_to_string(portfile)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                server.port = port;
                return server;
            }
            assert!(Instant::now() < deadline, "the HTTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn uri_requests_from_the_node_converge_and_keep_credentials_out_of_output() {
    let env = Env::new(1);
    let www = env.path("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("hello.txt"), "hello from the lab\n").expect("hello");
    let address = env.lab.nodes()[0].address.to_string();
    let server = Server::start(&address, &www, &env.path("port"));
    let base = format!("http://{address}:{}", server.port);
    let pb = env.write(
        "pb.yml",
        &format!(
            r#"- hosts: all
  gather_facts: false
  vars:
    base: "{base}"
    pw: "{PW}"
  tasks:
    - uri:
        url: "{{{{ base }}}}/hello.txt"
        return_content: true
      register: get
    - uri:
        url: "{{{{ base }}}}/redirect"
      register: redir
    - uri:
        url: "{{{{ base }}}}/api"
        method: POST
        body: {{name: drover, tags: [a, b]}}
        body_format: json
        status_code: 201
        headers:
          Authorization: "Bearer {TOKEN}"
      register: post
    - uri:
        url: "{{{{ base }}}}/form"
        method: PUT
        body: {{a b: "c&d"}}
        body_format: form-urlencoded
        status_code: [201]
      register: form
    - uri:
        url: "{{{{ base }}}}/secure"
        user: labuser
        password: "{{{{ pw }}}}"
        force_basic_auth: true
      register: forced
    - uri:
        url: "{{{{ base }}}}/secure"
        url_username: labuser
        url_password: "{{{{ pw }}}}"
      register: challenged
    - uri:
        url: "{{{{ base }}}}/missing"
        status_code: 404
      register: missing
    - uri:
        url: "{{{{ base }}}}/missing"
      register: failed
      ignore_errors: true
    - become: true
      uri:
        url: "{{{{ base }}}}/hello.txt"
        dest: /srv/hello.txt
        status_code: [200, 304]
      register: saved
    - uri:
        url: "{{{{ base }}}}/never"
        creates: /srv/hello.txt
      register: guarded
    - assert:
        that:
          - get.status == 200
          - get.content == 'hello from the lab\n'
          - get.content_type.startswith('text/plain')
          - get.content_length == '19'
          - get.msg == 'OK (19 bytes)'
          - not get.redirected
          - redir.redirected
          - redir.url.endswith('/hello.txt')
          - post.status == 201
          - post.json.method == 'POST'
          - post.json.body == '{{"name":"drover","tags":["a","b"]}}'
          - post.json.content_type == 'application/json'
          - post.x_echo_count == '1'
          - form.json.method == 'PUT'
          - form.json.body == 'a+b=c%26d'
          - form.json.content_type == 'application/x-www-form-urlencoded'
          - forced.json.secret == 'granted'
          - challenged.json.secret == 'granted'
          - missing.status == 404
          - failed is failed
          - failed.status == 404
          - "'Status code was 404 and not [200]' in failed.msg"
          - saved.path == '/srv/hello.txt'
          - saved.status in [200, 304]
          - guarded.stdout == "skipped, since '/srv/hello.txt' exists"
      when: not ansible_check_mode
"#
        ),
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/srv/hello.txt").as_deref(),
        Some("hello from the lab\n"),
        "{}",
        first.all()
    );
    for output in ["human", "json"] {
        let run = env.apply(&pb, &["-vvvv", "--output", output]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(
            !run.all().contains(PW),
            "the password leaked:\n{}",
            run.all()
        );
        assert!(
            !run.all().contains(TOKEN),
            "the token leaked:\n{}",
            run.all()
        );
    }
    drop(server);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn uri_says_curl_is_missing_when_the_node_has_none() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        // No curl on the PATH the task runs with.
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - uri:\n        url: http://127.0.0.1:9/\n      environment:\n        PATH: /nonexistent\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.all().contains("uri needs curl on the host"),
        "{}",
        run.all()
    );
}
