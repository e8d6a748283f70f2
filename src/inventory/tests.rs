//! Unit tests of inventory loading, variable precedence, patterns and views.

use std::fs;
use std::path::Path;

use serde_json::json;

use super::*;

const CLUSTER: &str = "\
all:
  vars:
    ansible_user: admin
    role: none
  children:
    k3s:
      children:
        server:
          hosts:
            pi-master:
              ansible_host: 192.168.1.240
        agents:
          hosts:
            pi-worker-[01:07]:
          vars:
            role: agent
    schedulers:
      hosts:
        pi-worker-01:
        pi-worker-02:
    management:
      hosts:
        pi-master:
";

fn yaml(text: &str) -> Inventory {
    Inventory::from_str(text, Path::new("hosts.yml")).expect("valid inventory")
}

fn ini(text: &str) -> Inventory {
    Inventory::from_str(text, Path::new("hosts.ini")).expect("valid inventory")
}

fn errors_of(text: &str, file: &str) -> Vec<String> {
    match Inventory::from_str(text, Path::new(file)) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn sel(inv: &Inventory, pattern: &str) -> Vec<String> {
    inv.select(pattern).expect("valid pattern")
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, text).expect("write");
}

#[test]
fn nested_groups_ancestors_and_ranges() {
    let inv = yaml(CLUSTER);
    assert_eq!(inv.hosts.len(), 8);
    assert_eq!(
        inv.hosts.keys().next().map(String::as_str),
        Some("pi-master")
    );
    assert!(inv.hosts.contains_key("pi-worker-07"));
    let w1 = &inv.hosts["pi-worker-01"];
    assert_eq!(w1.groups, ["all", "k3s", "schedulers", "agents"]);
    assert_eq!(inv.groups["agents"].depth, 2);
    assert_eq!(inv.groups["agents"].parents, ["k3s"]);
    assert_eq!(inv.groups["k3s"].children, ["server", "agents"]);
    assert_eq!(
        inv.group_names("pi-worker-01"),
        ["agents", "k3s", "schedulers"]
    );
    assert_eq!(
        inv.group_names("pi-master"),
        ["k3s", "management", "server"]
    );
    assert_eq!(w1.vars["role"], json!("agent"));
    assert_eq!(w1.vars["ansible_user"], json!("admin"));
    assert_eq!(inv.hosts["pi-master"].vars["role"], json!("none"));
    assert_eq!(
        inv.hosts["pi-master"].vars["ansible_host"],
        json!("192.168.1.240")
    );
    assert_eq!(inv.groups["all"].children[0], "ungrouped");
    assert!(inv.groups["ungrouped"].hosts.is_empty());
}

#[test]
fn groups_magic_variable() {
    let inv = yaml(CLUSTER);
    let groups = inv.groups_var();
    let keys: Vec<&str> = groups.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "all",
            "ungrouped",
            "k3s",
            "server",
            "agents",
            "schedulers",
            "management"
        ]
    );
    assert_eq!(groups["all"].as_array().map(Vec::len), Some(8));
    assert_eq!(groups["k3s"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        groups["schedulers"],
        json!(["pi-worker-01", "pi-worker-02"])
    );
    assert_eq!(groups["ungrouped"], json!([]));
}

#[test]
fn ungrouped_hosts_and_group_names() {
    let inv = yaml("all:\n  hosts:\n    lonely:\n    both:\n  children:\n    web:\n      hosts:\n        both:\n");
    assert_eq!(inv.groups["ungrouped"].hosts, ["lonely"]);
    assert_eq!(inv.hosts["lonely"].groups, ["all", "ungrouped"]);
    // Ansible drops only `all` from group_names.
    assert_eq!(inv.group_names("lonely"), ["ungrouped"]);
    assert_eq!(inv.group_names("both"), ["web"]);
    assert_eq!(sel(&inv, "ungrouped"), ["lonely"]);
}

#[test]
fn null_hosts_string_hosts_ports_and_top_level_groups() {
    let inv = yaml("web:\n  hosts: w1\ndb:\n  hosts:\n    d1:2222:\n    d2: ~\n");
    assert_eq!(inv.hosts.keys().collect::<Vec<_>>(), ["w1", "d1", "d2"]);
    assert_eq!(inv.hosts["d1"].vars["ansible_port"], json!(2222));
    assert_eq!(inv.groups["all"].children, ["ungrouped", "web", "db"]);
    assert_eq!(inv.groups["web"].depth, 1);
}

#[test]
fn host_in_several_groups_merges_file_vars() {
    let inv = yaml("all:\n  children:\n    a:\n      hosts:\n        h: {x: 1, y: 1}\n    b:\n      hosts:\n        h: {y: 2}\n");
    assert_eq!(inv.hosts["h"].vars["x"], json!(1));
    assert_eq!(inv.hosts["h"].vars["y"], json!(2));
}

#[test]
fn group_order_depth_then_priority_then_name() {
    let inv = yaml(
        "all:\n  children:\n    zeta:\n      vars: {v: zeta}\n      hosts: {h: }\n    alpha:\n      vars: {v: alpha}\n      hosts: {h: }\n    outer:\n      vars: {v: outer}\n      children:\n        inner:\n          vars: {v: inner}\n          hosts: {g: }\n",
    );
    // zeta wins over alpha at equal depth (alphabetical, later applies last).
    assert_eq!(inv.hosts["h"].vars["v"], json!("zeta"));
    assert_eq!(inv.hosts["g"].vars["v"], json!("inner"));
    let inv = yaml(
        "all:\n  children:\n    zeta:\n      vars: {v: zeta}\n      hosts: {h: }\n    alpha:\n      vars: {v: alpha, ansible_group_priority: 10}\n      hosts: {h: }\n",
    );
    assert_eq!(inv.hosts["h"].vars["v"], json!("alpha"));
    assert_eq!(inv.hosts["h"].groups, ["all", "zeta", "alpha"]);
    // Like Ansible, the priority is not a variable.
    assert!(!inv.hosts["h"].vars.contains_key("ansible_group_priority"));
    assert_eq!(inv.groups["alpha"].priority, 10);
    let errs = errors_of("all:\n  vars:\n    ansible_group_priority: high\n", "p.yml");
    assert!(
        errs[0].starts_with("p.yml:3:29: ansible_group_priority"),
        "{errs:?}"
    );
}

#[test]
fn deeper_group_wins_even_when_listed_first() {
    let inv = yaml(
        "all:\n  children:\n    parent:\n      vars: {v: parent}\n      children:\n        child:\n          vars: {v: child}\n          hosts: {h: }\n    aaa:\n      vars: {v: aaa}\n      hosts: {h: }\n",
    );
    assert_eq!(inv.hosts["h"].vars["v"], json!("child"));
}

#[test]
fn precedence_across_every_layer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let inv_dir = tmp.path().join("inventory");
    let pb_dir = tmp.path().join("playbooks");
    // Lowest first. Layer i sets every variable named after layer i or a
    // higher one to its own name, so variable L ends up as the name of the
    // highest layer, at most L, that is present.
    let layers = [
        "file_all",
        "file_group",
        "inv_gv_all",
        "pb_gv_all",
        "inv_gv_group",
        "pb_gv_group",
        "file_host",
        "inv_hv",
        "pb_hv",
    ];
    let set_from = |i: usize| -> String {
        layers[i..]
            .iter()
            .map(|name| format!("{name}: {}\n", layers[i]))
            .collect()
    };
    let indent = |s: String, n: usize| -> String {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect()
    };
    let inventory = format!(
        "all:\n  vars:\n{}  children:\n    web:\n      vars:\n{}      hosts:\n        h1:\n{}        h2:\n",
        indent(set_from(0), 4),
        indent(set_from(1), 8),
        indent(set_from(6), 10),
    );
    write(&inv_dir.join("hosts.yml"), &inventory);
    write(&inv_dir.join("group_vars/all.yml"), &set_from(2));
    write(&pb_dir.join("group_vars/all/main.yml"), &set_from(3));
    write(&inv_dir.join("group_vars/web"), &set_from(4));
    write(&pb_dir.join("group_vars/web.yaml"), &set_from(5));
    let hv: Map = layers[7..]
        .iter()
        .map(|l| (l.to_string(), json!("inv_hv")))
        .collect();
    write(
        &inv_dir.join("host_vars/h1.json"),
        &serde_json::to_string(&hv).expect("json"),
    );
    write(&pb_dir.join("host_vars/h1/a.yml"), &set_from(8));

    let mut inv = Inventory::load(&inv_dir.join("hosts.yml")).expect("load");
    let expect = |host: &str, present: &[usize], inv: &Inventory| {
        let vars = &inv.hosts[host].vars;
        for (j, name) in layers.iter().enumerate() {
            let winner = present
                .iter()
                .filter(|i| **i <= j)
                .max()
                .map(|i| layers[*i]);
            assert_eq!(vars[*name], json!(winner), "{host}: {name}");
        }
    };
    expect("h1", &[0, 1, 2, 4, 6, 7], &inv);
    expect("h2", &[0, 1, 2, 4], &inv);

    inv.add_playbook_vars(&pb_dir).expect("playbook vars");
    expect("h1", &[0, 1, 2, 3, 4, 5, 6, 7, 8], &inv);
    expect("h2", &[0, 1, 2, 3, 4, 5], &inv);

    // Adding the same playbook directory again changes nothing.
    let before = inv.hosts["h1"].vars.clone();
    inv.add_playbook_vars(&pb_dir).expect("again");
    assert_eq!(inv.hosts["h1"].vars, before);
}

#[test]
fn values_replace_whole_without_deep_merge() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        &tmp.path().join("hosts.yml"),
        "all:\n  vars:\n    cfg: {a: 1, b: 2}\n  hosts:\n    h:\n",
    );
    write(&tmp.path().join("host_vars/h.yml"), "cfg: {b: 3}\n");
    let inv = Inventory::load(&tmp.path().join("hosts.yml")).expect("load");
    assert_eq!(inv.hosts["h"].vars["cfg"], json!({"b": 3}));
}

#[test]
fn vars_directory_files_merge_in_name_order_and_first_candidate_wins() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(&tmp.path().join("hosts"), "[web]\nw1\n");
    write(
        &tmp.path().join("group_vars/web/10-base.yml"),
        "a: base\nb: base\n",
    );
    write(&tmp.path().join("group_vars/web/20-over.yaml"), "b: over\n");
    write(&tmp.path().join("group_vars/web/sub/30.yml"), "c: sub\n");
    write(
        &tmp.path().join("group_vars/web/.hidden.yml"),
        "a: hidden\n",
    );
    write(&tmp.path().join("group_vars/web/notes.txt"), "a: txt\n");
    write(
        &tmp.path().join("group_vars/web/backup.yml~"),
        "a: backup\n",
    );
    // A directory `web/` shadows `web.yml`, as in Ansible.
    write(&tmp.path().join("group_vars/web.yml"), "a: shadowed\n");
    // Files for groups the inventory lacks are not read.
    write(&tmp.path().join("group_vars/nosuch.yml"), "[broken\n");
    let inv = Inventory::load(&tmp.path().join("hosts")).expect("load");
    let v = &inv.hosts["w1"].vars;
    assert_eq!(v["a"], json!("base"));
    assert_eq!(v["b"], json!("over"));
    assert_eq!(v["c"], json!("sub"));
}

#[test]
fn ini_sections_values_and_children() {
    let text = "\
; leading comment
bastion ansible_host=10.0.0.1

[server]
pi-master ansible_host=192.168.1.240 ansible_port=22 debug=True quoted=\"a b\" mode=0644 # trailing

[agents]
pi-worker-[01:03]
pi-worker-09:2200

[k3s:children]
server
agents   # the workers

[k3s:vars]
ansible_user = admin
k3s_version='v1.30.0+k3s1'
flag=yes
list=[1, 2]

[all:vars]
ntp=pool.ntp.org
";
    let inv = ini(text);
    assert_eq!(
        inv.hosts.keys().collect::<Vec<_>>(),
        [
            "bastion",
            "pi-master",
            "pi-worker-01",
            "pi-worker-02",
            "pi-worker-03",
            "pi-worker-09"
        ]
    );
    assert_eq!(inv.groups["ungrouped"].hosts, ["bastion"]);
    let m = &inv.hosts["pi-master"].vars;
    assert_eq!(m["ansible_port"], json!(22));
    assert_eq!(m["debug"], json!(true));
    assert_eq!(m["quoted"], json!("a b"));
    assert_eq!(m["mode"], json!("0644"));
    assert_eq!(m["ansible_user"], json!("admin"));
    assert_eq!(m["k3s_version"], json!("v1.30.0+k3s1"));
    assert_eq!(m["flag"], json!("yes"));
    assert_eq!(m["list"], json!([1, 2]));
    assert_eq!(m["ntp"], json!("pool.ntp.org"));
    assert_eq!(inv.hosts["pi-worker-09"].vars["ansible_port"], json!(2200));
    assert_eq!(inv.hosts["bastion"].vars.get("ansible_user"), None);
    assert_eq!(inv.groups["k3s"].children, ["server", "agents"]);
    assert_eq!(inv.group_names("pi-worker-02"), ["agents", "k3s"]);
}

#[test]
fn ini_detected_without_extension_and_yaml_without_extension() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(&tmp.path().join("a"), "[web]\nw1\n");
    write(&tmp.path().join("b"), "h1\nh2 x=1\n");
    write(&tmp.path().join("c"), "all:\n  hosts:\n    y1:\n");
    for (name, host) in [("a", "w1"), ("b", "h2"), ("c", "y1")] {
        let inv = Inventory::load(&tmp.path().join(name)).expect(name);
        assert!(inv.hosts.contains_key(host), "{name}");
    }
}

#[test]
fn ini_errors_have_line_and_column() {
    let errs = errors_of(
        "[web]\nw1 novalue\n[web:bogus]\nx\n[db:vars]\nnokey\n[a:children]\nmissing\n[bad section]\n",
        "inv.ini",
    );
    assert_eq!(errs.len(), 6, "{errs:#?}");
    assert!(
        errs[0].starts_with("inv.ini:2:4: expected `key=value`"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("inv.ini:3:1: unknown section type `:bogus`"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].starts_with("inv.ini:6:1: expected `key=value` in [db:vars]"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].starts_with("inv.ini:9:1: invalid section header"),
        "{}",
        errs[3]
    );
    assert!(
        errs[4].starts_with("inv.ini:5:1: section [db:vars]"),
        "{}",
        errs[4]
    );
    assert!(
        errs[5].starts_with("inv.ini:8:1: [a:children] names group `missing`"),
        "{}",
        errs[5]
    );
}

#[test]
fn ini_children_declared_later_and_vars_for_later_group() {
    let inv = ini("[k3s:children]\nagents\n[k3s:vars]\nx=1\n[agents:vars]\ny=2\n[agents]\nw1\n");
    assert_eq!(inv.hosts["w1"].vars["x"], json!(1));
    assert_eq!(inv.hosts["w1"].vars["y"], json!(2));
}

#[test]
fn yaml_errors_have_line_and_column_and_are_all_collected() {
    let text = "\
all:
  children:
    web:
      host:
        w1:
    db:
      hosts:
        - d1
    app:
      vars: [1, 2]
      children:
        x: 3
    cache: 7
";
    let errs = errors_of(text, "inv.yml");
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(
        errs[0].starts_with("inv.yml:4:7: unknown key `host` in group `web`"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("inv.yml:8:9: `hosts` of group `db` must be a mapping"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].starts_with("inv.yml:10:13: `vars` of group `app`"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].starts_with("inv.yml:12:12: group `x` must be a mapping"),
        "{}",
        errs[3]
    );
    assert!(
        errs[4].starts_with("inv.yml:13:12: group `cache` must be a mapping"),
        "{}",
        errs[4]
    );
}

#[test]
fn yaml_syntax_and_shape_errors() {
    let errs = errors_of("all:\n  hosts: [a\n", "inv.yml");
    assert!(errs[0].starts_with("inv.yml:"), "{errs:?}");
    assert!(errs[0].contains("YAML syntax error"), "{errs:?}");
    let errs = errors_of("- a\n- b\n", "inv.yml");
    assert!(
        errs[0].starts_with("inv.yml:1:1: a YAML inventory must be a mapping"),
        "{errs:?}"
    );
    let errs = errors_of("all:\n  hosts:\n    h: [1]\n", "inv.yml");
    assert!(
        errs[0].starts_with("inv.yml:3:8: host `h` must have a mapping"),
        "{errs:?}"
    );
    let errs = errors_of("all:\n  hosts:\n    w[3:1]:\n", "inv.yml");
    assert!(
        errs[0].starts_with("inv.yml:3:5: invalid host range"),
        "{errs:?}"
    );
}

#[test]
fn group_loops_are_errors() {
    let errs = errors_of("all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n", "inv.yml");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("creates a loop"), "{errs:?}");
    let errs = errors_of("[a:children]\na\n", "inv.ini");
    assert!(errs[0].starts_with("inv.ini:2:1:"), "{errs:?}");
}

#[test]
fn vars_file_errors_name_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(&tmp.path().join("hosts.yml"), "all:\n  hosts:\n    h:\n");
    write(&tmp.path().join("group_vars/all.yml"), "a: 1\nb: [2\n");
    write(&tmp.path().join("host_vars/h.yml"), "- not a map\n");
    let err = Inventory::load(&tmp.path().join("hosts.yml")).expect_err("bad vars");
    assert_eq!(err.0.len(), 2, "{err}");
    let text = err.to_string();
    assert!(text.contains("group_vars/all.yml:"), "{text}");
    assert!(
        text.contains("host_vars/h.yml:1:1: a vars file must hold a mapping"),
        "{text}"
    );
}

#[test]
fn missing_inventory_is_an_error_and_host_lists_work() {
    let err = Inventory::load(Path::new("/nonexistent/inv.yml")).expect_err("missing");
    assert!(err.to_string().contains("inventory not found"), "{err}");
    let inv = Inventory::load(Path::new("h1,h2,")).expect("host list");
    assert_eq!(inv.groups["ungrouped"].hosts, ["h1", "h2"]);
}

#[test]
fn directory_inventory_reads_files_in_order_and_its_vars() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        &tmp.path().join("01-hosts.yml"),
        "web:\n  hosts:\n    w1:\n",
    );
    write(&tmp.path().join("02-more.ini"), "[db]\nd1\n[web]\nw2\n");
    write(&tmp.path().join("README.md"), "not an inventory [\n");
    write(&tmp.path().join("group_vars/web.yml"), "tier: web\n");
    let inv = Inventory::load(tmp.path()).expect("dir");
    assert_eq!(inv.hosts.keys().collect::<Vec<_>>(), ["w1", "d1", "w2"]);
    assert_eq!(inv.groups["web"].hosts, ["w1", "w2"]);
    assert_eq!(inv.hosts["w2"].vars["tier"], json!("web"));
}

#[test]
fn patterns_every_operator() {
    let inv = yaml(CLUSTER);
    let workers: Vec<String> = (1..=7).map(|i| format!("pi-worker-0{i}")).collect();
    assert_eq!(sel(&inv, "all").len(), 8);
    assert_eq!(sel(&inv, "*").len(), 8);
    assert_eq!(sel(&inv, "pi-master"), ["pi-master"]);
    assert_eq!(sel(&inv, "agents"), workers);
    assert_eq!(sel(&inv, "pi-worker-0*"), workers);
    assert_eq!(
        sel(&inv, "pi-worker-0[12]"),
        ["pi-worker-01", "pi-worker-02"]
    );
    assert_eq!(
        sel(&inv, "pi-worker-0[5-7]"),
        ["pi-worker-05", "pi-worker-06", "pi-worker-07"]
    );
    assert_eq!(
        sel(&inv, "~pi-worker-0[13]"),
        ["pi-worker-01", "pi-worker-03"]
    );
    assert_eq!(
        sel(&inv, "~(server|sched)"),
        ["pi-master", "pi-worker-01", "pi-worker-02"]
    );
    // Unions keep pattern order, like Ansible.
    assert_eq!(
        sel(&inv, "schedulers:server"),
        ["pi-worker-01", "pi-worker-02", "pi-master"]
    );
    assert_eq!(
        sel(&inv, "schedulers,server"),
        sel(&inv, "schedulers:server")
    );
    assert_eq!(
        sel(&inv, "k3s:&schedulers"),
        ["pi-worker-01", "pi-worker-02"]
    );
    assert_eq!(sel(&inv, "agents:!schedulers").len(), 5);
    assert_eq!(sel(&inv, "!agents"), ["pi-master"]);
    assert_eq!(sel(&inv, "&schedulers"), ["pi-worker-01", "pi-worker-02"]);
    // Exclusions apply last, whatever their position.
    assert_eq!(sel(&inv, "!schedulers:agents:&k3s").len(), 5);
    assert_eq!(sel(&inv, "agents[0]"), ["pi-worker-01"]);
    assert_eq!(sel(&inv, "agents[-1]"), ["pi-worker-07"]);
    assert_eq!(sel(&inv, "agents[1:2]"), ["pi-worker-02", "pi-worker-03"]);
    assert_eq!(sel(&inv, "agents[5:]"), ["pi-worker-06", "pi-worker-07"]);
    assert_eq!(sel(&inv, "agents[9:]"), Vec::<String>::new());
    assert_eq!(sel(&inv, "nosuch"), Vec::<String>::new());
    assert_eq!(sel(&inv, "nosuch:pi-master"), ["pi-master"]);
}

#[test]
fn malformed_patterns_are_errors() {
    let inv = yaml(CLUSTER);
    for p in ["", "  ", ":", "~(", "web[", "a:!", "agents[7]", "x]"] {
        assert!(inv.select(p).is_err(), "{p:?} should be an error");
    }
    let e = inv.select("~(").expect_err("bad regex");
    assert!(
        e.to_string().starts_with("invalid host pattern `~(`"),
        "{e}"
    );
}

#[test]
fn limit_and_limit_files() {
    let inv = yaml(CLUSTER);
    let got = inv
        .select_limited("all", Some("agents:!pi-worker-0[3-7]"))
        .expect("ok");
    assert_eq!(got, ["pi-worker-01", "pi-worker-02"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let retry = tmp.path().join("site.retry");
    write(&retry, "pi-worker-03\n\npi-master\n");
    let limit = format!("@{}", retry.display());
    let got = inv.select_limited("k3s", Some(&limit)).expect("ok");
    assert_eq!(got, ["pi-master", "pi-worker-03"]);
    write(&retry, "\n");
    assert!(inv
        .select_limited("all", Some(&limit))
        .expect("ok")
        .is_empty());
    assert!(inv
        .select_limited("all", Some("@/nonexistent/file"))
        .is_err());
}

#[test]
fn implicit_localhost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        &tmp.path().join("hosts.yml"),
        "all:\n  vars: {x: all}\n  children:\n    web:\n      vars: {y: web}\n      hosts: {w1: }\n",
    );
    write(&tmp.path().join("host_vars/localhost.yml"), "z: mine\n");
    let inv = Inventory::load(&tmp.path().join("hosts.yml")).expect("load");
    assert_eq!(sel(&inv, "localhost"), ["localhost"]);
    assert_eq!(sel(&inv, "all"), ["w1"]);
    let lh = inv.implicit_localhost();
    assert_eq!(lh.vars["ansible_connection"], json!("local"));
    assert_eq!(lh.vars["x"], json!("all"));
    assert_eq!(lh.vars["z"], json!("mine"));
    assert!(!lh.vars.contains_key("y"));
    assert!(lh.groups.is_empty());
    assert_eq!(
        inv.get("localhost").map(|h| h.name.clone()).as_deref(),
        Some("localhost")
    );
    assert!(inv.get("nosuch").is_none());
    assert!(!inv.groups_var()["all"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("localhost"))));

    let listed = yaml("all:\n  hosts:\n    localhost:\n      ansible_connection: ssh\n");
    assert_eq!(
        listed
            .get("localhost")
            .map(|h| h.vars["ansible_connection"].clone()),
        Some(json!("ssh"))
    );
}

#[test]
fn graph_like_ansible_inventory() {
    let inv = yaml("all:\n  hosts:\n    solo:\n  children:\n    k3s:\n      children:\n        server:\n          hosts: {m: }\n        agents:\n          hosts: {w1: , w2: }\n");
    let expected = "\
@all:
  |--@ungrouped:
  |  |--solo
  |--@k3s:
  |  |--@server:
  |  |  |--m
  |  |--@agents:
  |  |  |--w1
  |  |  |--w2
";
    assert_eq!(inv.to_string(), expected);
    assert_eq!(
        inv.graph("agents").as_deref(),
        Some("@agents:\n  |--w1\n  |--w2\n")
    );
    assert!(inv.graph("nosuch").is_none());
}

#[test]
fn list_and_host_json() {
    let inv = yaml("all:\n  children:\n    web:\n      hosts:\n        w1: {b: 2, a: 1}\n        w0:\n    empty:\n");
    let list = inv.to_json();
    assert_eq!(
        list,
        json!({
            "_meta": {"hostvars": {"w1": {"a": 1, "b": 2}}},
            "all": {"children": ["ungrouped", "web", "empty"]},
            "web": {"hosts": ["w1", "w0"]},
        })
    );
    // Keys sorted like ansible-inventory; lists keep inventory order.
    let keys: Vec<&String> = list
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["_meta", "all", "web"]);
    let w1 = serde_json::to_string(&list["_meta"]["hostvars"]["w1"]).expect("json");
    assert_eq!(w1, r#"{"a":1,"b":2}"#);
    assert_eq!(inv.host_vars_json("w1"), Some(json!({"a": 1, "b": 2})));
    assert_eq!(inv.host_vars_json("nope"), None);
}

#[test]
fn a_group_at_two_depths_takes_the_deeper() {
    // Checked with ansible-inventory 2.19: `b` is under `all` and under `a`,
    // so its depth is 2 and its value wins over `c` (depth 1).
    let inv = yaml("all:\n  children:\n    b:\n      vars: {v: b}\n      hosts: {h: }\n    a:\n      vars: {v: a}\n      children:\n        b:\n    c:\n      vars: {v: c}\n      hosts: {h: }\n");
    assert_eq!(inv.groups["b"].depth, 2);
    assert_eq!(inv.groups["b"].parents, ["all", "a"]);
    assert_eq!(inv.hosts["h"].vars["v"], json!("b"));
    assert_eq!(inv.hosts["h"].groups, ["all", "a", "c", "b"]);
}
